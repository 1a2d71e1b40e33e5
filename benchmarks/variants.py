"""
The field rules on the 40 receipts printed another way: paid by card, a note under the
name, the registration number moved, the name wrapped, a slogan on top, the date in
other forms.

The 40 shared receipts are a few shops' layouts. This script changes their rows the way
other shops print them and scores the fields each change can move, exact as SROIE
scores them, against the same keys:

- ``card``: every row naming cash, change, a tender or a payment dropped (the total,
  with no ``CASH - CHANGE`` to settle it);
- ``note``: ``(BRANCH OFFICE)`` under the name row (the company);
- ``glued``: the registration number's own row joined onto the name's (company, address);
- ``apart``: a registration number printed after the name moved to a row of its own;
- ``wrapped``: a name longer than :data:`HEADER_WIDTH` wrapped onto a second row at the
  last space that fits, as a printer wraps a name printed double width (the company);
- ``slogan``: one of :data:`SLOGANS` above the name (the company);
- ``code``: ``A12345`` on a row above everything, as a number written on the receipt by
  hand reads (company, address);
- ``narrow``: each address row cut after its first comma, as narrow paper wraps it
  (the address);
- ``wide``: the address rows printed as one row, as wide paper does (the address);
- ``phone``: ``TEL: 03-1234 5678`` on the address's last row (the address);
- ``timed``: the date glued to a time after it, ``15/01/201812:46`` (the date);
- ``month``: the date printed with its month's name, ``15 JAN 2018`` (the date; the key
  is changed alike).

A change applies where the key's name opens a row among the first eight (``code``: on
every receipt; ``card``: where a row names a payment; ``narrow``, ``wide`` and
``phone``: where two rows or more in a run are parts of the key's address, for ``phone``
the last of them ending it; the dates: where the key's date is printed); the counts say
on how many receipts it did.
``as printed`` is the same receipts unchanged. Rows come from the transcripts (``box/``,
SROIE's own text) and, with ``--cache-dir``, from the cached OCR too
(``benchmarks/fields_ocr.py``), after the offline correct and fix stages, grouped as the
structure stage groups them; with ``--written SETS``, from the receipts reviewers wrote
(``benchmarks/written/``) too. The development half (even positions) and the held-out
half (odd) are printed apart; ``--misses`` lists the misses of the development half and
the written sets, never the held-out half's.

Usage (from the project root)::

    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/variants.py
    .venv/bin/python benchmarks/variants.py --cache-dir DIR --tree OLD --only card

``--tree`` judges the rules of another checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["VARIANTS", "main"]

HERE = Path(__file__).resolve().parent
# A row that says how the bill was paid.
_PAYMENT = re.compile(r"CASH|CHANGE|TENDER|PAID|BAKI|TUNAI", re.IGNORECASE)
# A registration number alone on a row, or ending one: "(001451637-M)", "JM0325955-V".
_NUMBER = re.compile(r"\s*\(?\s*(?:[A-Z]{2})?\d{5,}\s*-\s*[A-Z]\s*\)?\s*$")

Rows = list[str]
Key = dict[str, str]
# A variant: (rows, key) -> the changed rows and key, or None where it does not apply.
Variant = Callable[[Rows, Key], tuple[Rows, Key] | None]


def _name_row(rows: Rows, key: Key) -> int | None:
    """The row the key's company name opens, among the first eight."""
    company = key.get("company", "").upper()
    if not company:
        return None
    return next((i for i, row in enumerate(rows[:8]) if row.upper().startswith(company)), None)


def _card(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    kept = [row for row in rows if not _PAYMENT.search(row)]
    return (kept, key) if len(kept) < len(rows) else None


def _note(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    at = _name_row(rows, key)
    return None if at is None else ([*rows[: at + 1], "(BRANCH OFFICE)", *rows[at + 1 :]], key)


def _glued(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    at = _name_row(rows, key)
    if at is None or at + 1 >= len(rows) or not _NUMBER.fullmatch(" " + rows[at + 1]):
        return None
    return [*rows[:at], f"{rows[at]} {rows[at + 1].strip()}", *rows[at + 2 :]], key


def _apart(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    at, width = _name_row(rows, key), len(key.get("company", ""))
    if at is None or not _NUMBER.fullmatch(rows[at][width:]):
        return None
    return [*rows[:at], rows[at][:width], rows[at][width:].strip(), *rows[at + 1 :]], key


#: A header's width in characters: a double-width font on a 42-column printer.
HEADER_WIDTH = 21


def _wrapped(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    at, name = _name_row(rows, key), key.get("company", "")
    if at is None or len(name) <= HEADER_WIDTH or rows[at].strip().upper() != name.upper():
        return None
    cut = rows[at].rfind(" ", 0, HEADER_WIDTH + 1)  # the printer wraps at the last space
    if cut <= 0:
        return None
    return [*rows[:at], rows[at][:cut], rows[at][cut + 1 :], *rows[at + 1 :]], key


#: Slogans printed above a name; a receipt gets one by its name's checksum.
SLOGANS = (
    "QUALITY IS OUR PRIORITY",
    "YOUR TRUSTED PARTNER",
    "FRESH FROM THE OVEN",
    "THE BEST IN TOWN",
    "KUALITI TERJAMIN",
    "WE CARE FOR YOU",
)


def _slogan(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    at = _name_row(rows, key)
    if at is None:
        return None
    slogan = SLOGANS[zlib.crc32(key["company"].encode()) % len(SLOGANS)]
    return [*rows[:at], slogan, *rows[at:]], key


def _address_rows(rows: Rows, key: Key) -> range | None:
    """The run of two rows or more among the first 14 that the key's address holds."""
    address = key.get("address", "").upper()
    held = [i for i, row in enumerate(rows[:14]) if len(row) > 3 and row.upper() in address]
    if len(held) < 2 or held != list(range(held[0], held[-1] + 1)):
        return None
    return range(held[0], held[-1] + 1)


def _narrow(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    held = _address_rows(rows, key)
    if held is None:
        return None
    changed: Rows = []
    for index, row in enumerate(rows):
        cut = row.find(", ")
        if index in held and cut > 3:
            changed += [row[: cut + 1], row[cut + 2 :]]
        else:
            changed.append(row)
    return (changed, key) if len(changed) > len(rows) else None


def _wide(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    held = _address_rows(rows, key)
    if held is None:
        return None
    joined = " ".join(rows[index] for index in held)
    return [*rows[: held.start], joined, *rows[held.stop :]], key


def _phone(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    held = _address_rows(rows, key)
    if held is None:
        return None
    last = held.stop - 1  # the address's last row, which ends it
    if not key["address"].upper().rstrip(" ,.").endswith(rows[last].upper().rstrip(" ,.")):
        return None
    return [*rows[:last], f"{rows[last]} TEL: 03-1234 5678", *rows[last + 1 :]], key


def _code(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    return ["A12345", *rows], key


def _timed(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    date = key.get("date", "")
    glued = [re.sub(rf"({re.escape(date)})\s+(?=\d)", r"\1", row) for row in rows]
    return (glued, key) if date and glued != rows else None


_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%d-%m-%y", "%Y-%m-%d")


def _month(rows: Rows, key: Key) -> tuple[Rows, Key] | None:
    date = key.get("date", "")
    for form in _DATE_FORMATS:
        try:
            written = datetime.strptime(date, form).strftime("%d %b %Y").upper()
        except ValueError:
            continue
        changed = [row.replace(date, written) for row in rows]
        return (changed, {**key, "date": written}) if changed != rows else None
    return None


#: name -> (change, the fields it can move).
VARIANTS: dict[str, tuple[Variant, tuple[str, ...]]] = {
    "card": (_card, ("total",)),
    "note": (_note, ("company",)),
    "glued": (_glued, ("company", "address")),
    "apart": (_apart, ("company", "address")),
    "wrapped": (_wrapped, ("company",)),
    "slogan": (_slogan, ("company",)),
    "code": (_code, ("company", "address")),
    "narrow": (_narrow, ("address",)),
    "wide": (_wide, ("address",)),
    "phone": (_phone, ("address",)),
    "timed": (_timed, ("date",)),
    "month": (_month, ("date",)),
}


def _rows(lines: list[Any]) -> Rows:
    """The rows the structure stage reads, after the offline correct and fix stages."""
    from stages.offline import correct_lines, fix_layout
    from stages.offline._fields import _row_texts

    return _row_texts(fix_layout("\n".join(correct_lines(lines))), lines)


# One receipt: its rows, its key, and its group (``dev``, ``held`` or ``written``).
Receipt = tuple[Rows, Key, str]


def _sroie(data: Path, cache_dir: Path | None) -> dict[str, list[Receipt]]:
    """``{source: receipts}``: the transcripts, and the cached OCR when given."""
    from stages._page import Line
    from stages.offline import read_box_file, read_key_file

    names = sorted(path.stem for path in (data / "box").glob("*.csv"))
    keys = {name: read_key_file(data / "key" / f"{name}.json") for name in names}
    # The split: even positions development, odd held out.
    groups = {name: "held" if index % 2 else "dev" for index, name in enumerate(names)}
    sources = {
        "transcript": [
            (_rows(read_box_file(data / "box" / f"{name}.csv")), keys[name], groups[name])
            for name in names
        ]
    }
    if cache_dir is not None:
        cached = json.loads((cache_dir / "ocr-default.json").read_text(encoding="utf-8"))
        sources["OCR"] = [
            (
                _rows([Line.from_json(item) for item in cached[name]["lines"]]),
                keys[name],
                groups[name],
            )
            for name in names
            if name in cached
        ]
    return sources


def _written(sets: str) -> list[Receipt]:
    """The receipts reviewers wrote (``benchmarks/written/``), laid out as OCR lines."""
    from fields_written import FIELDS, layout

    from stages._page import Line

    receipts = []
    for name in sets.split(","):
        for case in json.loads((HERE / "written" / f"{name}.json").read_text(encoding="utf-8")):
            _, lines = layout(case["rows"], Line)
            key = {field: case[field] or "" for field in FIELDS}
            receipts.append((_rows(lines), key, "written"))
    return receipts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("ASYNCPIPE_SROIE", HERE.parent.parent / "shared" / "data" / "sroie")
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--cache-dir", type=Path, help="score the cached OCR too")
    parser.add_argument("--written", default="", help="comma-separated written sets too")
    parser.add_argument("--tree", type=Path, help="judge the rules of this checkout")
    parser.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--misses", action="store_true", help="list misses (never held out)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.tree or HERE.parent).resolve()))
    import stages
    from stages.offline import exact_match, find_address, find_company, find_date, find_total

    finders = {
        "company": find_company,
        "date": find_date,
        "address": find_address,
        "total": find_total,
    }
    sources = _sroie(args.data, args.cache_dir)
    if args.written:
        sources["written"] = _written(args.written)
    print(f"rules of {Path(stages.__file__).parent.parent}")
    print("| rows | change | field | receipts | as printed | changed |\n|---|---|---|---|---|---|")
    misses = []
    printed: dict[tuple[str, int, str], bool] = {}  # (source, receipt, field): as printed
    for source, receipts in sources.items():
        for variant in args.only.split(","):
            change, fields = VARIANTS[variant]
            for field in fields:
                counts: dict[str, list[int]] = {}  # group -> [as printed, changed, of]
                for number, (rows, key, group) in enumerate(receipts):
                    found = change(rows, key)
                    if found is None or not key.get(field, "").strip():
                        continue
                    changed, new_key = found
                    got = finders[field](changed)
                    count = counts.setdefault(group, [0, 0, 0])
                    if (source, number, field) not in printed:
                        as_printed = exact_match(key[field], finders[field](rows))
                        printed[(source, number, field)] = as_printed
                    count[0] += printed[(source, number, field)]
                    count[1] += exact_match(new_key[field], got)
                    count[2] += 1
                    if group != "held" and not exact_match(new_key[field], got):
                        misses.append(
                            f"{source} {group}, {variant}, {field}: {new_key[field]!r}, got {got!r}"
                        )
                for group, (before, after, of) in counts.items():
                    print(f"| {source} | {variant} | {field} | {group} {of} | {before} | {after} |")
    for miss in misses if args.misses else []:
        print("MISS", miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
