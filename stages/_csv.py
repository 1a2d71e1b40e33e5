"""
The document app's closing outputs: the fields of every page as CSV (``--csv``) and the
output scored against ``--truth``, both read from the finished JSON lines.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from asyncpipe._durable import atomic_write_text  # private, but the app ships with asyncpipe

from ._resumed import read_records
from .evaluate import evaluate

if TYPE_CHECKING:
    from .evaluate import Truth

__all__ = ["csv_and_score", "write_csv"]

log = logging.getLogger("asyncpipe.documents")


async def csv_and_score(
    args: argparse.Namespace,
    out: Path,
    fields: tuple[str, ...],
    truth: dict[tuple[str, int], Truth] | None,
) -> list[str]:
    """
    Write ``--csv`` and score the output against ``--truth``, when given; the summary's
    lines on them. A truth that matches no page written is a warning, with an example
    of the pages it holds.
    """
    lines: list[str] = []
    # Both read the output as a stream: a long run's output need not fit in memory.
    if args.csv is not None:
        await anyio.to_thread.run_sync(write_csv, args.csv, out, fields)
        lines.append(f"wrote {args.csv}")
    if truth is not None:
        accuracy = await anyio.to_thread.run_sync(
            lambda: evaluate(read_records(out), truth, fields=fields)
        )
        if accuracy.pages:
            lines += accuracy.lines()
        else:
            name, page = next(iter(truth))
            log.warning(
                "%s; --truth %s holds %d %s, e.g. %r page %d",
                accuracy.lines()[0],
                args.truth,
                len(truth),
                "page" if len(truth) == 1 else "pages",
                name,
                page,
            )
    return lines


def write_csv(path: Path, out: Path, fields: tuple[str, ...]) -> None:
    """
    The fields of every page as CSV, one row per output line (``receipt`` is ``k/n`` for
    one of several receipts on a scan, else empty), written whole from the
    (exactly-once) JSON lines, so crashes and resumes never duplicate a row.  The file is
    replaced atomically and durably: a crash leaves the old CSV or the new one.

    A page whose LLM stage failed for good has the offline rules' fields
    (``fallback_fields``) in its row, and its error cell says so: the JSON line keeps them
    apart, a spreadsheet would otherwise show the page empty.  The last cell holds the
    record's warnings, if any, joined by ``; ``.  No cell starts as a formula
    (see `_inert`).
    """
    if path.parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_text(path) as fh:
        writer = csv.writer(fh)
        header = ["id", "source", "page", "receipt", "status", *fields, "error", "warnings"]
        writer.writerow(header)
        for record in read_records(out):
            fallback = not record.get("fields") and record.get("fallback_fields")
            values = (record.get("fallback_fields") if fallback else record.get("fields")) or {}
            error = record.get("error")
            receipt = record.get("receipt")
            said = f"{error['stage']}: {error['type']}: {error['message']}" if error else ""
            row = [
                record["id"],
                record.get("source"),
                record.get("page"),
                f"{receipt['index']}/{receipt['of']}" if receipt else "",
                record["status"],
                *(values.get(name) or "" for name in fields),
                f"{said} (fields: the offline rules')" if fallback else said,
                "; ".join(record.get("warnings", ())),
            ]
            writer.writerow([_inert(cell) for cell in row])


def _inert(cell: object) -> object:
    """
    ``cell`` as a spreadsheet shows it and never runs it: text that starts as a formula
    does (``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a receipt's
    ``@SUM(1+1) ENTERPRISE`` or a file named ``=HYPERLINK(…).pdf``) gets a leading ``'``,
    as OWASP advises against CSV injection.  A number a spreadsheet would read (``-5.00``)
    is left as it is.
    """
    if not isinstance(cell, str) or not cell.startswith(_FORMULA_STARTS):
        return cell
    if _NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*")
