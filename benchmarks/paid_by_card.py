"""
Totals when the bill is paid by card: the 40 receipts with their cash and change rows
taken out.

``find_total`` trusts ``CASH - CHANGE`` over every label: when what was paid equals a
candidate, that candidate wins. A receipt paid by card prints no cash and no change, so
the labels alone decide, and a tax summary's ``TOTAL`` (the sum before tax, printed
under ``GST SUMMARY``) comes last. This script scores the total on each receipt as
printed and "paid by card": every row naming cash, change, a tender or a payment is
dropped. Rows come from the transcripts (``box/``, SROIE's own text), and, with
``--cache-dir``, from the cached OCR too (``benchmarks/fields_ocr.py``), through the
offline correct and fix stages as the pipeline hands them on. The development half
(even positions) and the held-out half (odd) are printed apart; misses are listed for
the development half only.

Usage (from the project root)::

    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/paid_by_card.py
    .venv/bin/python benchmarks/paid_by_card.py --tree OLD --cache-dir DIR

``--tree`` judges the rules of another checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["PAYMENT", "main"]

HERE = Path(__file__).resolve().parent
#: A row that says how the bill was paid, taken out for "paid by card".
PAYMENT = re.compile(r"CASH|CHANGE|TENDER|PAID|BAKI|TUNAI", re.IGNORECASE)


def _sources(data: Path, cache_dir: Path | None) -> dict[str, dict[str, list[Any]]]:
    """``{source: {name: lines}}``: the transcripts, and the cached OCR when given."""
    from stages._page import Line
    from stages.offline import read_box_file

    names = sorted(path.stem for path in (data / "box").glob("*.csv"))
    sources = {"transcript": {name: read_box_file(data / "box" / f"{name}.csv") for name in names}}
    if cache_dir is not None:
        cached = json.loads((cache_dir / "ocr-default.json").read_text(encoding="utf-8"))
        sources["OCR"] = {
            name: [Line.from_json(item) for item in cached[name]["lines"]]
            for name in names
            if name in cached
        }
    return sources


def _total(lines: list[Any], card: bool) -> str | None:
    """The total ``extract_fields`` reads, with the payment rows dropped when ``card``."""
    from stages._page import Line
    from stages.offline import correct_text, extract_fields, fix_layout
    from stages.offline._geometry import rows

    texts = fix_layout(correct_text("\n".join(line.text for line in lines))).split("\n")
    if len(texts) == len(lines):
        lines = [
            Line(text=text, box=line.box, confidence=line.confidence)
            for text, line in zip(texts, lines, strict=True)
        ]
    if card:  # a row's label and its amount are often two lines: drop the whole row
        kept = [row for row in rows(lines) if not PAYMENT.search(" ".join(x.text for x in row))]
        lines = [line for row in kept for line in row]
    return extract_fields("\n".join(line.text for line in lines), lines, fields=("total",))["total"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("ASYNCPIPE_SROIE", HERE.parent.parent / "shared" / "data" / "sroie")
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--cache-dir", type=Path, help="score the cached OCR too")
    parser.add_argument("--tree", type=Path, help="judge the rules of this checkout")
    args = parser.parse_args(argv)
    sys.path.insert(0, str((args.tree or HERE.parent).resolve()))
    import stages
    from stages.offline import read_key_file

    print(f"rules of {Path(stages.__file__).parent.parent}")
    print("| rows | payment | development (even) | held out (odd) |\n|---|---|---|---|")
    misses = []
    sources = _sources(args.data, args.cache_dir)
    order = sorted(sources["transcript"])  # the split: even positions dev, odd held out
    for source, receipts in sources.items():
        for card in (False, True):
            right = {"dev": [0, 0], "held": [0, 0]}
            for name, lines in sorted(receipts.items()):
                expected = read_key_file(args.data / "key" / f"{name}.json").get("total", "")
                if not expected.strip():
                    continue
                half = "held" if order.index(name) % 2 else "dev"
                got = _total(lines, card)
                right[half][0] += got == expected
                right[half][1] += 1
                if got != expected and half == "dev":
                    misses.append(
                        f"{source}, {'card' if card else 'as printed'}, {name}: "
                        f"expected {expected!r}, got {got!r}"
                    )
            cells = " | ".join(f"{ok}/{count}" for ok, count in right.values())
            print(f"| {source} | {'by card' if card else 'as printed'} | {cells} |")
    for miss in misses:
        print("MISS", miss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
