"""
`Outage`: what every call of one client shares while its server cannot be reached (a
refused connection, a 502 or a 503): the calls wait together, and one tries again after a
wait that doubles from 1 s to 8 s, until the server answers.

A server restarted mid-run (killed, then back after 40 s) is ridden out this way within a
call's deadline, and the calls waiting for it send nothing: without the shared wait,
every call in flight tried on its own, spent its attempts within 20 s and failed its page.
An outage is said once as it begins (a warning) and once as it ends, not by each call.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["OUTAGE_CAUSES", "Outage"]

logger = logging.getLogger("stages.llm")

OUTAGE_CAUSES = frozenset({"connect", "502", "503"})
"""The failures that say the server cannot be reached now, rather than that the call is
wrong: a refused or timed-out connection, and a 502 or 503 (a proxy in front of a server
that is down; a server loading its model)."""


class Outage:
    """
    Whether the server is unreachable, and when a call may try it again.

    `failed` starts an outage, or, when a try made after the wait failed too, doubles the
    wait (``base`` to ``cap`` seconds, or the server's Retry-After if longer); `answered`
    ends it.  `wait` holds a call until the wait has passed, plus a random part of half
    the wait drawn by each call, so that the first to wake tries alone: if it fails, the
    others see the longer wait and go back to sleep; if the server answers, they follow.

    Args:
        base: the first wait, in seconds.
        cap: the longest wait, in seconds.
        clock: the monotonic clock (tests inject a fake).
        sleep: how to wait (tests inject a fake).
        rng: where the random part comes from.
        url: the server's URL, for the warning as an outage begins and the line as it
            ends; ``None`` says nothing.
    """

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rng: random.Random | None = None,
        url: str | None = None,
    ) -> None:
        self._url = url
        self.base = base
        self.cap = cap
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._retry_at: float | None = None  # None: the server is reachable
        self._wait = 0.0
        self.since = 0.0  # when the outage began
        self.detail = ""  # the last failure, for the message of a call that gives up
        self.outages = 0

    @property
    def down(self) -> bool:
        """Whether the last word from the server was that it cannot be reached."""
        return self._retry_at is not None

    def failed(
        self, detail: str, hint: float | None = None, *, deadline: float | None = None
    ) -> None:
        """
        A try found the server unreachable (``detail`` says how); ``hint`` is the wait it
        asked for (Retry-After), if any; ``deadline`` how long the calls wait, for the
        warning as an outage begins.
        """
        now = self._clock()
        self.detail = detail
        if self._retry_at is None:
            self.outages += 1
            self.since = now
            self._wait = self.base
            if self._url is not None:
                waiting = (
                    "waiting"
                    if deadline is None
                    else f"waiting up to --llm-deadline {deadline:g} s"
                )
                logger.warning(
                    "cannot reach the LLM server at %s since %s (last: %s): %s; pages "
                    "needing it wait",
                    self._url,
                    datetime.now().astimezone().strftime("%H:%M:%S"),
                    detail,
                    waiting,
                )
        elif now < self._retry_at:
            return  # a try sent before the wait began: the wait stands
        else:
            self._wait = min(self.cap, self._wait * 2)
        self._retry_at = now + max(self._wait, hint or 0.0)

    def answered(self) -> None:
        """The server answered: the outage, if any, is over."""
        if self._retry_at is not None and self._url is not None:
            lasted = self._clock() - self.since
            logger.info("the LLM server at %s answers again, after %.0f s", self._url, lasted)
        self._retry_at = None

    async def wait(self, until: float | None) -> bool:
        """
        Wait until a call may try the server (at once when it is reachable), but not past
        ``until`` on the clock.

        Returns:
            ``False`` if ``until`` came first.
        """
        while (retry_at := self._retry_at) is not None:
            now = self._clock()
            if until is not None and now >= until:
                return False
            if now >= retry_at:
                return True
            wake = retry_at + self._rng.uniform(0.0, self._wait / 2)
            if until is not None and wake >= until:
                await self._sleep(until - now)  # another call may reach it meanwhile
                return self._retry_at is None
            await self._sleep(wake - now)
            if self._retry_at == retry_at:
                return True  # no try failed meanwhile: this call tries
        return True
