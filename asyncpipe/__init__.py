"""
asyncpipe: an asyncio pipeline framework with thread offloading.

Stages joined by bounded queues, thread offload for CPU work, shared rate limits,
retries, error records, ordered output, and a checkpoint journal for resume.
"""

from __future__ import annotations

from ._app import App as App
from ._app import Job as Job
from ._app import RunOptions as RunOptions
from ._app import load_app as load_app
from ._exceptions import AsyncpipeError as AsyncpipeError
from ._exceptions import ConfigError as ConfigError
from ._exceptions import EndOfQueue as EndOfQueue
from ._exceptions import JournalError as JournalError
from ._exceptions import QueueBroken as QueueBroken
from ._exceptions import QueueClosed as QueueClosed
from ._exceptions import RetryableError as RetryableError
from ._exceptions import StageError as StageError
from ._executor import Executor as Executor
from ._executor import StageCall as StageCall
from ._journal import Checkpoint as Checkpoint
from ._journal import Journal as Journal
from ._journal import JournalState as JournalState
from ._pipeline import Pipeline as Pipeline
from ._pipeline import iterate_in_thread as iterate_in_thread
from ._progress import LogProgress as LogProgress
from ._progress import ProgressReporter as ProgressReporter
from ._progress import RichProgress as RichProgress
from ._progress import auto_progress as auto_progress
from ._queue import QueueStatistics as QueueStatistics
from ._queue import ReceiveQueue as ReceiveQueue
from ._queue import SendQueue as SendQueue
from ._queue import open_queue as open_queue
from ._ratelimit import RateLimit as RateLimit
from ._ratelimit import parse_rate as parse_rate
from ._ray import RayExecutor as RayExecutor
from ._retry import Retry as Retry
from ._retry import default_retryable as default_retryable
from ._sink import CallbackSink as CallbackSink
from ._sink import JsonlSink as JsonlSink
from ._sink import Sink as Sink
from ._stage import ErrorRecord as ErrorRecord
from ._stage import Item as Item
from ._stage import ResourceFactory as ResourceFactory
from ._stage import Stage as Stage
from ._stats import RunSummary as RunSummary
from ._stats import StageStatistics as StageStatistics

__version__ = "0.1.0"

__all__ = [
    "App",
    "AsyncpipeError",
    "CallbackSink",
    "Checkpoint",
    "ConfigError",
    "EndOfQueue",
    "ErrorRecord",
    "Executor",
    "Item",
    "Job",
    "Journal",
    "JournalError",
    "JournalState",
    "JsonlSink",
    "LogProgress",
    "Pipeline",
    "ProgressReporter",
    "QueueBroken",
    "QueueClosed",
    "QueueStatistics",
    "RateLimit",
    "RayExecutor",
    "ReceiveQueue",
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
    "StageStatistics",
    "auto_progress",
    "default_retryable",
    "iterate_in_thread",
    "load_app",
    "open_queue",
    "parse_rate",
]
