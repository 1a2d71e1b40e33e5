"""
Several receipts on one scan: found, cut apart and read one by one, against the page read
whole; and single receipts, never split.

``--pages`` (the default): the receipts of one half, taken in order, are laid side by side
on white pages in groups of 2 and of 3 (``--layout side``), or one under the other, 2 in
a column and 4 in two columns (``--layout columns``; `stages.testing.flatbed.in_columns`),
``--gap`` apart (a fraction of the widest: 0.08 by default), scanned upright and turned a
quarter (a page scanned sideways), and written as JPEGs. Each page goes through the
pipeline's own path: ``discover`` (with and without ``receipts``) -> ``load_page`` ->
``preprocess`` -> ``ocr_page`` (one ``RapidOcrEngine``, one thread) -> the offline
correct -> fix -> structure stages. The
four fields of each receipt are scored exactly (the SROIE rule) against its key:

- ``split`` (the default run): a field is right when the record of that receipt holds it;
- ``whole`` (``--whole-pages``): when the one record of its page holds it;
- ``alone``: each receipt's own scan, read alone (the bound: what splitting can reach).

``--halves``: for each scan, the least blank (in rows of print) that cuts it in two when
its lower half is moved down by it (a single receipt with a blank that wide inside).

``--split-only`` skips the reading: only how many pages are split right (each receipt's
middle in its own part).

``--singles``: how many of the 40 scans ``discover(receipts=True)`` splits, as scanned,
turned, after each change of ``benchmarks/robustness.py`` and with a note of four lines
laid beside; and drawn single documents whose columns a blank band parts
(`stages.testing.flatbed`); and what looking costs (decoding each page small and looking
for receipts, ms of CPU per page).

Usage (from the project root)::

    .venv/bin/python benchmarks/receipts.py [--half held|dev|all] [--layout side|columns]
        [--gap 0.08] [--split-only] [--singles] [--misses]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
import cv2
import numpy as np
from accuracy_offline import split
from fields_ocr import receipts_parser
from robustness import TRANSFORMS

from stages._page import PageRef
from stages._paper import _glyphs, _letters, _rows, _small_gray, find_receipts
from stages.inputs import discover, load_page
from stages.inputs._receipts import receipts_of
from stages.ocr import RapidOcrEngine, ocr_page
from stages.offline import DEFAULT_FIELDS, exact_match, read_key_file
from stages.offline import extract_fields as extract
from stages.offline._correct import correct_lines
from stages.offline._layout import fix_layout
from stages.preprocess import PreprocessOptions, preprocess
from stages.testing.flatbed import cafe_receipt, in_columns, invoice, note, side_by_side

__all__ = ["main"]


def _fields(engine: RapidOcrEngine, ref: PageRef) -> dict[str, str | None]:
    page = ocr_page(engine, preprocess(load_page(ref), PreprocessOptions()))
    text = fix_layout("\n".join(correct_lines(page.lines)))
    return extract(text, page.lines)


def _groups(names: list[str], layout: str) -> list[list[list[str]]]:
    """The receipts' pages, each a list of columns: in groups of 2, then the same receipts
    again in groups of 3 side by side (``side``) or of 4 in two columns (``columns``)."""
    pairs = [names[i : i + 2] for i in range(0, len(names) - 1, 2)]
    if layout == "side":
        triples = [names[i : i + 3] for i in range(0, len(names) - 2, 3)]
        return [[[name] for name in group] for group in pairs + triples]
    quads = [names[i : i + 4] for i in range(0, len(names) - 3, 4)]
    return [[pair] for pair in pairs] + [[quad[:2], quad[2:]] for quad in quads]


def _owners(
    found: list[PageRef], placed: list[tuple[int, int, int, int]], size: tuple[int, int]
) -> list[int] | None:
    """Which part holds each receipt's middle (``size``: the page's ``(width, height)``),
    or ``None`` unless each lies in a part of its own. A page scanned sideways shows no
    reading order, so the parts' order is not asked."""
    owners = []
    for x0, y0, x1, y1 in placed:
        x, y = (x0 + x1) / 2 / size[0], (y0 + y1) / 2 / size[1]
        holders = [
            k
            for k, ref in enumerate(found)
            if ref.region is not None
            and ref.region[0] <= x < ref.region[2]
            and ref.region[1] <= y < ref.region[3]
        ]
        owners += holders[:1] if len(holders) == 1 else [-1]
    right = len(found) == len(placed) and sorted(owners) == list(range(len(placed)))
    return owners if right else None


def _turned(box: tuple[int, int, int, int], height: int) -> tuple[int, int, int, int]:
    """A box on a page ``height`` high turned a quarter clockwise."""
    x0, y0, x1, y1 = box
    return (height - y1, x0, height - y0, x1)


def pages(
    data: Path, names: list[str], layout: str, gap: float, read: bool, misses: bool = False
) -> None:
    """Print the fields right per receipt: split, whole, alone; and pages split right
    (and, with ``misses``, each field a split page's receipt reads wrong)."""
    engine = RapidOcrEngine()
    keys = {name: read_key_file(data / "key" / f"{name}.json") for name in names}
    alone = {
        name: _fields(engine, next(iter(discover([data / "img" / f"{name}.jpg"]))))
        for name in (names if read else [])
    }
    rows: dict[str, dict[str, list[int]]] = {}
    groups = _groups(names, layout)
    with tempfile.TemporaryDirectory() as folder:
        for turned in (False, True):
            for columns in groups:
                group = [name for column in columns for name in column]
                page, placed = in_columns(
                    [[cv2.imread(str(data / "img" / f"{n}.jpg")) for n in c] for c in columns], gap
                )
                if turned:
                    placed = [_turned(box, page.shape[0]) for box in placed]
                    page = cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE)
                path = Path(folder) / f"{'-'.join(group)}{'-turned' if turned else ''}.jpg"
                cv2.imwrite(str(path), page, [cv2.IMWRITE_JPEG_QUALITY, 92])
                label = f"{len(group)} {'turned' if turned else 'upright'}"
                row = rows.setdefault(label, {m: [0] * 5 for m in ("split", "whole", "alone")})
                (whole_ref,) = discover([path])
                refs = receipts_of(whole_ref)
                owners = _owners(refs, placed, (page.shape[1], page.shape[0]))
                row["split"][4] += owners is not None
                print(f"{path.name}: {len(refs)} receipts", flush=True)
                if not read:
                    continue
                whole = _fields(engine, whole_ref)
                split_fields = [_fields(engine, ref) for ref in refs] if owners else []
                for index, name in enumerate(group):
                    for f, field in enumerate(DEFAULT_FIELDS):
                        truth = keys[name].get(field, "")
                        if not truth.strip():
                            continue
                        if owners:
                            got = split_fields[owners[index]][field]
                            row["split"][f] += exact_match(truth, got)
                            if misses and not exact_match(truth, got):
                                print(f"  {path.name} {name} {field}: {truth!r} got {got!r}")
                        row["whole"][f] += exact_match(truth, whole[field])
                        row["alone"][f] += exact_match(truth, alone[name][field])
    engine.close()
    print(f"\n| pages | read | {' | '.join(DEFAULT_FIELDS)} | pages split right |")
    print("|---|---|" + "---|" * (len(DEFAULT_FIELDS) + 1))
    for label, row in rows.items():
        alike = [g for g in groups if sum(map(len, g)) == int(label[0])]
        on = [name for columns in alike for column in columns for name in column]
        for mode, cells in row.items():
            if not read and mode != "split":
                continue
            per = [
                f"{cells[f]}/{sum(bool(keys[n].get(field, '').strip()) for n in on)}"
                if read
                else "-"
                for f, field in enumerate(DEFAULT_FIELDS)
            ]
            right = f"{cells[4]}/{len(alike)}" if mode == "split" else ""
            print(f"| {label} ({len(on)} receipts) | {mode} | {' | '.join(per)} | {right} |")


def singles(data: Path) -> None:
    """Print how many single scans are split, per change, and what looking costs."""
    stems = sorted(image.stem for image in (data / "img").glob("*.jpg"))
    turns = {
        "turned 90": cv2.ROTATE_90_CLOCKWISE,
        "turned 180": cv2.ROTATE_180,
        "turned 270": cv2.ROTATE_90_COUNTERCLOCKWISE,
    }
    print("| scans | split | looking, ms CPU per page |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for change in [
            "as scanned",
            *turns,
            *(t for t in TRANSFORMS if t not in ("none",) and not t.startswith("pdf")),
            "a note beside",
        ]:
            split_pages, cpu = [], 0.0
            for stem in stems:
                image = cv2.imread(str(data / "img" / f"{stem}.jpg"))
                if change in turns:
                    image = cv2.rotate(image, turns[change])
                elif change == "a note beside":
                    image, _ = side_by_side([image, note()])
                elif change != "as scanned":
                    image = TRANSFORMS[change](image)
                path = Path(folder) / f"{stem}.png"
                cv2.imwrite(str(path), image)
                (ref,) = discover([path])
                started = time.process_time()
                refs = receipts_of(ref)
                cpu += time.process_time() - started
                if len(refs) > 1:
                    split_pages.append(stem)
            shown = ", ".join(split_pages) or "none"
            cost = f"{1000 * cpu / len(stems):.0f}"
            print(f"| {change} | {len(split_pages)}/{len(stems)} ({shown}) | {cost} |", flush=True)
        drawn_pages = {
            "drawn receipt, no rule, centred header": cafe_receipt(),
            "drawn receipt, no rule, header at the left": cafe_receipt(30),
            "drawn invoice, no rule": invoice(),
        }
        for name, image in drawn_pages.items():
            path = Path(folder) / "drawn.png"
            cv2.imwrite(str(path), image)
            (ref,) = discover([path])
            print(f"| {name} | {int(len(receipts_of(ref)) > 1)}/1 | |", flush=True)


def _moved(image: np.ndarray, y: int, pixels: int) -> np.ndarray:
    """``image`` with the rows from ``y`` on moved down by ``pixels`` copies of row ``y``."""
    return np.vstack([image[:y], np.repeat(image[y : y + 1], pixels, 0), image[y:]])


def halves(data: Path) -> None:
    """Print, for each scan, the least blank (in rows of print, steps of a quarter) that
    cuts it in two when its lower half is moved down by it."""
    needed: list[float] = []
    for path in sorted((data / "img").glob("*.jpg")):
        image = cv2.imread(str(path))
        small, shrink = _small_gray(image, 1200)
        glyphs = _glyphs(small)
        height = float(np.median(_letters(glyphs)[:, 3]))
        middles = _rows(glyphs[glyphs[:, 3] <= 6 * height], height)
        if len(middles) < 2:
            continue
        half = len(middles) // 2
        y = round((middles[half - 1] + middles[half]) / 2 / shrink)
        pitch = float(np.median(np.diff(middles))) / shrink
        steps = np.arange(0.0, 8.01, 0.25)
        cut = next(
            (rows for rows in steps if find_receipts(_moved(image, y, round(rows * pitch)))),
            None,
        )
        print(f"{path.stem}: {cut if cut is None else float(cut)}", flush=True)
        if cut is not None:
            needed.append(float(cut))
    shown = f"{min(needed)}-{max(needed)} rows, median {float(np.median(needed))}" if needed else ""
    print(f"cut: {len(needed)} scans ({shown}); never (up to 8 rows): the others")


def main(argv: list[str] | None = None) -> int:
    """Run from the command line (``argv``: ``sys.argv[1:]`` when ``None``); returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--half", choices=("dev", "held", "all"), default="held")
    parser.add_argument("--layout", choices=("side", "columns"), default="side")
    parser.add_argument("--gap", type=float, default=0.08, help="fraction of the widest")
    parser.add_argument("--split-only", action="store_true", help="only pages split right")
    parser.add_argument("--singles", action="store_true", help="single scans and the cost")
    parser.add_argument("--halves", action="store_true", help="blank that cuts a scan")
    parser.add_argument("--misses", action="store_true", help="print split receipts' misses")
    args = parser.parse_args(argv)
    if args.singles:
        singles(args.data)
        return 0
    if args.halves:
        halves(args.data)
        return 0
    stems = sorted(image.stem for image in (args.data / "img").glob("*.jpg"))
    names = stems if args.half == "all" else split(stems)[args.half]
    pages(args.data, names, args.layout, args.gap, read=not args.split_only, misses=args.misses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
