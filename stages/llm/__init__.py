"""
The LLM stages: an async OpenAI-compatible client and the ``correct``, ``fix`` and
``structure`` stage functions.

Example::

    from asyncpipe._ratelimit import RateLimit
    from stages.llm import LlmClient, llm_stages

    async with LlmClient(url, model, api_key=key, rate_limit=RateLimit(150, 60)) as client:
        stages = llm_stages(client)          # reads prompt and schema files
        page = await stages.correct(page)
        print(client.statistics().summary())
"""

from __future__ import annotations

from ._client import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._client import LlmClient as LlmClient
from ._client import LlmStatistics as LlmStatistics
from ._client import parse_retry_after as parse_retry_after
from ._errors import LlmDeadlineError as LlmDeadlineError
from ._errors import LlmError as LlmError
from ._errors import LlmOutputError as LlmOutputError
from ._errors import LlmRetriesExhausted as LlmRetriesExhausted
from ._errors import LlmStatusError as LlmStatusError
from ._prompts import PROMPT_NAMES as PROMPT_NAMES
from ._prompts import Prompts as Prompts
from ._schema import OutputInvalid as OutputInvalid
from ._schema import Schema as Schema
from ._schema import parse_json_object as parse_json_object
from ._stages import LlmStages as LlmStages
from ._stages import correct as correct
from ._stages import fix as fix
from ._stages import llm_stages as llm_stages
from ._stages import structure as structure
from ._types import ChatModel as ChatModel
from ._types import ChatReply as ChatReply
from ._types import Limiter as Limiter
from ._types import Message as Message
from ._types import Usage as Usage

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROMPT_NAMES",
    "ChatModel",
    "ChatReply",
    "Limiter",
    "LlmClient",
    "LlmDeadlineError",
    "LlmError",
    "LlmOutputError",
    "LlmRetriesExhausted",
    "LlmStages",
    "LlmStatistics",
    "LlmStatusError",
    "Message",
    "OutputInvalid",
    "Prompts",
    "Schema",
    "Usage",
    "correct",
    "fix",
    "llm_stages",
    "parse_json_object",
    "parse_retry_after",
    "structure",
]
