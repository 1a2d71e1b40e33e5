"""
The command line: ``python -m asyncpipe run INPUT... --out results.jsonl``.

The framework owns what every pipeline needs from a command line: output, journal,
resume, run-wide overrides by stage name (workers, rate limits, executor), ordering,
config file, progress, signals and exit codes.  What the pipeline *is* comes from an
app (see `asyncpipe.App`), found by name, so the framework holds no app code.

Exit codes: 0 the run finished (error records, if any, are in the output; with
``--fail-on-error`` they give 3, as do inputs that could not be read whose earlier
lines the output keeps); 1 the run failed; 2 bad usage or no input found;
130 / 143 stopped by SIGINT / SIGTERM, 4 stopped by the app (e.g. its cost ceiling);
resume with ``--resume``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Container, Sequence
from pathlib import Path

import anyio
import orjson

from ._app import App, RunOptions, load_app, start_environment
from ._args import app_spec, parse, run_options
from ._exceptions import AsyncpipeError, ConfigError, JournalError, OutputError
from ._journal import Journal, compact_file
from ._journal_state import (
    JOURNAL_HEAD,
    NotAnOutput,
    Written,
    corrupt_lines,
    read_statuses,
)
from ._keyindex import index_path
from ._progress import make_progress
from ._restart import restart_with
from ._runid import check_resume, other_run
from ._sink import JsonlSink
from ._startup import INTERRUPTED, leave_startup
from ._summary import closing_lines, command_line, resume_command

__all__ = ["main"]

# SIGINT and SIGTERM as shells report them; 4 for a stop the app asked for (`StopIntake`).
_STOP_CODES = {"SIGINT": 130, "SIGTERM": 143}


async def run_command(options: RunOptions, app: App) -> int:
    """
    Run the app's job with ``options``; print the summary; return the exit code.
    """
    if not options.resume and options.journal.exists() and not options.overwrite:
        raise ConfigError(
            f"{options.journal} exists from an earlier run: add --resume to continue it, "
            "or --overwrite to start over"
        )
    if options.resume:
        # As the run itself does, but before the app starts (an LLM server, a cluster).
        await anyio.to_thread.run_sync(check_resume, options.journal, options.out)
    async with app.open(options) as job:
        pipeline = options.configure(job.pipeline)
        summary = await pipeline.run(
            job.source,
            sink=JsonlSink(
                options.out,
                record=job.record,
                overwrite=options.overwrite,
                superseded=job.superseded,
            ),
            journal=Journal(options.journal),
            resume=options.resume,
            retry_failed=options.retry_failed,
            ordered=options.ordered,
            key=job.key,
            progress=make_progress(
                options.progress,
                unit=job.unit,
                counters=job.counters,
                resume_command=resume_command(options.command),
            ),
            stop_on_signals=True,
            total=job.total,
        )
        extra = await job.report(summary) if job.report is not None else []
    if options.progress == "none":
        print(summary.format_table(), file=sys.stderr)
    for line in extra:
        print(line, file=sys.stderr)
    closing = await closing_lines(
        summary,
        out=options.out,
        journal=options.journal,
        command=options.command,
        unit=job.unit,
        outputs=job.outputs,
    )
    if summary.interrupted:
        print("\n".join(closing), file=sys.stderr)
        return _STOP_CODES.get(summary.interrupted, 4)
    if summary.ok + summary.failed + summary.skipped == 0:
        print(f"no input items found in: {' '.join(options.inputs)}", file=sys.stderr)
        return 2
    print("\n".join(closing), file=sys.stderr)
    # An input the run could not read, whose earlier lines the output keeps, is as
    # much a failure to a demanding user as an error record.
    unread = job.unread() if job.unread is not None else 0
    if (summary.failed or unread) and options.fail_on_error:
        return 3
    return 0


async def journal_command(action: str, path: Path, out: Path | None = None) -> int:
    """
    ``asyncpipe journal compact|show PATH [--out OUTPUT]``.

    A corrupt line (see `asyncpipe._journal_state.EventReader`) is no error here, as it
    is none for a run: ``show`` names it, ``compact`` drops it and names it.

    The output (``out``, or the journal's name without ``.journal`` where that file
    exists, as a run names its journal by default) says which items are written: an item
    it holds written ok whose done line the journal lost (a crash between the two
    writes, a corrupt line) has dead checkpoints, which ``show`` counts and ``compact``
    drops, by the rule of a run's closing compaction: items written with an error, or
    that the journal knows failed, keep theirs.  Without an output they are kept.

    Only the output of the journal's own run can say so: another run's (over the same
    inputs, or others whose keys overlap) holds items this run never wrote, whose
    checkpoints a resume needs.  A run with a journal and a `JsonlSink` (every run of
    ``asyncpipe run``) writes its id in the journal and in the output's key index
    (``OUTPUT.keys``), and an output whose index names another run is refused.  Where
    either holds no id (a journal or an output of an older version, an index deleted or
    naming another file), the output is taken at its word.

    Raises:
        ConfigError: ``path`` is no journal: missing, a folder, or a run's output; or
            ``out`` is missing, no run's output, or another run's.
    """
    await anyio.to_thread.run_sync(_check_journal, path)
    output, written = await anyio.to_thread.run_sync(_output, path, out)
    if action == "compact":
        before, after, corrupt, dropped = await anyio.to_thread.run_sync(
            lambda: compact_file(path, written=written)
        )
        print(f"{path}: {before} lines -> {after}")
        if corrupt:
            print(f"dropped the corrupt {corrupt_lines(corrupt)}: {_CORRUPT}")
        if written is None:
            print(f"dead checkpoints: kept, {_unknown(output)}")
        elif dropped:
            print(f"dead checkpoints: dropped those of {dropped} {_dead(output)}")
        return 0
    state = await Journal.read(path)
    ok = sum(1 for status in state.done.values() if status == "ok")
    # The checkpoints of items done ok are dead weight until a compaction drops them.
    kept = sum(1 for key in state.checkpoints if state.done.get(key) != "ok")
    print(
        f"{path}: {state.lines} events; {len(state.done)} items done ({ok} ok, "
        f"{len(state.done) - ok} error); {kept} items not done ok with checkpoints; "
        f"torn tail: {state.torn} bytes"
    )
    if written is None:
        print(f"dead checkpoints: not counted, {_unknown(output)}")
    else:
        dead = sum(
            1
            for key in state.checkpoints
            if key not in state.done and key not in state.failed and key in written
        )
        print(f"dead checkpoints: {dead} {_dead(output)} (compact drops them)")
    if state.corrupt:
        print(f"corrupt (skipped): {corrupt_lines(state.corrupt)}: {_CORRUPT}")
    return 0


def _dead(output: Path | None) -> str:
    return f"items written ok to {output} whose done lines the journal lost"


def _unknown(output: Path | None) -> str:
    """
    Why the dead checkpoints are not known: no output to say which items are written.
    """
    where = f"no output at {output}" if output is not None else "no output named"
    return f"{where} to say which items are written (give --out OUTPUT)"


def _output(journal: Path, out: Path | None) -> tuple[Path | None, Container[str] | None]:
    """
    The output that says which items are written (``out``, or the journal's name
    without ``.journal`` if that file exists), and the keys of its lines written ok.

    A line of it that is no record (its torn last line, one garbled) counts as not
    written: its item keeps its checkpoints, which costs at most their bytes.

    Raises:
        ConfigError: ``out`` is given and missing, or the file is no run's output, or
            another run's than the journal's (`_check_run`).
    """
    output = out
    if output is None and journal.suffix == ".journal":
        output = journal.with_suffix("")
    if output is None or (out is None and not output.is_file()):
        return output, None
    _check_run(journal, output, named=out is not None)
    try:
        ok, errors = read_statuses(output)
    except NotAnOutput:
        raise ConfigError(
            f"{output} is not a run's output: its first line is no record with an "
            '"id" (give the run\'s --out as --out)'
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"no such output: {output}") from None
    except IsADirectoryError:
        raise ConfigError(f"{output} is a folder: give the run's output file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the output {output}: {exc}") from exc
    return output, Written(ok, lambda: (ok, errors))


def _check_run(journal: Path, output: Path, *, named: bool) -> None:
    """
    Refuse an output written by another run than the journal's: both name their run
    (the journal's first line, the output's key index), and the ids differ.

    Raises:
        ConfigError: they do.
    """
    ids = other_run(journal, output)
    if ids is None:
        return
    ours, theirs = ids
    found = "given as --out" if named else "found beside the journal"
    raise ConfigError(
        f"{output} ({found}) is another run's output, not this journal's: its key index "
        f"{index_path(output)} names the run {theirs}, the journal the run {ours}; "
        "compacting by it would drop the checkpoints of items this run never wrote.  Give "
        "this run's own output as --out OUTPUT (the --out of the run that wrote the journal)"
    )


#: What `journal_command` says of corrupt lines.
_CORRUPT = (
    "what such a line held is lost, at worst a checkpoint whose stage a --resume runs again "
    "for its item (the output says which items are done)"
)


#: Loggers of the HTTP client that say INFO per request: an LLM app's run would log a line
#: per call, whole URL (query string and all) included; shown from ``--log-level debug``.
_CHATTY = ("httpx", "httpcore")


def _check_journal(path: Path) -> None:
    """
    Refuse a ``path`` that is no journal, saying what it is: a missing file is not a
    journal of 0 events, and a run's output is not a corrupt journal to move aside.

    Raises:
        ConfigError: ``path`` is missing, a folder, empty, a run's output, or any other
            file whose first line is no journal event (``compact`` rewrote a JPEG or a
            CSV given by mistake as a journal of no events, and exited 0).
    """
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder: give the journal file, e.g. {path}/results.jsonl.journal"
        )
    journal = path.with_name(path.name + ".journal")
    try:
        with path.open("rb") as file:
            first = file.readline(1 << 20)
    except FileNotFoundError:
        raise ConfigError(f"no such journal: {path}") from None
    except OSError:
        return  # the journal's own reading says what is wrong
    if not first:
        raise ConfigError(f"{path} is empty: it holds no journal event")
    if first.startswith(JOURNAL_HEAD):
        return  # a journal, its first line whole or torn: its reader judges the rest
    try:
        event = orjson.loads(first)
    except orjson.JSONDecodeError:
        event = None
    if isinstance(event, dict) and journal.exists():
        # Every journal line is an event with "ev"; a JSON object without it, beside a
        # journal of its name, is a record of that run's output.
        raise ConfigError(f"{path} is a run's output, not a journal: its journal is {journal}")
    if isinstance(event, dict):
        raise ConfigError(
            f"{path} is not a journal: its first line is a JSON object, not a journal event "
            f"(a journal's lines begin {JOURNAL_HEAD.decode()}; a run's output? its journal "
            f"would be {journal}, or the run's --journal)"
        )
    raise ConfigError(
        f"{path} is not a journal: its first line is no journal event (a journal's lines "
        f"begin {JOURNAL_HEAD.decode()})"
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """
    Writes each record to ``sys.stderr`` as it is then: the terminal's progress display
    (`RichProgress`) puts its own ``sys.stderr`` in place while it is shown, which prints
    a line above the bar and table rather than through them.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configure_logging(level: str) -> None:
    """
    Log at ``level`` to stderr, the HTTP client's per-request lines only when debugging.
    """
    logging.basicConfig(
        level=level.upper(),
        handlers=[_StderrHandler()],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """
    The ``asyncpipe`` command.  Returns the exit code.

    Run as the process's command (``argv`` not given), ``run`` first restarts the process
    once when the app asks for variables it does not have (`start_environment`).
    """
    process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    options = None
    try:
        # From here a Ctrl-C is the ``except KeyboardInterrupt`` below; one while the
        # package was imported is answered now.
        if leave_startup():
            raise KeyboardInterrupt
        spec, command = app_spec(argv)
        # Only ``run`` needs the app; ``journal`` and ``--help`` work without one.
        app = None
        if command == "run":
            app = load_app(spec or os.environ.get("ASYNCPIPE_APP") or None)
        args, app_dests = parse(argv, app)
        if args.command == "journal":
            return anyio.run(journal_command, args.action, args.path, args.out)
        assert app is not None
        if process:
            restart_with(start_environment(app))
        _configure_logging(args.log_level)
        options = run_options(args, app_dests, command_line(argv))
        return anyio.run(run_command, options, app)
    except KeyboardInterrupt:
        # Ctrl-C before the run watched for it (while it started: reading the output
        # back, loading models): what is written stays written.
        print(INTERRUPTED, file=sys.stderr)
        if options is not None:
            print(f"To finish the run: {resume_command(options.command)}", file=sys.stderr)
        return 130
    except ConfigError as exc:
        print(f"asyncpipe: {exc}", file=sys.stderr)
        return 2
    except AsyncpipeError as exc:
        print(f"asyncpipe: {type(exc).__name__}: {exc}", file=sys.stderr)
        if isinstance(exc, JournalError | OutputError) and options is not None:
            # The lines written and the checkpoints journaled are kept: say how to go on.
            print(
                "The lines written so far are kept. Once that is put right, finish the run:\n"
                f"  {resume_command(options.command)}",
                file=sys.stderr,
            )
        return 1
