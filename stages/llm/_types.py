"""
The small types the LLM client and stages share, and the protocols they plug into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ChatModel", "ChatReply", "Limiter", "Message", "Usage"]


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
        attempts: how many HTTP attempts it took (1 = no retry).
        model: the model the server says answered.
    """

    content: str
    usage: Usage
    attempts: int
    model: str


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
        json_mode: bool = False,
    ) -> ChatReply:
        """
        Send ``messages`` and return the reply.

        Args:
            messages: the conversation.
            task: what the call is for (``correct``, ``fix``, ``structure``); used for
                attribution (sent as ``X-Asyncpipe-Task``) and statistics.
            item: the pipeline item id, for attribution (``X-Asyncpipe-Item``).
            json_mode: ask for a JSON object (``response_format``).

        Returns:
            The reply.

        Raises:
            LlmError: the call failed for good.
        """
        ...


class Limiter(Protocol):
    """
    **Protocol:** a shared rate limit; `asyncpipe._ratelimit.RateLimit` is one.
    """

    async def acquire(self) -> None:
        """
        Wait until one more call is allowed, and count it.
        """
        ...
