"""
Does decoding at OCR resolution cost accuracy?  (issue 11, point 5)

OCRs the same pages loaded two ways with the default rapidocr engine (1 engine, 1 thread):
``full`` (``load_page(max_side=None)``: full-size decode; rapidocr then shrinks to its
``max_side_len`` with bilinear resizing) and ``reduced`` (``max_side=--max-side``, by
default the engine's working size as the pipeline uses it: JPEG draft decoding at
1/2..1/8 scale, rapidocr shrinks the rest of the way) and ``reduced+area`` (the same, then
area averaging to ``--max-side`` before OCR).  Pages: the shared SROIE receipts at least
twice ``--max-side`` long (only those decode smaller) plus 600-dpi A4 scans of a few
receipts (as ``benchmarks/soak.py`` makes them).  Prints the corpus character error rate of each
(against ``box/``), the decode time and the decoded megabytes, and how far the OCR boxes
moved (they must come back in full-size pixels either way).

    python benchmarks/decode_accuracy.py --data /work/shared/data/sroie --a4 2
    python benchmarks/decode_accuracy.py --data ... --max-side 2000   # the older size
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """
    Print the comparison table; exit 1 when ``reduced`` loses more than 0.005 of CER.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cv2
    from ocr_accuracy import corpus_cer, reference_text
    from PIL import Image
    from soak import make_a4

    from stages._page import PageRef
    from stages.inputs import load_page
    from stages.ocr import RAPIDOCR_MAX_SIDE, make_engine, ocr_page

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    parser.add_argument("--a4", type=int, default=2, help="A4 600-dpi scans to add")
    parser.add_argument("--limit", type=int, default=None, help="at most this many receipts")
    parser.add_argument(
        "--max-side", type=int, default=RAPIDOCR_MAX_SIDE, help="the reduced decode's size"
    )
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    pages: list[tuple[str, Path]] = []
    for path in sorted((args.data / "img").glob("*.jpg")):
        with Image.open(path) as image:
            if max(image.size) >= 2 * args.max_side:
                pages.append((path.stem, path))
    pages = pages[: args.limit]
    (args.cache / "a4").mkdir(parents=True, exist_ok=True)
    for path in sorted((args.data / "img").glob("*.jpg"))[: args.a4]:
        out = args.cache / "a4" / f"a4-{path.stem}.jpg"
        if not out.exists():
            make_a4(path, out)
        pages.append((path.stem, out))
    engine = make_engine("rapidocr")
    side = args.max_side
    names = ("full", "reduced", "reduced+area")
    results: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
    decode = dict.fromkeys(names, 0.0)
    megabytes = dict.fromkeys(names, 0.0)
    moved: list[float] = []
    for stem, path in pages:
        extents = {}
        for name, max_side in (("full", None), ("reduced", side), ("reduced+area", side)):
            ref = PageRef(id=path.name, source=str(path), page=1, kind="jpeg")
            started = time.perf_counter()
            page = load_page(ref, max_side=max_side)
            assert page.image is not None
            if name == "reduced+area":  # the rest of the way to ``side`` by area averaging
                height, width = page.image.shape[:2]
                if max(height, width) > side:
                    ratio = side / max(height, width)
                    size = (round(width * ratio), round(height * ratio))
                    page.image = cv2.resize(page.image, size, interpolation=cv2.INTER_AREA)
                    page.scale *= size[0] / width
            decode[name] += time.perf_counter() - started
            megabytes[name] += page.image.nbytes / 1e6
            page = ocr_page(engine, page)
            results[name].append((reference_text(args.data, stem), page.text))
            boxes = [line.box for line in page.lines] or [[0.0, 0.0, 0.0, 0.0]]
            extents[name] = (
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            )
        for name in names[1:]:
            pairs = zip(extents["full"], extents[name], strict=True)
            moved.append(max(abs(a - b) for a, b in pairs))
        print(f"{path.name}: text extent " + " ".join(f"{k}={v}" for k, v in extents.items()))
    cer = {name: corpus_cer(pairs) for name, pairs in results.items()}
    print(
        f"max_side={side} pages={len(pages)} "
        f"({len(pages) - args.a4} SROIE >= {2 * side} px, {args.a4} A4 600 dpi)"
    )
    for name in names:
        print(
            f"{name:8s} char_accuracy={1 - cer[name]:.4f} decode_s={decode[name]:.2f} "
            f"decoded_MB={megabytes[name]:.0f}"
        )
    print(
        f"accuracy change={cer['full'] - cer['reduced']:+.4f}  "
        f"largest move of the text extent={max(moved):.1f} px  load={os.getloadavg()[0]:.2f}"
    )
    return 0 if cer["reduced"] <= cer["full"] + 0.005 else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
