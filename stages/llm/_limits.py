"""
`LlmLimits`: the limits every LLM call of a run shares besides the call limit: a token
limit (reserve an estimate, settle with the server's ``usage``), the server's
``x-ratelimit-*`` headers and a global pause after a 429, and a cost ceiling.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncpipe import (
    BudgetExceeded,
    CostBudget,
    CostReservation,
    RateLimit,
    Reservation,
    parse_ratelimit_headers,
)

from ._errors import LlmError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._types import Message, Usage

__all__ = ["DEFAULT_COMPLETION", "MESSAGE_OVERHEAD", "Admission", "LlmLimits", "prompt_tokens"]

MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds per message (role, start and end markers): ChatML, as
SmolLM2 and Qwen use it, adds 5; OpenAI counts 4."""

DEFAULT_COMPLETION = 1024
"""The completion tokens reserved for a call that names no ``max_tokens``."""

_OPEN = 1 << 60  # a limit that never binds: pause and observe still apply


def prompt_tokens(messages: Sequence[Message]) -> int:
    """
    An upper bound of a chat prompt's tokens: its UTF-8 bytes, plus `MESSAGE_OVERHEAD` per
    message and 3 for the reply's priming.  A byte-level BPE token (GPT, Llama, SmolLM2,
    Qwen) is never shorter than one byte, and receipts are full of digits, which these
    tokenizers often spend one token each on; so a tighter guess could pass the limit.
    What a call does not use is given back when it settles.
    """
    return sum(len(m["content"].encode()) + MESSAGE_OVERHEAD for m in messages) + 3


class Admission:
    """
    One attempt's reservations (tokens, and cost under a ceiling), settled once.
    """

    __slots__ = ("_cost", "_limits", "_tokens", "estimate")

    def __init__(
        self, tokens: Reservation, cost: CostReservation | None, limits: LlmLimits | None = None
    ) -> None:
        self._tokens = tokens
        self._cost = cost
        self._limits = limits  # told when the estimate stands
        self.estimate = tokens.estimate

    def restamp(self) -> None:
        """
        The attempt goes out now: count its tokens from now (see `Reservation.restamp`).
        """
        self._tokens.restamp()

    def settle(self, usage: Usage | None, *, charged: bool = True) -> None:
        """
        Settle with the ``usage`` the server returned; ``charged=False`` for an attempt
        the server refused or never received (it used nothing); neither: the estimate
        stands (a timeout or a cancellation, whose use the server never told).
        """
        if self._tokens.actual is not None:
            return
        if usage is not None and (usage.total_tokens or usage.prompt_tokens):
            total = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
            self._tokens.settle(total)
            if self._cost is not None:
                self._cost.settle(usage.prompt_tokens, usage.completion_tokens)
        elif not charged:
            self._tokens.settle(0)
            if self._cost is not None:
                self._cost.settle(0, 0)
        else:
            self._tokens.settle()
            if self._cost is not None:
                self._cost.settle()
            if self._limits is not None:
                self._limits.estimated += 1


@dataclass
class LlmLimits:
    """
    What every LLM call of a run shares besides the call limit the framework acquires.

    Before an attempt, `admit` reserves its tokens (the prompt's `prompt_tokens` plus its
    ``max_tokens``) from ``tokens`` and its worst-case cost from ``budget``; after it,
    the `Admission` is settled with the reply's ``usage``.  `feedback` reads the reply's
    ``x-ratelimit-*`` headers into the shared limits, and after a 429 pauses them all: every
    call in flight or to come waits, not only the one refused.

    Without a token limit the limits still follow the server's headers and pauses (an open
    limit is kept for that), so they help whenever a server sends them.

    Args:
        tokens: the token limit (``--token-limit``), or ``None``.
        budget: the cost ceiling (``--llm-prices`` and ``--max-cost``), or ``None``.
        feedback: follow the server's headers and pause after a 429 (default ``True``).
    """

    tokens: RateLimit | None = None
    budget: CostBudget | None = None
    feedback: bool = True

    def __post_init__(self) -> None:
        self._tokens = self.tokens or RateLimit(_OPEN, 60.0, burst=_OPEN)
        self._requests = RateLimit(_OPEN, 60.0, burst=_OPEN)
        self.pauses = 0
        # Requests that went out: an attempt admitted here and then given up unsent (the
        # run stopped while it waited for the call limit) is not one, or a Ctrl-C after
        # 3 requests reads "22 calls".
        self.sent = 0
        # Attempts counted at their reserved estimate: the server reported no usage (a
        # body that is no completion, a timeout), so the tokens the summary counts are
        # more than the client's usage figure, which counts only what was reported.
        self.estimated = 0
        self._sent_at: deque[float] = deque()  # when, for the last minute's count
        # The most requests sent in any 60 s: the run's mean can pass a call limit that
        # held in every window (two windows' worth in a run of 61 s).
        self.busiest_minute = 0
        self._held_until = 0.0  # a server wait too long for any call: none is sent

    def hold(self, seconds: float) -> None:
        """Send no call for ``seconds``: the server asked for a wait no call can sit out."""
        self._held_until = max(self._held_until, time.monotonic() + seconds)

    def held_for(self) -> float:
        """Seconds left of a `hold`, or 0."""
        return max(0.0, self._held_until - time.monotonic())

    async def admit(
        self, messages: Sequence[Message], max_tokens: int | None, what: str
    ) -> Admission:
        """
        Wait for the tokens of one attempt, and reserve its cost.

        Raises:
            LlmError: the attempt can never fit in the token limit.
            BudgetExceeded: its worst-case cost would pass the cost ceiling, or is over
                the ceiling itself (it can never fit: the run stops, exit 4).
        """
        prompt = prompt_tokens(messages)
        completion = max_tokens if max_tokens is not None else DEFAULT_COMPLETION
        estimate = prompt + completion
        limit = self._tokens
        if estimate > limit.limit:
            raise LlmError(
                f"{what} can never fit in --token-limit {limit.limit}/{limit.period:g}s: it "
                f"reserves {estimate} tokens (about {prompt} of prompt plus max_tokens "
                f"{completion}); raise --token-limit or lower the max_tokens options",
                cause="token_limit",
            )
        budget = self.budget
        if budget is not None and budget.max_cost is not None:
            worst = budget.cost(prompt, completion)
            if worst > budget.max_cost:
                # Stop the run (exit 4, the page left for --resume) rather than fail the
                # page: every later page's call of this kind is as large or near it, and an
                # error record a page after its OCR is the whole run spent for nothing.
                # Counted as refused, as a call the money left cannot hold is: the
                # summary's "N calls refused by it" counts it, and no page starts after.
                budget.refused += 1
                raise BudgetExceeded(
                    f"{what} may cost {worst:.6g} (about {prompt} prompt tokens plus "
                    f"max_tokens {completion}), which can never fit under the cost ceiling of "
                    f"{budget.max_cost:g}: raise --max-cost (or lower the max_tokens options) "
                    "and --resume"
                )
        cost = budget.reserve(prompt, completion) if budget is not None else None
        try:
            await self._requests.acquire()
            tokens = await limit.reserve(estimate)
        except BaseException:
            if cost is not None:
                cost.settle(0, 0)
            raise
        return Admission(tokens, cost, self)

    def feedback_from(
        self, headers: Mapping[str, str], status: int, retry_after: float | None
    ) -> float:
        """
        Tell the shared limits what a response said: its ``x-ratelimit-*`` headers, and
        after a 429 a pause of ``retry_after`` seconds (else the header's reset time,
        else 1 s) for every call.  Settle the attempt's `Admission` first.

        Returns:
            The pause, in seconds (0 when there is none): the caller pauses the limits
            these do not hold as well (the client's call limit, where calls admitted
            here wait for their turn).
        """
        if not self.feedback:
            return 0.0
        said = parse_ratelimit_headers(headers)
        said.apply(requests=self._requests, tokens=self._tokens)
        if status == 429:
            wait = retry_after
            if wait is None:
                resets = [r for r in (said.reset_requests, said.reset_tokens) if r is not None]
                wait = max(resets) if resets else 1.0
            self.pauses += 1
            self._requests.pause(wait)
            self._tokens.pause(wait)
            return wait
        return 0.0

    def sending(self) -> None:
        """An attempt admitted here goes out now: count it."""
        self.sent += 1
        now = time.monotonic()
        self._sent_at.append(now)
        self.busiest_minute = max(self.busiest_minute, self._last_minute(now))

    def _last_minute(self, now: float) -> int:
        """The attempts sent in the minute before ``now``, older ones forgotten."""
        sent_at, since = self._sent_at, now - 60.0
        while sent_at and sent_at[0] <= since:
            sent_at.popleft()
        return len(sent_at)

    # -- reporting --------------------------------------------------------------------------

    def per_minute(self) -> tuple[int, float]:
        """
        Returns:
            Attempts sent in the last minute (not those admitted and still waiting for the
            call limit), and tokens in the token limit's window (the reserved estimates of
            calls admitted included) scaled to a minute.
        """
        calls = self._last_minute(time.monotonic())
        tokens = self._tokens.statistics()
        period = self.tokens.period if self.tokens is not None else 60.0
        return calls, tokens.in_window * 60.0 / period

    def live(self, call_limit: str | None) -> dict[str, object]:
        """
        The progress display's counters: calls/min and tokens/min against their limits.
        """
        calls, tokens = self.per_minute()
        out: dict[str, object] = {
            "calls/min": f"{calls}/{call_limit.removesuffix('/min')}" if call_limit else calls
        }
        limit = self.tokens
        out["tokens/min"] = (
            f"{tokens:.0f}/{limit.limit * 60.0 / limit.period:.0f}" if limit else f"{tokens:.0f}"
        )
        if self.budget is not None:
            budget = self.budget
            out["worst-case cost"] = (
                f"{budget.spent:.4g}/{budget.max_cost:g}"
                if budget.max_cost is not None
                else f"{budget.spent:.4g}"
            )
        return out

    def summary(self, elapsed: float, call_limit: str | None) -> list[str]:
        """
        Lines for the run summary: calls/min and tokens/min over the run against their
        limits, the pauses after 429s, and the spend against the ceiling.
        """
        if elapsed >= 60.0:
            minutes = elapsed / 60.0
            calls = self.sent / minutes
            used = self._tokens.units / minutes
            line = (
                f"llm rates: {calls:.1f} calls/min mean over the run, at most "
                f"{self.busiest_minute} in any 60 s"
            )
            if call_limit:
                line += f" (limit {call_limit})"
            line += f", {used:.0f} tokens/min mean"
        else:
            # A run under a minute: its counts, not a per-minute rate extrapolated from a
            # burst: 26 calls in 7.6 s read "205.2 calls/min (limit 150/min)", though no
            # 60 s window held more than 150.
            line = f"llm rates: {self.sent} calls in {elapsed:.1f} s"
            if call_limit:
                line += f" (limit {call_limit})"
            line += f", {self._tokens.units:.0f} tokens"
        if self.tokens is not None:
            line += f" (limit {self.tokens.limit}/{self.tokens.period:g}s)"
        if self.estimated:
            line += (
                f", {self.estimated} of them counted at the tokens reserved (the server "
                "reported no usage)"
            )
        if self.pauses:
            line += f"; paused {self.pauses} times after a 429"
        lines = [line]
        if (budget := self.budget) is not None:
            text = f"llm worst-case cost: {budget.spent:.4g}"
            if budget.max_cost is not None:
                text += f" of the {budget.max_cost:g} ceiling"
            # The usage cost (the `llm:` line) counts only the replies that reported their
            # usage; a timed-out call may still have been billed.
            text += (
                " (the usage cost, plus each call that timed out or reported no usage at its "
                "prompt and max_tokens)"
            )
            if budget.refused:
                text += f"; {budget.refused} call{'' if budget.refused == 1 else 's'} refused by it"
            lines.append(text)
        return lines
