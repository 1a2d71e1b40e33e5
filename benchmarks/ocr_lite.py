"""
rapidocrlite's "lite" models (Indra OCR weights in its own native engine) on the SROIE
receipts, for ``benchmarks/ocr_models.py`` to score beside the default.

rapidocrlite installs under the import name ``rapidocr`` and so cannot share a venv with
rapidocr 3.x; run this with the python of its own venv, which needs nothing of this
project::

    python3 -m venv /tmp/ocr10-cache/venv-lite
    /tmp/ocr10-cache/venv-lite/bin/pip install rapidocrlite==5.0.0a15
    .venv/bin/python benchmarks/ocr_models.py dump        # the preprocessed pages, as PNG
    /tmp/ocr10-cache/venv-lite/bin/python benchmarks/ocr_lite.py read
    flock /tmp/asyncpipe-bench.lock sh -c 'uptime; /tmp/ocr10-cache/venv-lite/bin/python \\
        benchmarks/ocr_lite.py speed --workers 2; uptime'
    .venv/bin/python benchmarks/ocr_models.py accuracy --model ppocrv6-small \\
        --model rapidocrlite-lite

``read`` OCRs every page written by ``ocr_models.py dump`` (the pipeline's own
``load_page`` -> default ``preprocess`` output) with one engine and caches the lines in
``benchmarks/fields_ocr.py``'s format (``ocr-model-rapidocrlite-lite.json``) with wall
and process CPU seconds. ``speed`` times ``--workers`` engines, one thread each, over all
pages after a warm-up, and checks each text against the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR", "PARAMS", "main"]

CACHE_DIR = Path("/tmp/ocr10-cache")
#: rapidocrlite's documented switch to its bundled lite models (nothing downloads).
PARAMS = {"Det.model_type": "lite", "Rec.model_type": "lite", "Global.log_level": "warning"}


def _pages(cache_dir: Path) -> list[tuple[str, Any]]:
    import numpy as np
    from PIL import Image

    files = sorted((cache_dir / "pre").glob("*.png"))
    if not files:
        raise SystemExit(f"no pages in {cache_dir / 'pre'}: run `ocr_models.py dump` first")
    return [
        (path.stem, np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1].copy())
        for path in files
    ]


def _engine() -> Any:
    from rapidocr import RapidOCR

    return RapidOCR(params=PARAMS)


def read(cache_dir: Path) -> None:
    """OCR every dumped page with one engine; write the cache."""
    engine = _engine()
    stored: dict[str, Any] = {}
    for stem, image in _pages(cache_dir):
        wall, cpu = time.perf_counter(), time.process_time()
        result = engine(image)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        lines = []
        found = result.txts is not None and result.boxes is not None
        for quad, text, score in zip(
            result.boxes if found else (), result.txts or (), result.scores or (), strict=True
        ):
            xs = [float(point[0]) for point in quad]
            ys = [float(point[1]) for point in quad]
            box = [min(xs), min(ys), max(xs), max(ys)]
            lines.append({"text": str(text), "box": box, "confidence": round(float(score), 4)})
        stored[stem] = {"lines": lines, "seconds": wall, "cpu_seconds": cpu}
        print(f"{stem}: {wall:.2f} s ({cpu:.2f} CPU s)", file=sys.stderr)
    out = cache_dir / "ocr" / "ocr-model-rapidocrlite-lite.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stored))
    print(f"wrote {out}")


def speed(cache_dir: Path, workers: int) -> None:
    """Time ``workers`` engines (one thread each) over every page."""
    pages = _pages(cache_dir)
    cache = cache_dir / "ocr" / "ocr-model-rapidocrlite-lite.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    local = threading.local()

    def engine() -> Any:
        if not hasattr(local, "engine"):
            local.engine = _engine()
            local.engine(pages[0][1])  # warm-up
        return local.engine

    print(f"load average before: {os.getloadavg()}")
    with ThreadPoolExecutor(workers) as pool:
        ready = threading.Barrier(workers)  # every thread builds and warms its own engine
        list(pool.map(lambda _: (engine(), ready.wait()), range(workers)))
        wall, cpu = time.perf_counter(), time.process_time()
        texts = list(pool.map(lambda page: (page[0], engine()(page[1]).txts or ()), pages))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    same = sum(
        "\n".join(text) == "\n".join(line["text"] for line in cached[stem]["lines"])
        for stem, text in texts
        if stem in cached
    )
    print(
        f"rapidocrlite lite, {workers} engines x 1 thread: {len(pages) / wall:.3f} pages/s, "
        f"{cpu / len(pages):.3f} CPU s/page, text as cached {same}/{len(pages)}; "
        f"load average after: {os.getloadavg()}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("what", choices=("read", "speed"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    if args.what == "read":
        read(args.cache_dir)
    else:
        speed(args.cache_dir, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
