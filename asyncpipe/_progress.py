"""
Progress reporting: a live table in a terminal, plain log lines otherwise.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.live import Live

    from ._stats import RunSummary, StageStatistics

__all__ = ["LogProgress", "ProgressReporter", "RichProgress", "auto_progress"]

log = logging.getLogger("asyncpipe.progress")


class ProgressReporter:
    """
    Base class for progress displays.  The pipeline calls `update` about every
    ``interval`` seconds on the event loop, and `finish` once at the end.

    .. versionadded:: 0.1
    """

    interval: float = 1.0

    def update(self, stages: list[StageStatistics], *, ok: int, failed: int, skipped: int) -> None:
        raise NotImplementedError

    def finish(self, summary: RunSummary) -> None:
        """
        Called once with the final summary.
        """


def _line(stages: list[StageStatistics], ok: int, failed: int, skipped: int) -> str:
    parts = [
        f"{s.name} {s.items_out}/{s.items_in} q={s.queue_depth} util={s.utilization:.2f}"
        + (f" fail={s.failed}" if s.failed else "")
        + (f" retry={s.retried}" if s.retried else "")
        for s in stages
    ]
    return f"done {ok} ok {failed} failed {skipped} skipped | " + " | ".join(parts)


class LogProgress(ProgressReporter):
    """
    One log line (logger ``asyncpipe.progress``, level INFO) every ``interval`` seconds.
    """

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval

    def update(self, stages: list[StageStatistics], *, ok: int, failed: int, skipped: int) -> None:
        log.info("%s", _line(stages, ok, failed, skipped))

    def finish(self, summary: RunSummary) -> None:
        log.info("finished\n%s", summary.format_table())


class RichProgress(ProgressReporter):
    """
    A live per-stage table drawn with rich, for terminals.
    """

    def __init__(self, interval: float = 0.25, file: TextIO | None = None) -> None:
        from rich.console import Console

        self.interval = interval
        self._console = Console(file=file or sys.stderr)
        self._live: Live | None = None

    def _table(self, stages: list[StageStatistics], ok: int, failed: int, skipped: int) -> object:
        from rich.table import Table

        table = Table(title=f"asyncpipe: {ok} ok, {failed} failed, {skipped} skipped")
        for column in ("stage", "kind", "workers", "in", "out", "failed", "retried", "queue",
                       "util", "p50 ms", "p95 ms"):
            table.add_column(column, justify="left" if column in ("stage", "kind") else "right")
        busiest = max(stages, key=lambda s: s.utilization).name if stages else None
        for s in stages:
            table.add_row(
                f"[bold]{s.name}[/]" if s.name == busiest else s.name, s.kind, str(s.workers),
                str(s.items_in), str(s.items_out), str(s.failed), str(s.retried),
                str(s.queue_depth), f"{s.utilization:.2f}", f"{s.latency_p50 * 1e3:.0f}",
                f"{s.latency_p95 * 1e3:.0f}",
            )
        return table

    def update(self, stages: list[StageStatistics], *, ok: int, failed: int, skipped: int) -> None:
        from rich.live import Live

        table = self._table(stages, ok, failed, skipped)
        if self._live is None:
            self._live = Live(table, console=self._console, auto_refresh=False, transient=True)  # type: ignore[arg-type]
            self._live.start()
        self._live.update(table, refresh=True)  # type: ignore[arg-type]

    def finish(self, summary: RunSummary) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._console.print(summary.format_table(), highlight=False)


def auto_progress(stream: TextIO | None = None) -> ProgressReporter:
    """
    A `RichProgress` when ``stream`` (default stderr) is a terminal, else `LogProgress`.
    """
    stream = stream or sys.stderr
    return RichProgress(file=stream) if stream.isatty() else LogProgress()
