"""
The LLM stages: an async OpenAI-compatible client and the ``correct``, ``fix`` and
``structure`` stage functions.

Example::

    from asyncpipe import RateLimit
    from stages.llm import LlmClient, llm_stages

    async with LlmClient(url, model, api_key=key, rate_limit=RateLimit(150, 60)) as client:
        stages = llm_stages(client)          # reads prompt and schema files
        # In a pipeline: Stage("correct", stages.correct, retry=stages.retry, ...)
        page = await stages.correct(page)
        print(client.statistics().summary())
"""

from __future__ import annotations

from ._bind import LlmStages as LlmStages
from ._bind import llm_stages as llm_stages
from ._client import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._client import LlmClient as LlmClient
from ._client import parse_retry_after as parse_retry_after
from ._errors import LlmDeadlineError as LlmDeadlineError
from ._errors import LlmError as LlmError
from ._errors import LlmOutputError as LlmOutputError
from ._errors import LlmRetriesExhausted as LlmRetriesExhausted
from ._errors import LlmRetryableError as LlmRetryableError
from ._errors import LlmServerDown as LlmServerDown
from ._errors import LlmServerRefused as LlmServerRefused
from ._errors import LlmServerWait as LlmServerWait
from ._errors import LlmStatusError as LlmStatusError
from ._guard import DEFAULT_MIN_SIMILARITY as DEFAULT_MIN_SIMILARITY
from ._guard import Verdict as Verdict
from ._guard import judge_edit as judge_edit
from ._limits import LlmLimits as LlmLimits
from ._limits import prompt_tokens as prompt_tokens
from ._options import LLM_STAGE_NAMES as LLM_STAGE_NAMES
from ._options import LlmOptions as LlmOptions
from ._options import add_arguments as add_arguments
from ._options import timeout_advice as timeout_advice
from ._prompts import PROMPT_NAMES as PROMPT_NAMES
from ._prompts import Prompts as Prompts
from ._schema import OutputInvalid as OutputInvalid
from ._schema import Schema as Schema
from ._schema import parse_json_object as parse_json_object
from ._stages import DEFAULT_RETRY as DEFAULT_RETRY
from ._stages import correct as correct
from ._stages import fix as fix
from ._stages import structure as structure
from ._stages import structure_max_tokens as structure_max_tokens
from ._stages import text_max_tokens as text_max_tokens
from ._statistics import LlmStatistics as LlmStatistics
from ._structured import STRUCTURED_MODES as STRUCTURED_MODES
from ._structured import StructuredOutputs as StructuredOutputs
from ._types import CallState as CallState
from ._types import ChatModel as ChatModel
from ._types import ChatReply as ChatReply
from ._types import Limiter as Limiter
from ._types import Message as Message
from ._types import Usage as Usage

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "LLM_STAGE_NAMES",
    "PROMPT_NAMES",
    "STRUCTURED_MODES",
    "CallState",
    "ChatModel",
    "ChatReply",
    "Limiter",
    "LlmClient",
    "LlmDeadlineError",
    "LlmError",
    "LlmLimits",
    "LlmOptions",
    "LlmOutputError",
    "LlmRetriesExhausted",
    "LlmRetryableError",
    "LlmStages",
    "LlmServerDown",
    "LlmServerRefused",
    "LlmServerWait",
    "LlmStatistics",
    "LlmStatusError",
    "Message",
    "OutputInvalid",
    "Prompts",
    "Schema",
    "StructuredOutputs",
    "Usage",
    "Verdict",
    "add_arguments",
    "correct",
    "fix",
    "judge_edit",
    "llm_stages",
    "parse_json_object",
    "parse_retry_after",
    "prompt_tokens",
    "structure",
    "structure_max_tokens",
    "text_max_tokens",
    "timeout_advice",
]
