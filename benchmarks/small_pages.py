"""
Pages per second of OCR on small pages and on receipts, with the detector's enlargement
of a small page bounded (`stages.ocr._tiles.detector_side`) and without (every page's
short side enlarged to 736 pixels, as rapidocr does).

Each page is preprocessed as a run does (cropped to its print) and read by one
`RapidOcrEngine` per arm, the arms taking turns page by page so that the machine's load
falls on both alike. Small pages are labels 60x20 pixels, three digits drawn on each (as
a reviewer made them); receipts are the SROIE scans. Prints, per set and arm, pages/s by
wall clock and by CPU time, how many labels read their own number, and the ratio::

    ASYNCPIPE_SROIE=../shared/data/sroie PYTHONPATH=. python benchmarks/small_pages.py \\
        --labels 500 --receipts 40
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import _root  # noqa: F401
import cv2
import numpy as np

from stages._page import Page, PageRef
from stages.ocr import RapidOcrEngine, _rapid, ocr_page
from stages.preprocess import PreprocessOptions, preprocess

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy.typing as npt

__all__: list[str] = []


@dataclass
class _Arm:
    wall: float = 0.0
    cpu: float = 0.0
    pages: int = 0
    right: int = 0
    misread: list[str] = field(default_factory=list)


def _label(number: int) -> npt.NDArray[np.uint8]:
    drawn = np.full((20, 60), 255, dtype=np.uint8)
    cv2.putText(drawn, f"{number:03d}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1)
    return np.asarray(cv2.cvtColor(drawn, cv2.COLOR_GRAY2BGR), dtype=np.uint8)


def _pages(labels: int, receipts: int, sroie: Path) -> Iterator[tuple[str, str, npt.NDArray]]:
    for number in range(labels):
        yield "labels", f"{number:03d}", _label(number)
    for path in sorted((sroie / "img").glob("*.jpg"))[:receipts]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        yield "receipts", "", np.asarray(image, dtype=np.uint8)


def _read(
    engine: RapidOcrEngine, image: npt.NDArray[np.uint8], bounded: bool
) -> tuple[str, float, float]:
    page = Page(ref=PageRef(id="p", source="p.png", page=1, kind="png"), image=image.copy())
    page = preprocess(page, PreprocessOptions())
    real = _rapid.detector_side
    if not bounded:
        _rapid.detector_side = lambda height, width, limit, *rest: limit  # type: ignore[assignment]
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        ocr_page(engine, page)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        _rapid.detector_side = real
    return " ".join(line.text for line in page.lines), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=500, help="small pages (default 500)")
    parser.add_argument("--receipts", type=int, default=40, help="SROIE scans (default 40)")
    parser.add_argument(
        "--sroie",
        type=Path,
        default=Path(os.environ.get("ASYNCPIPE_SROIE", "../shared/data/sroie")),
    )
    args = parser.parse_args()
    engines = {"736 always": RapidOcrEngine(), "bounded": RapidOcrEngine()}
    arms: dict[tuple[str, str], _Arm] = {}
    for index, (kind, expected, image) in enumerate(_pages(args.labels, args.receipts, args.sroie)):
        names = list(engines)
        for name in names if index % 2 else names[::-1]:
            text, wall, cpu = _read(engines[name], image, bounded=name == "bounded")
            arm = arms.setdefault((kind, name), _Arm())
            arm.wall += wall
            arm.cpu += cpu
            arm.pages += 1
            if expected:
                arm.right += text == expected
                if text != expected:
                    arm.misread.append(f"{expected}->{text or '(none)'}")
    for engine in engines.values():
        engine.close()
    print("| pages | arm | pages/s (wall) | pages/s (CPU) | read right |")
    print("|---|---|---|---|---|")
    for (kind, name), arm in arms.items():
        right = f"{arm.right}/{arm.pages}" if kind == "labels" else ""
        print(
            f"| {arm.pages} {kind} | {name} | {arm.pages / arm.wall:.2f} | "
            f"{arm.pages / arm.cpu:.2f} | {right} |"
        )
    for kind in ("labels", "receipts"):
        old, new = arms.get((kind, "736 always")), arms.get((kind, "bounded"))
        if old and new:
            print(
                f"{kind}: bounded / 736 always, pages/s: wall x{old.wall / new.wall:.2f}, "
                f"CPU x{old.cpu / new.cpu:.2f}"
            )
            if kind == "labels":
                print(f"  misread, 736 always: {old.misread[:20]}")
                print(f"  misread, bounded: {new.misread[:20]}")


if __name__ == "__main__":
    main()
