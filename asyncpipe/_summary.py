"""
The closing lines of a command-line run: where the output, the journal and the app's
other files are; the remote workers lost on the way, if any; how many items failed, by
stage and cause; and the exact command that retries them, or that finishes an
interrupted run.
"""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio.to_thread
import orjson

from ._progress import format_duration
from ._stats import RunSummary

__all__ = [
    "closing_lines",
    "command_line",
    "follow_up_command",
    "resume_command",
]

# The input that reads standard input, and what a follow-up command of a run given it
# needs besides its words.
_STDIN = "-"
_PIPE_AGAIN = "# with the same document piped in again"

# Flags that a follow-up command replaces (it adds its own --resume / --retry-failed, and
# --overwrite has no business in a command that continues a run).
_DROPPED = frozenset({"--resume", "--retry-failed", "--overwrite"})


def command_line(argv: Sequence[str]) -> list[str]:
    """
    The command the user typed, as a list: the interpreter and ``-m asyncpipe`` (or the
    script) as the process was started, then ``argv``.

    When ``argv`` is not the tail of the process's own command line (``main`` called
    from Python), the prefix is ``python -m asyncpipe``.
    """
    argv = list(argv)
    orig = list(getattr(sys, "orig_argv", []))
    if argv and orig[len(orig) - len(argv) :] == argv and len(orig) > len(argv):
        return orig[: len(orig) - len(argv)] + argv
    if not argv and orig and sys.argv[1:] == []:
        return orig
    return ["python", "-m", "asyncpipe", *argv]


def follow_up_command(command: Sequence[str], *flags: str) -> str:
    """
    ``command`` without ``--resume``, ``--retry-failed`` and ``--overwrite``, then
    ``flags``, quoted for a POSIX shell.  When an input is ``-`` (standard input), a
    shell comment after the command says to pipe the document in again: the command
    alone would wait on the terminal, or read what else is piped to it.
    """
    kept = [word for word in command if word not in _DROPPED]
    text = shlex.join([*kept, *flags])
    return f"{text}  {_PIPE_AGAIN}" if _STDIN in kept else text


def resume_command(command: Sequence[str]) -> str:
    """
    The command that finishes an interrupted run: ``command`` with ``--resume`` (and
    ``--retry-failed`` if the interrupted run had it).
    """
    retry = ["--retry-failed"] if "--retry-failed" in command else []
    return follow_up_command(command, "--resume", *retry)


def _count_outcomes(path: Path) -> tuple[int, Counter[tuple[str, str]]]:
    """
    Read a JSON-lines output: how many lines it holds, and its error records counted by
    ``(error.stage, error.type)``.  Lines without ``status == "error"`` count as done.
    """
    lines = 0
    errors: Counter[tuple[str, str]] = Counter()
    try:
        with path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                lines += 1
                if b'"error"' not in line:  # cheap: most lines need no parsing
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("status") == "error":
                    error = record.get("error") or {}
                    errors[(str(error.get("stage", "?")), str(error.get("type", "?")))] += 1
    except FileNotFoundError:
        pass
    return lines, errors


async def closing_lines(
    summary: RunSummary,
    *,
    out: Path,
    journal: Path,
    command: Sequence[str],
    unit: str = "items",
    outputs: Mapping[str, Path | None] | None = None,
) -> list[str]:
    """
    The lines to print when a run ends.

    Args:
        summary: the run's summary.
        out: the JSON-lines output (read to count error records of this and earlier runs).
        journal: the checkpoint journal.
        command: the command the user typed (see `command_line`).
        unit: the plural word for an item.
        outputs: the app's other files by label, e.g. ``{"CSV": Path("fields.csv")}``.
    """
    lines_out, errors = await anyio.to_thread.run_sync(_count_outcomes, out)
    failed = sum(errors.values())
    lines: list[str] = []
    progress = summary.progress
    if summary.interrupted:
        total = progress.total if progress is not None else None
        if total is not None and lines_out >= total:
            where = f"all {lines_out} {unit} are in the output"
        else:
            verb = "is" if lines_out == 1 and total is None else "are"
            written = (
                _counted(lines_out, unit) if total is None else f"{lines_out} of {total} {unit}"
            )
            where = f"{written} {verb} in the output"
        lines.append(
            f"Run interrupted by {summary.interrupted} after "
            f"{format_duration(summary.elapsed)}: {where}."
        )
        if summary.cancelled:
            lines.append(
                f"A second signal cancelled the {unit} in flight: they are "
                "not in the output, and the resumed run does them from their last checkpoint."
            )
    else:
        lines.append(
            f"Done in {format_duration(summary.elapsed)}: "
            f"{_counted(lines_out, unit)} in the output, "
            f"{lines_out - failed} ok, {failed} failed"
            + (
                f" ({summary.skipped} {'was' if summary.skipped == 1 else 'were'} done by an "
                "earlier run)"
                if summary.skipped
                else ""
            )
            + "."
        )
    lines.append(f"  output:  {out}")
    for label, path in (outputs or {}).items():
        if path is not None:
            lines.append(f"  {label + ':':<8} {path}")
    lines.append(f"  journal: {journal}")
    # Remote workers lost on the way (the items are safe; the user should know).
    for name, losses in summary.worker_losses.items():
        if losses:
            lines.append(f"{name}: {losses.describe()}")
    if summary.duplicates:
        lines.append(
            f"{_counted(summary.duplicates, 'input values')} skipped: an earlier input had "
            "the same key (the same file given twice, say)"
        )
    if failed:
        lines.append(f"{_counted(failed, unit)} failed (error records in the output):")
        for (stage, cause), count in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:>6}  in {stage}: {cause}")
        lines.append(f"To retry them: {follow_up_command(command, '--resume', '--retry-failed')}")
    if summary.interrupted:
        lines.append(f"To finish the run: {resume_command(command)}")
    return lines


def _counted(count: int, unit: str) -> str:
    """``count`` of ``unit`` (a plural such as ``"pages"``), singular for one."""
    return f"{count} {unit[:-1] if count == 1 and unit.endswith('s') else unit}"
