"""
A chat model for the LLM stages' unit tests: canned answers, the calls recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stages.llm import CallState, ChatReply, Message, Usage

__all__ = ["FakeModel"]


class FakeModel:
    """A ChatModel that replays canned answers and records the conversations."""

    def __init__(self, *answers: str | Exception, finish: str = "stop") -> None:
        self.answers = list(answers)
        self.finish = finish
        self.calls: list[tuple[list[Message], str, str | None, Any]] = []
        self.max_tokens: list[int | None] = []

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
        self.calls.append((list(messages), task, item, response_format))
        self.max_tokens.append(max_tokens)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return ChatReply(answer, Usage(5, 2, 7), 1, "fake", self.finish)
