"""
The app contract: what ``asyncpipe run`` needs from the code that defines a pipeline.

The framework's command line owns what every run needs (inputs, output, journal,
resume, overrides by stage name, progress, signals, exit codes); an `App` owns what the
pipeline *is*.  Apps are found by name: an installed package registers one in the
``asyncpipe.apps`` entry-point group::

    [project.entry-points."asyncpipe.apps"]
    documents = "stages.app:app"

and ``asyncpipe run --app NAME`` (or ``--app module:attribute``, or
``$ASYNCPIPE_APP``) picks it.  With exactly one app installed, it is the default.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, Protocol

from ._exceptions import ConfigError
from ._executor import Executor
from ._meter import Total
from ._pipeline import Pipeline
from ._progress import StageExtras
from ._ratelimit import RateLimit
from ._stage import Item
from ._stats import RunSummary

__all__ = ["App", "Job", "RunOptions", "load_app"]

APP_GROUP = "asyncpipe.apps"


@dataclass
class Job:
    """
    What an app hands the command line to run.

    Attributes:
        pipeline: the pipeline.  The command line applies the run-wide overrides
            (``--workers``, ``--rate-limit``, ``--executor``) to it by stage name.
        source: the input values (an async iterable keeps a slow walk off the loop).
        key: the stable key of an input value (what the journal and resume use).
        record: the JSON line of a finished item.
        report: called after the run with its summary; returns extra lines to print.
        total: how many items ``source`` holds, for the progress bar and ETA: a number,
            or an async iterable (or a function returning one) of refined estimates.
        unit: the plural word for an item in progress lines, e.g. ``"pages"``.
        outputs: the app's other output files by label, named in the closing lines.
        counters: extra counters per stage name for the progress display.
        superseded: called as the run closes, returns the keys of lines an earlier run
            wrote that this run replaces (an input changed since it was read), each with
            the keys of the lines that replace it: the output loses an old line once
            those are all in it (see `JsonlSink`).
        unread: called after the run, returns how many inputs could not be read though
            the output keeps their lines from before (a resume writes no error record
            over them): ``--fail-on-error`` exits 3 for them, as for error records.

    .. versionadded:: 0.1
    .. versionchanged:: Unreleased
        ``superseded``, ``unread``.
    """

    pipeline: Pipeline
    source: Iterable[Any] | AsyncIterable[Any]
    key: Callable[[Any], str] | None
    record: Callable[[Item], dict[str, Any]]
    report: Callable[[RunSummary], Awaitable[list[str]]] | None = None
    total: Total | None = None
    unit: str = "items"
    outputs: dict[str, Path | None] = field(default_factory=dict)
    counters: StageExtras | None = None
    superseded: Callable[[], Mapping[str, Collection[str]]] | None = None
    unread: Callable[[], int] | None = None


@dataclass(frozen=True)
class RunOptions:
    """
    The options of one ``asyncpipe run``, parsed and checked.

    Attributes:
        inputs: the INPUT arguments, as given: the app says what they name.
        out: the JSON-lines output file.
        journal: the checkpoint journal.
        resume: continue an interrupted run.
        retry_failed: with ``resume``, run the failed items again.
        overwrite: replace an earlier run's output and journal.
        ordered: write items in input order (the default, as in `Pipeline.run`).
        workers: worker counts by stage or group name.
        limits: shared rate limits by the names stages declare.
        default_limit: a rate for every declared limit not named in ``limits``.
        executor: where the chosen thread stages run, or ``None`` for local threads.
        executor_stages: the stage or group names sent to ``executor`` (``None``: the
            thread stages with a per-worker resource).
        progress: ``auto``, ``rich``, ``log``, ``json`` or ``none``.
        command: the command line as the user typed it, for the resume and retry
            commands the run prints.
        fail_on_error: exit 3 if any item ended as an error record.
        app_options: the app's own options (those it added in `App.add_arguments`),
            and nothing else.

    .. versionadded:: 0.1
    """

    inputs: list[str]
    out: Path
    journal: Path
    resume: bool = False
    retry_failed: bool = False
    overwrite: bool = False
    ordered: bool = True
    workers: Mapping[str, int] = field(default_factory=dict)
    limits: Mapping[str, RateLimit] = field(default_factory=dict)
    default_limit: RateLimit | None = None
    executor: Executor | None = None
    executor_stages: frozenset[str] | None = None
    progress: Literal["auto", "rich", "log", "json", "none"] = "auto"
    command: tuple[str, ...] = ()
    fail_on_error: bool = False
    app_options: argparse.Namespace = field(default_factory=argparse.Namespace, repr=False)

    # The limits `limit` made, by name, so that each is one object for the whole run:
    # a cache, not an option (no constructor argument), mutable in a frozen dataclass.
    _made: dict[str, RateLimit] = field(default_factory=dict, init=False, repr=False, compare=False)

    def limit(self, name: str, default: RateLimit) -> RateLimit:
        """
        The shared limit ``name`` for this run: ``--rate-limit name=RATE``, else a bare
        ``--rate-limit RATE``, else ``default``.  The same object every time it is asked,
        and the one `configure` gives the pipeline, so an app may hand it to a client
        that acquires it per request (e.g. an HTTP client whose retries are requests too).
        """
        if name in self.limits:
            return self.limits[name]
        if name not in self._made:
            rate = self.default_limit
            self._made[name] = default if rate is None else RateLimit(rate.limit, rate.period)
        return self._made[name]

    def configure(self, pipeline: Pipeline) -> Pipeline:
        """
        ``pipeline`` with this run's overrides applied by stage and group name.

        Raises:
            ConfigError: an override names no stage, group or declared limit.
        """
        limits = dict(self.limits)
        if self.default_limit is not None:
            for name in pipeline.limit_names - set(limits):
                limits[name] = self.limit(name, pipeline.limits.get(name) or self.default_limit)
        return pipeline.configure(
            workers=self.workers,
            executor=self.executor,
            executor_stages=self.executor_stages,
            limits=limits,
        )


class App(Protocol):
    """
    **Protocol:** a pipeline the command line can run.

    An app may also define ``start_environment() -> Mapping[str, str]``: variables the
    process must have when it starts, because a library reads them only then (glibc's
    malloc tunables, OpenMP's thread count).  ``asyncpipe run`` restarts itself once with
    those it lacks (`asyncpipe._restart`; same process id).  It may also set
    ``inputs_help`` (a string: the help of ``run``'s INPUT) and ``workers_example`` (a
    ``--workers`` value naming its own stages, e.g. ``"ocr=2,llm=32"``, for that option's
    help).

    .. versionadded:: 0.1
    """

    description: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """
        Add the app's own ``run`` options (they come back in ``RunOptions.app_options``).
        """

    def open(self, options: RunOptions) -> AbstractAsyncContextManager[Job]:
        """
        Build the job (and hold what it needs open, e.g. an HTTP client) for one run.
        """


def start_environment(app: App) -> dict[str, str]:
    """The variables ``app`` wants the process to start with (none if it says nothing)."""
    wanted = getattr(app, "start_environment", None)
    return dict(wanted()) if wanted is not None else {}


def load_app(spec: str | None = None) -> App:
    """
    Find the app to run.

    Args:
        spec: ``module:attribute``, or the name of an app registered in the
            ``asyncpipe.apps`` entry-point group; ``None`` takes the only one installed.

    Raises:
        ConfigError: there is no such app, it cannot be imported, or ``spec`` is ``None``
            and there is not exactly one app installed.
    """
    registered = {ep.name: ep for ep in entry_points(group=APP_GROUP)}
    if spec is None:
        if len(registered) != 1:
            found = ", ".join(sorted(registered)) or "none"
            raise ConfigError(
                f"pick an app with --app NAME or --app module:attribute (installed apps: {found})"
            )
        [spec] = registered
    try:
        if spec in registered:
            return registered[spec].load()  # type: ignore[no-any-return]
        if ":" not in spec:
            found = ", ".join(sorted(registered)) or "none"
            raise ConfigError(f"no app named {spec!r} (installed apps: {found})")
        module_name, _, attribute = spec.partition(":")
        return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load app {spec!r}: {exc} (are the app's package and extras installed?)"
        ) from exc
