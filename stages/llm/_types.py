"""
The small types the LLM client and stages share, and the protocols they plug into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["CallState", "ChatModel", "ChatReply", "Limiter", "Message", "Usage"]


class Message(TypedDict):
    """
    One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``.
    """

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """
    Token counts as the server reported them (zero where it did not).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ChatReply:
    """
    The useful part of one successful chat completion.

    Attributes:
        content: the assistant message text.
        usage: the tokens this reply cost.
        attempts: the attempt of the call that answered (1 = no retry).
        model: the model the server says answered.
        finish_reason: why generation stopped (``"stop"``; ``"length"`` means the reply was
            cut by ``max_tokens`` and is not complete), or ``None`` if not reported.
        seconds: how long the request took.
    """

    content: str
    usage: Usage
    attempts: int
    model: str
    finish_reason: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class CallState:
    """
    One call's progress across its attempts (the stage's `asyncpipe.Retry` makes them).

    Attributes:
        deadline: seconds the whole call may take, from its first admitted attempt, or
            ``None``.
        attempt: the number of the attempt being made (1-based).
        started: when the first attempt was admitted by the rate limit (the client's
            monotonic clock), or ``None`` before that.
        timeouts: attempts that timed out so far.
    """

    deadline: float | None = None
    attempt: int = 1
    started: float | None = None
    timeouts: int = 0


class ChatModel(Protocol):
    """
    **Protocol:** something that answers one chat-completion request.

    `LlmClient` is the HTTP implementation; tests and other engines may plug in their own.
    """

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str,
        item: str | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        call: CallState | None = None,
    ) -> ChatReply:
        """
        Send ``messages`` once and return the reply.

        Args:
            messages: the conversation.
            task: what the call is for (``correct``, ``fix``, ``structure``); used for
                attribution (sent as ``X-Asyncpipe-Task``) and statistics.
            item: the pipeline item id, for attribution (``X-Asyncpipe-Item``).
            response_format: sent as ``response_format`` (structured outputs), if given.
            max_tokens: the most tokens to generate, if given.
            call: the call this attempt belongs to (its deadline and attempt number).

        Returns:
            The reply.

        Raises:
            LlmRetryableError: this attempt failed, and another may work.
            LlmError: the call failed for good.
        """
        ...


class Limiter(Protocol):
    """
    **Protocol:** a shared rate limit; `asyncpipe.RateLimit` is one.
    """

    async def acquire(self) -> None:
        """
        Wait until one more call is allowed, and count it.
        """
        ...
