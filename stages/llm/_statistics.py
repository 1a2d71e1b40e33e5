"""
`LlmStatistics`: what one `LlmClient` has done so far, and its line in a run summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["LlmStatistics"]


@dataclass(frozen=True, slots=True)
class LlmStatistics:
    """
    What one `LlmClient` has done so far.  Retries are counted by the pipeline stages
    (their ``retried`` statistic); here every request is one attempt.

    Attributes:
        attempts: HTTP requests sent (each one acquired the rate limit).
        succeeded: requests that returned a usable reply.
        failed: requests that failed.
        failures: cause → failed requests (``"timeout"``, ``"connect"``, ``"network"``,
            ``"malformed"``, ``"deadline"``, or the HTTP status such as ``"429"``).
        length_stops: replies cut by ``max_tokens`` (``finish_reason: "length"``).
        context_stops: replies cut short because the prompt and the reply filled the
            server's context (``finish_reason: "length"`` too, see `ContextFull`).
        prompt_tokens: prompt tokens of every completion received.
        completion_tokens: completion tokens of every completion received.
        total_tokens: total tokens of every completion received.
        seconds: time spent in requests that returned a reply.
        cost: the price of those tokens, if the client was given ``prices``.
        no_usage: replies that said nothing of their tokens (``usage`` missing): they
            are not in the counts above.
        gave_up: calls that gave up before sending their next attempt, their deadline
            run out during the wait: no request, so in none of the counts above.
        server_slots: the slots a llama.cpp server said it has, or ``None``.
        context: the context per slot a llama.cpp server said, in tokens, or ``None``.
    """

    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: Mapping[str, int] = field(default_factory=dict)
    length_stops: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None
    no_usage: int = 0
    gave_up: int = 0
    context_stops: int = 0
    server_slots: int | None = None
    context: int | None = None

    @property
    def tokens_per_second(self) -> float | None:
        """
        Completion tokens per second of request time, per request (what one server slot
        generated, prompt processing included), or ``None`` before the first reply.
        """
        if self.seconds <= 0 or not self.succeeded:
            return None
        return self.completion_tokens / self.seconds

    def summary(self) -> str:
        """
        Returns:
            One line for a run summary.
        """
        failures = " ".join(f"{k}={v}" for k, v in sorted(self.failures.items())) or "none"
        line = (
            f"llm: {self.attempts} requests ({self.succeeded} ok, {self.failed} failed: {failures})"
        )
        if self.gave_up:
            # Not requests: nothing was sent (a retry's wait outlasted the call's deadline).
            line += (
                f", {self.gave_up} call{'' if self.gave_up == 1 else 's'} gave up before "
                "sending again (--llm-deadline ran out)"
            )
        line += (
            f", tokens: {self.total_tokens} (prompt {self.prompt_tokens} + "
            f"completion {self.completion_tokens})"
        )
        if (speed := self.tokens_per_second) is not None:
            line += f", {speed:.1f} completion tokens/s per request"
        if self.length_stops:
            line += f", {_replies(self.length_stops)} cut by max_tokens"
        if self.context_stops:
            # Not max_tokens: raising it cannot help, and the user would try it first.
            size = f" of {self.context} tokens per slot" if self.context is not None else ""
            line += (
                f", {_replies(self.context_stops)} cut by a full context{size} (give the "
                "server a larger context: llama.cpp -c/--ctx-size; max_tokens cannot help)"
            )
        if self.cost is not None:
            # What the replies' usage costs; the cost ceiling's count (`LlmLimits.summary`)
            # adds the worst case of the calls that reported none (a timeout).
            line += f", usage cost: {self.cost:.4g}"
        if self.no_usage:
            # The cost ceiling keeps their estimates: say why this cost is lower, or
            # "cost: 0.0000" beside "0.0995 of the 0.1 ceiling" reads as a contradiction.
            line += (
                f"; {self.no_usage} replies gave no usage, so their tokens and cost are not "
                "counted here (a cost ceiling counts their estimates)"
            )
        return line


def _replies(count: int) -> str:
    return f"{count} repl{'y' if count == 1 else 'ies'}"
