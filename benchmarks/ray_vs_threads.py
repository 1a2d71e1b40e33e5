"""
The Ray executor against local threads, on this machine, for a no-op stage and for OCR.

    python benchmarks/ray_vs_threads.py [--receipts 6] [--calls 2000] [--repeat 2]

A thin wrapper over `stages.bench._ray`, which ``asyncpipe bench --ray`` runs too (see
that module for what is measured and how).  It OCRs the first ``--receipts`` SROIE
receipts, loaded and decoded before the clock starts.

The last line is::

    ray_vs_threads noop_us_threads=A noop_us_ray=B ocr_ratio=R

R = Ray pages/s / threads pages/s over the whole run (below 1 means Ray is slower).
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

from stages.bench._ray import run_comparison
from stages.inputs import discover, load_page

__all__ = ["main"]

SROIE = Path(
    os.environ.get(
        "ASYNCPIPE_SROIE", Path(__file__).resolve().parents[2] / "shared" / "data" / "sroie"
    )
)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--receipts", type=int, default=6)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(str(p) for p in (SROIE / "img").glob("*.jpg"))[: args.receipts]
    pages = [load_page(ref) for ref in discover(paths)]
    result = run_comparison(
        pages, calls=args.calls, repeat=args.repeat, progress=partial(print, flush=True)
    )
    print()
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
