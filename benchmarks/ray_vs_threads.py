"""
The Ray executor against local threads, on this machine, for a no-op stage and for OCR.

    python benchmarks/ray_vs_threads.py [--receipts 6] [--calls 2000] [--repeat 2]

A thin wrapper over `docbench.run_comparison`, which ``benchmarks/bench.py --ray`` runs
too (see ``docbench/_ray.py`` for what is measured and how).  It OCRs the first ``--receipts`` SROIE
receipts, loaded and decoded before the clock starts.

The last line is::

    ray_vs_threads noop_us_threads=A noop_us_ray=B ocr_ratio=R

R = Ray pages/s / threads pages/s over the whole run (below 1 means Ray is slower).
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docbench import run_comparison

from stages.inputs import discover, load_page

__all__ = ["main"]


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--receipts", type=int, default=6)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    paths = sorted(str(p) for p in (args.data / "img").glob("*.jpg"))[: args.receipts]
    pages = [load_page(ref) for ref in discover(paths)]
    result = run_comparison(
        pages, calls=args.calls, repeat=args.repeat, progress=partial(print, flush=True)
    )
    print()
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
