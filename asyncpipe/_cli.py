"""
The command line: ``python -m asyncpipe run INPUT... --out results.jsonl``.

The framework owns what every pipeline needs from a command line: output, journal,
resume, worker counts, rate limit, ordering, config file, progress, signals and exit
codes.  What the pipeline *is* comes from an app (`App`), loaded by name, so the
framework holds no document code.  The default app is the document pipeline
(``stages.app:app``); ``$ASYNCPIPE_APP=module:attribute`` picks another.

Exit codes: 0 the run finished (error records, if any, are in the output; with
``--fail-on-error`` they give 3); 1 the run failed; 2 bad usage or no input found;
130 / 143 stopped by SIGINT / SIGTERM (resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from ._exceptions import AsyncpipeError, ConfigError
from ._executor import Executor
from ._journal import Journal
from ._meter import Total  # progress:
from ._pipeline import Pipeline
from ._progress import StageExtras, make_progress  # progress:
from ._ratelimit import RateLimit, parse_rate
from ._sink import JsonlSink
from ._stage import Item
from ._stats import RunSummary
from ._summary import closing_lines, command_line, resume_command  # progress:

__all__ = ["App", "Job", "RunOptions", "main", "parse_workers"]

DEFAULT_APP = "stages.app:app"
log = logging.getLogger("asyncpipe")


@dataclass
class Job:
    """
    What an app hands the command line to run.

    Attributes:
        pipeline: the pipeline.
        source: the input values (an async iterable keeps a slow walk off the loop).
        key: the stable key of an input value.
        record: the JSON line of a finished item.
        report: called after the run with its summary; returns extra lines to print.
        total: how many items ``source`` holds, for the progress bar and ETA: a number,
            or an async iterable (or a function returning one) of refined estimates.
        unit: the plural word for an item in progress lines, e.g. ``"pages"``.
        outputs: the app's other output files by label, named in the closing lines.
        counters: extra counters per stage name for the progress display.
    """

    pipeline: Pipeline
    source: Iterable[Any] | AsyncIterator[Any]
    key: Callable[[Any], str] | None
    record: Callable[[Item], dict[str, Any]]
    report: Callable[[RunSummary], Awaitable[list[str]]] | None = None
    total: Total | None = None  # progress:
    unit: str = "items"  # progress:
    outputs: dict[str, Path | None] = field(default_factory=dict)  # progress:
    counters: StageExtras | None = None  # progress:


@dataclass(frozen=True)
class RunOptions:
    """
    The framework's share of the ``run`` options, parsed.
    """

    inputs: list[str]
    out: Path
    journal: Path
    resume: bool
    retry_failed: bool
    overwrite: bool
    ordered: bool
    workers: dict[str, int]
    rate_limit: RateLimit
    args: argparse.Namespace = field(repr=False)
    executor: Executor | None = None
    executor_stages: frozenset[str] | None = None


class App(Protocol):
    """
    **Protocol:** a pipeline the command line can run.
    """

    description: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """
        Add the app's own ``run`` options.
        """

    def open(self, options: RunOptions) -> AbstractAsyncContextManager[Job]:
        """
        Build the job (and hold what it needs open, e.g. an HTTP client) for one run.
        """

    # Optional: ``def bench(self, argv: list[str]) -> int`` runs ``asyncpipe bench``.


def load_app(spec: str) -> App:
    """
    Import ``module:attribute``.

    Raises:
        ConfigError: it cannot be imported.
    """
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attribute or "app")  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load app {spec!r}: {exc}") from exc


def parse_workers(text: str | dict[str, int] | None) -> dict[str, int]:
    """
    Parse ``"ocr=2,llm=32"`` (or a TOML table) into ``{"ocr": 2, "llm": 32}``.
    """
    if not text:
        return {}
    pairs: list[tuple[str, object]]
    if isinstance(text, dict):
        pairs = list(text.items())
    else:
        pairs = []
        for part in text.split(","):
            name, sep, number = part.partition("=")
            if not sep:
                raise ConfigError(f"--workers takes NAME=N pairs separated by commas, not {part!r}")
            pairs.append((name.strip(), number.strip()))
    out: dict[str, int] = {}
    for name, value in pairs:
        try:
            count = int(str(value))
        except ValueError:
            raise ConfigError(
                f"workers for {name!r} must be a whole number, not {value!r}"
            ) from None
        if count < 1:
            raise ConfigError(f"workers for {name!r} must be at least 1")
        out[name] = count
    return out


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="files, folders (recursive) or glob patterns"
    )
    parser.add_argument("--config", type=Path, help="a TOML file of these options")
    parser.add_argument("--out", "-o", type=Path, help="the JSON-lines output file (required)")
    parser.add_argument(
        "--journal", type=Path, help="the checkpoint journal (default: OUT.journal)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: skip finished items, reuse checkpoints",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume, run the items that failed before again",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output instead of refusing"
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument(
        "--unordered",
        dest="ordered",
        action="store_false",
        help="write items as they finish (default: in input order)",
    )
    order.add_argument("--ordered", dest="ordered", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", help="worker counts, e.g. ocr=2,llm=32")
    parser.add_argument(
        "--rate-limit",
        default="150/min",
        help="the most LLM calls in any window, e.g. 150/min (default)",
    )
    parser.add_argument(
        "--fail-on-error", action="store_true", help="exit 3 if any item ended as an error record"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "log", "json", "none"),  # progress:
        default="auto",
        help="a bar and stage table on a terminal, log lines otherwise (default auto); "
        "json: one JSON object per interval on stdout ($ASYNCPIPE_PROGRESS_INTERVAL s, "
        "default 5)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument(
        "--executor",
        choices=("threads", "ray"),
        default="threads",
        help="where thread stages run: local threads (default) or Ray actors",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run on this Ray cluster: auto, ray://HOST:10001 or HOST:6379 "
        "(implies --executor ray; without it Ray starts a local cluster)",
    )
    parser.add_argument(
        "--ray-stages",
        metavar="NAMES",
        help="thread stages to run on Ray, e.g. ocr (default: the thread "
        "stages with a per-worker resource)",
    )


def _config_defaults(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    known = {action.dest for action in parser._actions}
    out: dict[str, Any] = {}
    for name, value in data.items():
        dest = name.replace("-", "_")
        if dest not in known or dest in ("config", "help"):
            raise ConfigError(f"config {path}: unknown option {name!r}")
        if dest == "inputs" and isinstance(value, str):
            value = [value]
        if dest in ("out", "journal") and isinstance(value, str):
            value = Path(value)
        out[dest] = value
    return out


def _parse(argv: Sequence[str], app: App) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="asyncpipe",
        description="Run a pipeline over many inputs, resumably.",
        epilog="exit codes: 0 done, 1 failed, 2 usage or no input, 3 done with error "
        "records (--fail-on-error), 130/143 interrupted",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help=app.description)
    _add_run_arguments(run)
    app.add_arguments(run)
    commands.add_parser(
        "bench", help="the app's benchmark harness (see `asyncpipe bench -h`)", add_help=False
    )
    journal = commands.add_parser("journal", help="journal maintenance")
    journal.add_argument("action", choices=("compact", "show"))
    journal.add_argument("path", type=Path)
    if argv[:1] == ["bench"]:
        return argparse.Namespace(command="bench", rest=list(argv[1:]))
    args = parser.parse_args(argv)
    if args.command == "run" and args.config is not None:
        run.set_defaults(**_config_defaults(args.config, run))
        args = parser.parse_args(argv)
        if not args.inputs:
            args.inputs = run.get_default("inputs") or []
    return args


def _options(args: argparse.Namespace) -> RunOptions:
    if args.out is None:
        raise ConfigError("--out is required (the JSON-lines output file)")
    if not args.inputs:
        raise ConfigError("give at least one INPUT (a file, a folder or a glob)")
    if args.retry_failed and not args.resume:
        raise ConfigError("--retry-failed goes with --resume")
    out = Path(args.out)
    return RunOptions(
        inputs=list(args.inputs),
        out=out,
        journal=Path(args.journal) if args.journal else out.with_name(out.name + ".journal"),
        resume=args.resume,
        retry_failed=args.retry_failed,
        overwrite=args.overwrite,
        ordered=args.ordered is not False,
        workers=parse_workers(args.workers),
        rate_limit=parse_rate(args.rate_limit),
        args=args,
        **_executor_options(args),
    )


def _executor_options(args: argparse.Namespace) -> dict[str, Any]:
    names = args.ray_stages
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    if args.executor != "ray" and not args.ray_address:
        if names:
            raise ConfigError("--ray-stages goes with --executor ray or --ray-address")
        return {}
    from ._ray import RayExecutor  # imports no ray until a stage opens it

    return {
        "executor": RayExecutor(address=args.ray_address),
        "executor_stages": frozenset(names) if names else None,
    }


def _with_executor(pipeline: Pipeline, options: RunOptions) -> Pipeline:
    """
    The pipeline with the chosen thread stages moved to ``options.executor``.
    """
    if options.executor is None:
        return pipeline
    names = options.executor_stages
    threads = {s.name for s in pipeline.stages if s.kind == "thread"}
    if names is None:
        names = frozenset(
            s.name for s in pipeline.stages if s.kind == "thread" and s.resource is not None
        )
        if not names:
            raise ConfigError(
                "no thread stage has a per-worker resource to move to Ray; "
                f"name some with --ray-stages (thread stages: "
                f"{', '.join(sorted(threads)) or 'none'})"
            )
    elif not names <= threads:
        raise ConfigError(
            f"--ray-stages: not thread stages of this pipeline: "
            f"{', '.join(sorted(names - threads))} (thread stages: "
            f"{', '.join(sorted(threads)) or 'none'})"
        )
    stages = [
        s.replace(executor=options.executor) if s.name in names else s for s in pipeline.stages
    ]
    return Pipeline(stages, max_buffer_size=pipeline.max_buffer_size)


async def _run(options: RunOptions, app: App) -> int:
    if not options.resume and options.journal.exists() and not options.overwrite:
        raise ConfigError(
            f"{options.journal} exists from an earlier run: add --resume to continue it, "
            "or --overwrite to start over"
        )
    async with app.open(options) as job:
        sink = JsonlSink(options.out, record=job.record, overwrite=options.overwrite)
        summary = await _with_executor(job.pipeline, options).run(
            job.source,
            sink=sink,
            journal=Journal(options.journal),
            resume=options.resume,
            retry_failed=options.retry_failed,
            ordered=options.ordered,
            key=job.key,
            progress=make_progress(  # progress:
                options.args.progress, unit=job.unit, counters=job.counters,
                resume_command=resume_command(options.args.command_line),
            ),
            stop_on_signals=True,
            total=job.total,  # progress:
        )
        extra = await job.report(summary) if job.report is not None else []
    if options.args.progress == "none":
        print(summary.format_table(), file=sys.stderr)
    for line in extra:
        print(line, file=sys.stderr)
    closing = await closing_lines(  # progress:
        summary, out=options.out, journal=options.journal, command=options.args.command_line,
        unit=job.unit, outputs=job.outputs,
    )
    if summary.interrupted:
        print("\n".join(closing), file=sys.stderr)  # progress:
        return 130 if summary.interrupted == "SIGINT" else 143
    if summary.ok + summary.failed + summary.skipped == 0:
        print(f"no documents found in: {' '.join(options.inputs)}", file=sys.stderr)
        return 2
    print("\n".join(closing), file=sys.stderr)  # progress:
    if summary.failed and options.args.fail_on_error:
        return 3
    return 0


async def _journal_command(action: str, path: Path) -> int:
    if action == "compact":
        before, after = await Journal.compact(path)
        print(f"{path}: {before} lines -> {after}")
    else:
        state = await Journal.read(path)
        ok = sum(1 for status in state.done.values() if status == "ok")
        print(
            f"{path}: {state.lines} events; {len(state.done)} items done ({ok} ok, "
            f"{len(state.done) - ok} error); {len(state.checkpoints)} items with "
            f"checkpoints; torn tail: {state.torn} bytes"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    The ``asyncpipe`` command.  Returns the exit code.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        app = load_app(os.environ.get("ASYNCPIPE_APP", DEFAULT_APP))
        args = _parse(argv, app)
        args.command_line = command_line(argv)  # progress:
        if args.command == "bench":
            bench = getattr(app, "bench", None)
            if bench is None:
                raise ConfigError("this app has no benchmark harness")
            return int(bench(args.rest))
        if args.command == "journal":
            return anyio.run(_journal_command, args.action, args.path)
        logging.basicConfig(
            level=args.log_level.upper(),
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        options = _options(args)
        return anyio.run(_run, options, app)
    except ConfigError as exc:
        print(f"asyncpipe: {exc}", file=sys.stderr)
        return 2
    except AsyncpipeError as exc:
        print(f"asyncpipe: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
