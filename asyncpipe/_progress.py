"""
Progress reporting: a bar and a stage table in a terminal, plain log lines or JSON
objects otherwise.

Every reporter gets a `ProgressSnapshot` (total, done, rate, ETA, per-stage statistics)
about every ``interval`` seconds.  The unit word ("pages") comes from the app; so do the
optional extra counters of a stage (e.g. an LLM stage's calls/min against its rate limit
and its tokens so far): a function per stage name that returns ``{column: value}``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from ._meter import ProgressSnapshot

if TYPE_CHECKING:
    from rich.live import Live
    from rich.progress import Progress, TaskID

    from ._stats import RunSummary

__all__ = [
    "JsonProgress",
    "LogProgress",
    "ProgressReporter",
    "RichProgress",
    "StageExtras",
    "auto_progress",
    "format_duration",
    "make_progress",
    "progress_line",
]

log = logging.getLogger("asyncpipe.progress")

#: Per stage name, a function returning that stage's extra counters right now, e.g.
#: ``{"calls/min": "142/150", "tokens": 10234}``.  Called on the event loop: keep it cheap.
#: A name that is no stage's labels what several stages share, e.g. a shared rate limit
#: (``llm``): the terminal table shows it on a row of its own, under the stages.
StageExtras = Mapping[str, Callable[[], Mapping[str, object]]]


class ProgressReporter:
    """
    Base class for progress displays.  The pipeline calls `update` about every
    ``interval`` seconds on the event loop, `interrupted` on the first stop signal, and
    `finish` once at the end.

    Args:
        unit: the plural word for an item, e.g. ``"pages"``.
        counters: extra counters per stage name, or per name of what stages share
            (see `StageExtras`).
        resume_command: the command that finishes an interrupted run, told on Ctrl-C.

    .. versionadded:: 0.1
    """

    interval: float = 1.0

    def __init__(
        self,
        *,
        unit: str = "items",
        counters: StageExtras | None = None,
        resume_command: str | None = None,
    ) -> None:
        self.unit = unit
        self.counters: StageExtras = counters or {}
        self.resume_command = resume_command

    def update(self, snapshot: ProgressSnapshot) -> None:
        """
        Show the run's progress.
        """
        raise NotImplementedError

    def interrupted(self, snapshot: ProgressSnapshot, in_flight: int) -> None:
        """
        Intake stopped on a signal: say what happens now and how to finish later.
        """
        log.warning("%s", interrupt_message(snapshot, in_flight, self.unit, self.resume_command))

    def finish(self, summary: RunSummary) -> None:
        """
        Called once with the final summary.
        """

    def extras(self) -> dict[str, dict[str, object]]:
        """
        The extra counters of each stage that declares them, right now.
        """
        out: dict[str, dict[str, object]] = {}
        for name, read in self.counters.items():
            try:
                out[name] = dict(read())
            except Exception as exc:  # a display must never break the run
                out[name] = {"error": type(exc).__name__}
        return out


def format_duration(seconds: float | None) -> str:
    """
    ``6h49m``, ``3m05s``, ``42s``; ``?`` when unknown.
    """
    if seconds is None:
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24}d{hours % 24:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def progress_line(
    snapshot: ProgressSnapshot, unit: str = "items", extras: Mapping[str, Mapping[str, object]] = {}
) -> str:
    """
    The run's progress in plain words, e.g.
    ``412/10000 pages (4.1%) · 0.39 pages/s · ETA 6h49m · 3 failed · bottleneck ocr``.
    """
    s = snapshot
    if s.total is not None:
        fraction = s.fraction or 0.0
        parts = [f"{s.done}/{s.total} {unit} ({fraction:.1%})"]
    else:
        parts = [f"{s.done} {unit} (total not known yet)"]
    parts.append(f"{s.rate:.2f} {unit}/s")
    parts.append(f"elapsed {format_duration(s.elapsed)}")
    parts.append(f"ETA {format_duration(s.eta)}")
    parts.append(f"{s.failed} failed")
    if s.previous:
        parts.append(f"{s.previous} done before")
    if s.bottleneck:
        parts.append(f"bottleneck {s.bottleneck}")
    if running := [f"{stage.name} {stage.running}" for stage in s.stages if stage.running]:
        # The calls in flight: a long LLM call is in no calls/min count once sent.
        parts.append("running: " + ", ".join(running))
    for name, values in extras.items():
        parts.append(f"{name} " + ", ".join(f"{_value(v)} {k}" for k, v in values.items()))
    return " · ".join(parts)


def interrupt_message(
    snapshot: ProgressSnapshot, in_flight: int, unit: str, resume_command: str | None
) -> str:
    """
    What a first Ctrl-C (or SIGTERM) does now, and how to finish the run later.
    """
    stop = snapshot.interrupted
    again = (
        "Ctrl-C again"
        if stop in (None, "SIGINT")
        else "send it again"
        if stop.startswith("SIG")
        else "Ctrl-C"
    )
    said = f"{snapshot.interrupted or 'interrupted'}: no new {unit}; "
    if not resume_command:
        return f"{said}finishing {in_flight} {unit} in flight; {again} to cancel them"
    # A run that can be resumed has a journal: an item in flight finishes the step it is
    # in and is checkpointed, and waits there with the rest ("finishing 2 pages in
    # flight" would promise more than the one step they finish).
    return (
        f"{said}{in_flight} {unit} in flight finish the step they are in; {again} to cancel "
        f"them. They and the others wait. To finish the run later: {resume_command}"
    )


class LogProgress(ProgressReporter):
    """
    One plain line (logger ``asyncpipe.progress``, level INFO) every ``interval`` seconds.
    """

    def __init__(self, interval: float = 5.0, **options: Any) -> None:
        super().__init__(**options)
        self.interval = interval

    def update(self, snapshot: ProgressSnapshot) -> None:
        log.info("%s", progress_line(snapshot, self.unit, self.extras()))

    def finish(self, summary: RunSummary) -> None:
        log.info("finished\n%s", summary.format_table())


class JsonProgress(ProgressReporter):
    """
    One JSON object per line on ``file`` (default stderr) every ``interval`` seconds:
    `ProgressSnapshot.to_json` plus ``event`` (``progress``, ``interrupted`` or
    ``finished``), ``unit`` and ``counters``.
    """

    def __init__(self, interval: float = 5.0, file: TextIO | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.interval = interval
        self._file = file or sys.stderr
        self._last: ProgressSnapshot | None = None

    def _emit(self, event: str, data: dict[str, object]) -> None:
        line = {"event": event, "unit": self.unit} | data
        self._file.write(orjson.dumps(line, default=str).decode() + "\n")
        self._file.flush()

    def update(self, snapshot: ProgressSnapshot) -> None:
        self._last = snapshot
        self._emit("progress", snapshot.to_json() | {"counters": self.extras()})

    def interrupted(self, snapshot: ProgressSnapshot, in_flight: int) -> None:
        self._emit(
            "interrupted",
            {
                "signal": snapshot.interrupted,
                "in_flight": in_flight,
                "resume_command": self.resume_command,
            },
        )

    def finish(self, summary: RunSummary) -> None:
        self._emit(
            "finished",
            {
                "elapsed": round(summary.elapsed, 3),
                "ok": summary.ok,
                "failed": summary.failed,
                "skipped": summary.skipped,
                "interrupted": summary.interrupted,
                "bottleneck": summary.bottleneck,
            },
        )


class RichProgress(ProgressReporter):
    """
    A progress bar (done/total, rate, elapsed, ETA, failed, skipped) above a live
    per-stage table that marks the bottleneck, drawn with rich, for terminals.
    """

    def __init__(self, interval: float = 0.25, file: TextIO | None = None, **options: Any) -> None:
        from rich.console import Console

        super().__init__(**options)
        self.interval = interval
        self._console = Console(file=file or sys.stderr)
        self._live: Live | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def _progress_bar(self) -> tuple[Progress, TaskID]:
        if self._bar is None or self._task is None:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                console=self._console,
                auto_refresh=False,
            )
            self._task = self._bar.add_task("asyncpipe", total=None, info="")
        return self._bar, self._task

    def _table(self, snapshot: ProgressSnapshot, extras: dict[str, dict[str, object]]) -> Any:
        from rich.table import Table

        table = Table()
        columns = [
            "stage",
            "kind",
            "workers",
            "in",
            "out",
            "failed",
            "retried",
            "queue",
            "running",
            "util",
            "p50 ms",
            "p95 ms",
        ]
        extra_columns = list(dict.fromkeys(k for values in extras.values() for k in values))
        for column in columns + extra_columns:
            table.add_column(column, justify="left" if column in ("stage", "kind") else "right")
        for s in snapshot.stages:
            name = s.name
            if name == snapshot.bottleneck:
                name = f"[bold red]{name} ◀ bottleneck[/]"
            values = extras.get(s.name, {})
            table.add_row(
                name,
                s.kind,
                str(s.workers),
                str(s.items_in),
                str(s.items_out),
                str(s.failed),
                str(s.retried),
                str(s.queue_depth),
                str(s.running),
                f"{s.utilization:.2f}",
                f"{s.latency_p50 * 1e3:.0f}",
                f"{s.latency_p95 * 1e3:.0f}",
                *(_value(values[c]) if c in values else "" for c in extra_columns),
            )
        stages = {s.name for s in snapshot.stages}
        for shared, values in extras.items():
            if shared not in stages:  # shared by stages, e.g. the LLM stages' rate limit
                blanks = [""] * (len(columns) - 2)
                table.add_row(
                    shared,
                    "shared",
                    *blanks,
                    *(_value(values[c]) if c in values else "" for c in extra_columns),
                )
        return table

    def _renderable(self, snapshot: ProgressSnapshot) -> Any:
        from rich.console import Group

        bar, task = self._progress_bar()
        s = snapshot
        if s.total is not None:
            count = f"{s.done}/{s.total} {self.unit}"
            count += f" {s.fraction or 0.0:.1%}"
        else:
            count = f"{s.done}/? {self.unit}"
        parts = [
            count,
            f"{s.rate:.2f} {self.unit}/s",
            f"elapsed {format_duration(s.elapsed)}",
            f"ETA {format_duration(s.eta)}",
            f"{s.failed} failed",
        ]
        if s.skipped:
            parts.append(f"{s.skipped} skipped (done before)")
        bar.update(task, total=s.total, completed=s.done, info=" · ".join(parts))
        return Group(bar, self._table(s, self.extras()))

    def update(self, snapshot: ProgressSnapshot) -> None:
        from rich.live import Live

        renderable = self._renderable(snapshot)
        if self._live is None:
            self._live = Live(renderable, console=self._console, auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(renderable, refresh=True)

    def interrupted(self, snapshot: ProgressSnapshot, in_flight: int) -> None:
        message = interrupt_message(snapshot, in_flight, self.unit, self.resume_command)
        self._console.print(
            message, style="bold yellow", markup=False, highlight=False, soft_wrap=True
        )

    def finish(self, summary: RunSummary) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._console.print(summary.format_table(), highlight=False)


def auto_progress(stream: TextIO | None = None, **options: Any) -> ProgressReporter:
    """
    A `RichProgress` when ``stream`` (default stderr) is a terminal, else `LogProgress`.
    """
    stream = stream or sys.stderr
    return RichProgress(file=stream, **options) if stream.isatty() else LogProgress(**options)


def make_progress(
    choice: str,
    *,
    unit: str = "items",
    counters: StageExtras | None = None,
    resume_command: str | None = None,
) -> ProgressReporter | None:
    """
    The reporter a ``--progress`` choice names: ``auto`` (a bar on a terminal, log lines
    otherwise), ``rich``, ``log``, ``json`` (on stdout, which nothing else writes to) or
    ``none``.  ``$ASYNCPIPE_PROGRESS_INTERVAL``
    sets the seconds between log lines and JSON objects (default 5).
    """
    options: dict[str, Any] = {"unit": unit, "counters": counters, "resume_command": resume_command}
    interval = float(os.environ.get("ASYNCPIPE_PROGRESS_INTERVAL") or 5.0)
    if choice == "none":
        return None
    if choice == "json":
        return JsonProgress(interval, sys.stdout, **options)
    if choice == "log" or (choice == "auto" and not sys.stderr.isatty()):
        return LogProgress(interval, **options)
    return RichProgress(**options)
