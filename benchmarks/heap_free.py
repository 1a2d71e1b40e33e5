"""
What the per-page trim gives back: the free bytes in malloc's heaps after each OCR page,
and how long ``malloc_trim(0)`` takes to return them (issue 11, point 1).

Two bare engines in a thread pool OCR the first ``--pages`` receipts twice, each task
decoding, preprocessing and OCRing a page as the OCR bound's pool does
(`docbench._ocrbound.prepare_page`), in the pipeline's malloc state (`tune_malloc`: 2
arenas; started with `start_environment`: huge pages). After each page the task reads
glibc's ``mallinfo2`` (free bytes in every arena, the heaps' size) and then trims, as the
pipeline's OCR stage does. Whatever the trim frees, the next page faults back in, so the
free bytes per page are the memory the trim makes the kernel zero again each page.

Usage (from the project root, under the bench lock on a shared machine)::

    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/heap_free.py [--pages 8]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _root  # noqa: F401  (the project on sys.path)
from docbench._main import pick_refs
from docbench._ocrbound import prepare_page

from asyncpipe._restart import restart_with
from stages._malloc import (
    release_memory,
    resident_bytes,
    start_environment,
    tune_malloc,
)
from stages.ocr import make_engine, ocr_page

_MB = 1 << 20


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33+)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--pages", type=int, default=8, help="receipts, each OCRed twice (8)")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set ASYNCPIPE_SROIE to the SROIE receipts")
    restart_with(start_environment())
    if not tune_malloc():
        parser.error("glibc malloc tuning unavailable here (not glibc, or switched off)")
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    local = threading.local()
    rows: list[dict[str, Any]] = []

    def run(ref: Any) -> None:
        if not hasattr(local, "engine"):
            local.engine = make_engine()
        ocr_page(local.engine, prepare_page(ref))
        info = libc.mallinfo2()
        started = time.perf_counter()
        release_memory()  # the pipeline's own trim: malloc_trim(0)
        trim_ms = (time.perf_counter() - started) * 1000
        rows.append({"free": info.fordblks / _MB, "heaps": info.arena / _MB, "trim_ms": trim_ms})
        print(
            f"{Path(ref.source).name}: free {info.fordblks / _MB:4.0f} MB of "
            f"{info.arena / _MB:4.0f} MB of heaps; trim {trim_ms:5.1f} ms; "
            f"resident after it {(resident_bytes() or 0) / _MB:4.0f} MB",
            flush=True,
        )

    refs = pick_refs([str(args.data / "img")], args.pages)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, refs + refs))
    for key, unit in (("free", "MB"), ("heaps", "MB"), ("trim_ms", "ms")):
        values = [row[key] for row in rows]
        middle, low, high = statistics.median(values), min(values), max(values)
        print(f"{key}: median {middle:.1f} {unit}, range {low:.1f}-{high:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
