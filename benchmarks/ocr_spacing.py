"""
Sweep ``RapidOcrEngine(space_gap=...)`` (``stages/ocr/_spacing.py``) on one half of the
SROIE receipts, OCR-ing each receipt only once.

The receipts go through the pipeline's own path (as ``benchmarks/fields_ocr.py``) with
the engine built with ``space_gap=None``, whose recognition step records, per line, the
widest ink-free gap between each pair of neighbouring characters, the height of the crop
and the character pitch (the median distance between neighbouring character centres).
Every setting is then applied to the recorded gaps with
:func:`~stages.ocr._spacing.insert_spaces`, the function the engine calls, and scored
as ``benchmarks/accuracy_offline.py`` scores: exact fields and OCR character accuracy.
``--unit pitch`` measures the gap in character pitches instead of crop heights (an
alternative the engine does not implement). ``--narrow 0.22`` adds the engine's narrow
limit (``narrow_gap``, :func:`~stages.ocr._spacing.space_limits`) to each ``--gaps``
setting, in crop heights; without it the gaps are judged by ``space_gap`` alone.
``--rendered SETS`` records the written sets' clean receipts as ``fields_rendered.py
--font aileron`` printed them (their images must be in ``/tmp/asyncpipe-rendered``) and
scores their fields and characters against the typed rows instead.

Rules are chosen on the development half (the default); the held-out half is for one
final look (``benchmarks/accuracy_offline.py --compare nogaps,default --half held``).

Usage (from the project root)::

    .venv/bin/python benchmarks/ocr_spacing.py [--half dev] [--gaps 0.3,0.45,0.6]
        [--unit crop|pitch] [--cache-dir /tmp/fields-cache] [--after-punctuation]
        [--narrow 0.22] [--rendered g,h,i,j,k]

The recording is cached as ``CACHE_DIR/spacing-HALF.json`` (``spacing-rendered-SETS.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import _root  # noqa: F401  (the project on sys.path)
import numpy as np
from accuracy_offline import split, summary
from fields_ocr import DEFAULT_CACHE_DIR, receipts_parser
from fields_written import layout

from stages._page import Line
from stages.inputs import discover, load_page
from stages.ocr import RapidOcrEngine
from stages.ocr._base import ocr_page
from stages.ocr._rapid import respace_lines
from stages.ocr._spacing import (
    char_centres,
    gap_widths,
    ink_mask,
    insert_spaces,
    space_limits,
)
from stages.offline import (
    DEFAULT_FIELDS,
    edit_distance,
    exact_match,
    extract_fields,
    read_box_file,
    read_key_file,
    score_receipt,
)
from stages.preprocess import PreprocessOptions, preprocess

__all__ = ["main", "record", "rendered_cases", "respaced", "score_rendered"]

_MARK = "\x00"  # tags each recorded text with its index; rapidocr keeps it as is


def record(images: list[Path]) -> dict[str, Any]:
    """
    OCR ``images`` without spacing and record each line's gaps.

    Args:
        images: the receipt images.

    Returns:
        ``{stem: [{"line": line json, "gaps": [...], "pitch": p, "crop": h,
        "spans": [...]}, ...]}``.
    """
    engine = RapidOcrEngine(space_gap=None)
    seen: list[dict[str, Any]] = []

    def recorder(text: str, columns: list[int], steps: float, crop: Any) -> str:
        ink = ink_mask(crop)
        centres = char_centres(columns, steps, crop.shape[1])
        spans = [right - left for left, right in pairwise(centres)]
        usable = len(columns) == sum(not char.isspace() for char in text) and len(columns) > 1
        seen.append(
            {
                "gaps": gap_widths(np.asarray(ink.any(axis=0)), centres) if usable else None,
                "pitch": statistics.median(spans) if spans else 0.0,
                "crop": float(crop.shape[0]),
                "spans": spans,
            }
        )
        return f"{text}{_MARK}{len(seen) - 1}"

    respace_lines(engine._ocr, recorder)
    out: dict[str, Any] = {}
    for image in images:
        seen.clear()
        page = preprocess(load_page(next(iter(discover([image])))), PreprocessOptions())
        entries = []
        for line in ocr_page(engine, page).lines or []:
            text, _, index = line.text.rpartition(_MARK)
            clean = Line(text, line.box, line.confidence)
            entries.append({"line": clean.to_json(), **seen[int(index)]})
        out[image.stem] = entries
        print(f"recorded {image.name}", file=sys.stderr)
    engine.close()
    return out


def respaced(
    entries: list[dict[str, Any]],
    space_gap: float | None,
    unit: str,
    join: float = 0.0,
    narrow: float | None = None,
) -> list[Line]:
    """
    One receipt's recorded lines with spaces put in at ``space_gap`` (None: as read).

    Args:
        entries: the receipt's recording (see :func:`record`).
        space_gap: the widest gap that is not a space, in ``unit``s.
        unit: ``crop`` (the crop's height, as the engine does) or ``pitch``.
        join: drop the spaces read in a gap narrower than this, in ``unit``s.
        narrow: the engine's ``narrow_gap`` (``crop`` only); ``None`` for none.

    Returns:
        The lines.
    """
    lines = []
    for entry in entries:
        line = Line.from_json(entry["line"])
        if space_gap is not None and entry["gaps"] is not None and entry[unit] > 0:
            limits = space_limits(
                line.text, entry["gaps"], entry[unit], space_gap, narrow if unit == "crop" else None
            )
            line = Line(
                insert_spaces(line.text, entry["gaps"], limits, join * entry[unit]),
                line.box,
                line.confidence,
            )
        lines.append(line)
    return lines


def rendered_cases(sets: list[str]) -> dict[str, dict[str, Any]]:
    """The clean written receipts of ``sets`` by their rendered image's stem (``SET-ID``)."""
    cases = {}
    for name in sets:
        path = Path(__file__).resolve().parent / "written" / f"{name}.json"
        for case in json.loads(path.read_text(encoding="utf-8")):
            if not case["noisy"]:
                cases[f"{name}-{case['id']}"] = case
    return cases


def score_rendered(lines: list[Line], case: dict[str, Any]) -> tuple[list[bool], int, int]:
    """
    One rendered receipt's fields, exact, and its text's edits against the typed rows.

    Returns:
        Whether each of ``DEFAULT_FIELDS`` is right, the edits and the typed characters
        (whitespace runs collapsed, the rows joined in order).
    """
    got = extract_fields("\n".join(line.text for line in lines), lines)
    right = [exact_match(case[field], got.get(field)) for field in DEFAULT_FIELDS]
    typed = " ".join(layout(case["rows"], Line)[0].split())
    read = " ".join(" ".join(line.text for line in lines).split())
    return right, edit_distance(typed, read), len(typed)


def _spaces_after(text: str) -> tuple[str, list[bool]]:
    """``text`` without spaces, and for each character whether a space followed it."""
    chars: list[str] = []
    spaced: list[bool] = []
    for char in text:
        if char.isspace():
            if spaced:
                spaced[-1] = True
            continue
        chars.append(char)
        spaced.append(False)
    return "".join(chars), spaced


def after_punctuation(recorded: dict[str, Any], data: Path) -> None:
    """
    Print, for each space after ``,``, ``.`` and ``:``, whether the recogniser read one and
    whether the transcript has one, with the ink gap there in crop heights.

    Only lines whose characters (spaces aside) equal one transcript line's are used, so
    that the two can be compared character by character.

    Args:
        recorded: the recording of one half (see :func:`record`).
        data: the SROIE folder (its ``box/`` transcripts).
    """
    seen: dict[tuple[str, bool, bool], list[float]] = {}
    for name, entries in recorded.items():
        truth: dict[str, list[bool]] = {}
        for line in read_box_file(data / "box" / f"{name}.csv"):
            chars, spaced = _spaces_after(line.text.upper())
            truth.setdefault(chars, spaced)
        for entry in entries:
            chars, spaced = _spaces_after(Line.from_json(entry["line"]).text.upper())
            if entry["gaps"] is None or chars not in truth or entry["crop"] <= 0:
                continue
            for index, char in enumerate(chars[:-1]):
                if char in ",.:":
                    key = (char, spaced[index], truth[chars][index])
                    seen.setdefault(key, []).append(entry["gaps"][index] / entry["crop"])
    print("| after | read a space | transcript has one | count | ink gaps (crop heights) |")
    print("|---|---|---|---|---|")
    for (char, read, right), gaps in sorted(seen.items()):
        listed = ", ".join(f"{gap:.2f}" for gap in sorted(gaps)[:12])
        more = ", ..." if len(gaps) > 12 else ""
        print(f"| `{char}` | {read} | {right} | {len(gaps)} | {listed}{more} |")


def _print_rendered(
    recorded: dict[str, Any], cases: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    """One row per ``--gaps`` setting over rendered receipts (``--rendered``)."""
    print(f"| space_gap ({len(cases)} rendered receipts, narrow_gap {args.narrow}) | ", end="")
    print(" | ".join(DEFAULT_FIELDS) + " | all four | characters |")
    print("|---" * (len(DEFAULT_FIELDS) + 3) + "|")
    for setting in [None, *(float(value) for value in args.gaps.split(","))]:
        right, every, edits, chars = [0] * len(DEFAULT_FIELDS), 0, 0, 0
        for stem, case in cases.items():
            lines = respaced(recorded[stem], setting, "crop", narrow=args.narrow)
            ok, wrong, typed = score_rendered(lines, case)
            right = [count + hit for count, hit in zip(right, ok, strict=True)]
            every += all(ok)
            edits, chars = edits + wrong, chars + typed
        label = "off" if setting is None else f"{setting:g}"
        cells = " | ".join(str(count) for count in right)
        print(f"| {label} | {cells} | {every} | {1 - edits / chars:.4f} |")


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``argv``: ``sys.argv[1:]`` when ``None``); returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--half", choices=("dev", "held"), default="dev")
    parser.add_argument("--gaps", default="0.25,0.3,0.35,0.4,0.45,0.5,0.6,0.8")
    parser.add_argument("--unit", choices=("crop", "pitch"), default="crop")
    parser.add_argument(
        "--joins", default="0", help="drop read spaces in gaps narrower than these (units)"
    )
    parser.add_argument(
        "--after-punctuation",
        action="store_true",
        help="print the spaces after , . : read and transcribed, with their ink gaps",
    )
    parser.add_argument("--narrow", type=float, help="the engine's narrow_gap, crop heights")
    parser.add_argument("--rendered", help="comma-separated written sets, as rendered")
    args = parser.parse_args(argv)
    cases: dict[str, dict[str, Any]] = {}
    if args.rendered:
        cases = rendered_cases(args.rendered.split(","))
        rendered = Path("/tmp/asyncpipe-rendered")
        images = [rendered / f"{stem}.jpg" for stem in cases]
        chosen = list(cases)
        path = args.cache_dir / f"spacing-rendered-{args.rendered.replace(',', '')}.json"
    else:
        images = sorted((args.data / "img").glob("*.jpg"))
        chosen = split([image.stem for image in images])[args.half]
        path = args.cache_dir / f"spacing-{args.half}.json"
    if path.exists():
        recorded: dict[str, Any] = json.loads(path.read_text())
    else:
        recorded = record([image for image in images if image.stem in chosen])
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recorded))
    if cases:
        _print_rendered(recorded, cases, args)
        return 0
    if args.after_punctuation:
        after_punctuation(recorded, args.data)
        return 0
    gaps: list[float | None] = [None, *(float(value) for value in args.gaps.split(","))]
    joins = [float(value) for value in args.joins.split(",")]
    settings = [(gap, join) for gap in gaps for join in joins if gap is not None or join == 0]
    print(f"| space_gap / join ({args.unit}; {args.half}, {len(chosen)} receipts) | ", end="")
    print(" | ".join(DEFAULT_FIELDS) + " | OCR char accuracy | spaces added |")
    print("|---" * (len(DEFAULT_FIELDS) + 3) + "|")
    for setting, join in settings:
        scores, added = [], 0
        for name in chosen:
            lines = respaced(recorded[name], setting, args.unit, join, args.narrow)
            added += sum(line.text.count(" ") for line in lines)
            added -= sum(Line.from_json(entry["line"]).text.count(" ") for entry in recorded[name])
            scores.append(
                score_receipt(
                    lines,
                    read_box_file(args.data / "box" / f"{name}.csv"),
                    read_key_file(args.data / "key" / f"{name}.json"),
                )
            )
        figures = summary(scores)
        cells = [
            f"{round(figures[field] * figures[f'{field}_n'])}/{int(figures[f'{field}_n'])}"
            for field in DEFAULT_FIELDS
        ]
        label = "off" if setting is None else f"{setting:g} / {join:g}"
        print(f"| {label} | " + " | ".join(cells) + f" | {figures['ocr']:.4f} | {added} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
