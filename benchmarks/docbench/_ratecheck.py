"""
A rate-limit check that can fail (issue 11, point 3).

The three LLM stages of the document pipeline (correct → fix → structure, 8 workers each,
one shared limit in the LLM client) run against the local test server, which enforces the
same limit in a sliding window and answers 429 beyond it.  The run makes at least 4x the
limit in calls and spans at least 3 full windows; OCR is left out (the pages carry text
already), so the limit and nothing else is the bottleneck.  Counted at the server:

- the most calls that arrived in any window of the period, refused ones included: what
  the client sent (goal: <= the limit),
- utilisation over the steady part: the mean count of admitted calls in a window of the
  period, over the windows between the 10th and the 90th percentile call, against the
  limit (`rate_utilisation`; goal: >= 0.95),
- 429 answers (goal: 0), and pages that failed (goal: 0).

``client_rate`` gives the client a limit other than the server's: the tests use it to see
the check fail for a client that sends too much or too little.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage
from stages._page import Page, PageRef
from stages.llm import llm_stages
from stages.testing.llm_server.testing import run_server

from ._model import LLM_STAGES, max_in_window, rate_utilisation
from ._runners import _client

__all__ = ["RateCheck", "run_rate_check"]

_TEXT = "TAN WOON YANN\nBOOK TA .K(TAMAN DAYA) SDN BHD\nDATE: 25/12/2018\nTOTAL: 9.00"


@dataclass(frozen=True)
class RateCheck:
    """
    What the server counted in one rate-limited run.
    """

    limit: int
    period: float
    items: int
    calls: int
    seconds: float
    max_in_period: int
    utilisation: float
    rejected: int
    failed: int = 0
    client_rate: tuple[int, float] | None = None

    @property
    def windows(self) -> float:
        """How many full windows the run spanned."""
        return self.seconds / self.period

    @property
    def passed(self) -> bool:
        """No window over the limit, no 429, no failed page, utilisation >= 0.95."""
        return (
            self.max_in_period <= self.limit
            and self.rejected == 0
            and self.failed == 0
            and self.utilisation >= 0.95
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "period": self.period,
            "items": self.items,
            "calls": self.calls,
            "seconds": round(self.seconds, 2),
            "windows": round(self.windows, 2),
            "max_calls_in_any_window": self.max_in_period,
            "utilisation_steady": round(self.utilisation, 4),
            "http_429": self.rejected,
            "failed_pages": self.failed,
            "client_rate": list(self.client_rate) if self.client_rate else None,
            "passed": self.passed,
        }

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        client = (
            f" (client limit {self.client_rate[0]}/{self.client_rate[1]:g}s)"
            if self.client_rate
            else ""
        )
        failed = f", {self.failed} pages failed" if self.failed else ""
        return (
            f"rate limit {self.limit}/{self.period:g}s{client}: {self.calls} calls over "
            f"{self.seconds:.1f} s ({self.windows:.1f} windows); at the server: most in any "
            f"window {self.max_in_period} (limit {self.limit}), steady utilisation "
            f"{self.utilisation:.3f} (goal >= 0.95), 429s {self.rejected}{failed} -> {verdict}"
        )


def run_rate_check(
    limit: int = 20,
    period: float = 10.0,
    latency: float = 0.2,
    workdir: Path | None = None,
    *,
    client_rate: tuple[int, float] | None = None,
) -> RateCheck:
    """
    Run the check: ``ceil(4 * limit / 3) + 1`` pages through the three LLM stages.

    Args:
        limit: the calls the server admits in any window of ``period``.
        period: the window in seconds.
        latency: the server's seconds per call.
        workdir: where the server writes its log (default: a temporary folder).
        client_rate: the client's limit (default: the server's).
    """
    items = math.ceil(4 * limit / len(LLM_STAGES)) + 1
    pages = [
        Page(ref=PageRef(f"rate-{i}", f"rate-{i}.jpg", 1, "jpeg"), text=_TEXT) for i in range(items)
    ]
    with run_server(
        latency=latency, rate_limit=limit, rate_period=period, workdir=workdir
    ) as server:
        wall0, wall1, failed = anyio.run(_run, pages, server.url, client_rate or (limit, period))
        log = [r for r in server.read_log() if wall0 - 0.5 <= r["ts"] <= wall1 + 0.5]
    sent = [r["ts"] for r in log]
    admitted = [r["ts"] for r in log if r.get("status") != 429]
    return RateCheck(
        limit=limit,
        period=period,
        items=items,
        calls=len(admitted),
        seconds=(max(admitted) - min(admitted)) if admitted else 0.0,
        max_in_period=max_in_window(sent, period),
        utilisation=rate_utilisation(admitted, limit, period),
        rejected=len(sent) - len(admitted),
        failed=failed,
        client_rate=client_rate,
    )


async def _run(pages: list[Page], url: str, rate: tuple[int, float]) -> tuple[float, float, int]:
    async with _client(url, rate) as client:
        bound = await anyio.to_thread.run_sync(llm_stages, client)
        stages = [Stage(name, getattr(bound, name), workers=8) for name in LLM_STAGES]
        wall0 = time.time()
        summary = await Pipeline(stages).run(pages)
        wall1 = time.time()
    return wall0, wall1, summary.failed
