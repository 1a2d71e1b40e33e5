"""
asyncpipe: an asyncio pipeline framework with thread offloading.

Stages joined by bounded queues, thread offload for CPU work, shared rate limits,
retries, error records, ordered output, and a checkpoint journal for resume.
"""

from __future__ import annotations

# First, before the imports that take the time: a Ctrl-C while the command starts.
from . import _startup  # noqa: F401

# isort: split

from ._app import App as App
from ._app import Job as Job
from ._app import RunOptions as RunOptions
from ._app import load_app as load_app
from ._budget import CostBudget as CostBudget
from ._budget import CostReservation as CostReservation
from ._budget import parse_cost as parse_cost
from ._budget import parse_prices as parse_prices
from ._exceptions import AsyncpipeError as AsyncpipeError
from ._exceptions import BudgetExceeded as BudgetExceeded
from ._exceptions import ConfigError as ConfigError
from ._exceptions import EndOfQueue as EndOfQueue
from ._exceptions import JournalError as JournalError
from ._exceptions import OutputError as OutputError
from ._exceptions import QueueBroken as QueueBroken
from ._exceptions import QueueClosed as QueueClosed
from ._exceptions import RetryableError as RetryableError
from ._exceptions import StageError as StageError
from ._exceptions import StopIntake as StopIntake
from ._executor import Executor as Executor
from ._executor import StageCall as StageCall
from ._headers import RateLimitHeaders as RateLimitHeaders
from ._headers import parse_duration as parse_duration
from ._headers import parse_ratelimit_headers as parse_ratelimit_headers
from ._journal import Checkpoint as Checkpoint
from ._journal import Journal as Journal
from ._journal import JournalState as JournalState
from ._meter import PerMinute as PerMinute
from ._meter import ProgressSnapshot as ProgressSnapshot
from ._meter import Total as Total
from ._pipeline import Pipeline as Pipeline
from ._progress import JsonProgress as JsonProgress
from ._progress import LogProgress as LogProgress
from ._progress import ProgressReporter as ProgressReporter
from ._progress import RichProgress as RichProgress
from ._progress import StageExtras as StageExtras
from ._progress import auto_progress as auto_progress
from ._progress import format_duration as format_duration
from ._progress import make_progress as make_progress
from ._progress import progress_line as progress_line
from ._queue import QueueStatistics as QueueStatistics
from ._queue import ReceiveQueue as ReceiveQueue
from ._queue import SendQueue as SendQueue
from ._queue import open_queue as open_queue
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import RateLimitStatistics as RateLimitStatistics
from ._ratelimit import Reservation as Reservation
from ._ratelimit import parse_rate as parse_rate
from ._ray import RayExecutor as RayExecutor
from ._restart import restart_with as restart_with
from ._retry import Retry as Retry
from ._retry import default_retryable as default_retryable
from ._retry import retry_after as retry_after
from ._sink import CallbackSink as CallbackSink
from ._sink import JsonlSink as JsonlSink
from ._sink import Sink as Sink
from ._source import iterate_in_thread as iterate_in_thread
from ._stage import ErrorRecord as ErrorRecord
from ._stage import Item as Item
from ._stage import ResourceFactory as ResourceFactory
from ._stage import Stage as Stage
from ._stage import StageKind as StageKind
from ._stats import RunSummary as RunSummary
from ._stats import StageStatistics as StageStatistics
from ._stats import WorkerLosses as WorkerLosses
from ._stopping import move_on_stop as move_on_stop
from ._stopping import stopping as stopping
from ._summary import closing_lines as closing_lines
from ._summary import command_line as command_line
from ._summary import follow_up_command as follow_up_command
from ._summary import resume_command as resume_command

__version__ = "0.1.0"

__all__ = [
    "App",
    "AsyncpipeError",
    "BudgetExceeded",
    "CallbackSink",
    "Checkpoint",
    "ConfigError",
    "CostBudget",
    "CostReservation",
    "EndOfQueue",
    "ErrorRecord",
    "Executor",
    "Item",
    "Job",
    "Journal",
    "JournalError",
    "JournalState",
    "JsonProgress",
    "JsonlSink",
    "LogProgress",
    "OutputError",
    "PerMinute",
    "Pipeline",
    "ProgressReporter",
    "ProgressSnapshot",
    "QueueBroken",
    "QueueClosed",
    "QueueStatistics",
    "RateLimit",
    "RateLimitHeaders",
    "RateLimitStatistics",
    "RayExecutor",
    "ReceiveQueue",
    "Reservation",
    "ResourceFactory",
    "Retry",
    "RetryableError",
    "RichProgress",
    "RunOptions",
    "RunSummary",
    "SendQueue",
    "Sink",
    "Stage",
    "StageCall",
    "StageError",
    "StageExtras",
    "StageKind",
    "StageStatistics",
    "StopIntake",
    "Total",
    "WorkerLosses",
    "auto_progress",
    "closing_lines",
    "command_line",
    "default_retryable",
    "follow_up_command",
    "format_duration",
    "iterate_in_thread",
    "load_app",
    "make_progress",
    "move_on_stop",
    "open_queue",
    "parse_cost",
    "parse_duration",
    "parse_prices",
    "parse_rate",
    "parse_ratelimit_headers",
    "progress_line",
    "restart_with",
    "resume_command",
    "retry_after",
    "stopping",
]
