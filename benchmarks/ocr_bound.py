"""
The OCR bound on its own (issue 11, point 1): the document pipeline, OCR-bound, against
the bare engine in a hand-written thread pool doing the same work per page, in rounds.

The bench (``benchmarks/bench.py``) runs one round of this before its LLM runs and one
after; this script runs only the bound, more rounds, so its median settles.  Each round
runs every contender once on the same pages, in an order rotated every round: the pool
(``bare``: ``cores`` engines in a ``ThreadPoolExecutor``, each task decoding,
preprocessing and OCRing a page), the pipeline as it ships (``pipeline``: freed heap
memory given back after every 4th OCR page), after every page (``pipeline-trim-each``)
and never (``pipeline-no-trim``).  A pipeline is judged by
the median of its per-round rate over the pool's (goal >= 0.95); see
``benchmarks/docbench/_ocrbound.py`` for what makes the comparison fair.

Like ``asyncpipe run``, the script restarts itself once with
`stages._malloc.start_environment` (malloc's heaps on transparent huge pages), so every
contender runs in the process state the command line gives; ``--plain-malloc`` keeps
glibc's 4 KiB pages, to see what that setting is worth.

Usage (from the project root, under the bench lock on a shared machine)::

    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/ocr_bound.py \\
        [--pages 8] [--rounds 3] [--contenders bare,pipeline] [--plain-malloc] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
from docbench._main import BOUND_CONTENDERS, pick_refs
from docbench._ocrbound import OcrComparison, measure_ocr, ocr_report

from asyncpipe._restart import restart_with
from stages._malloc import start_environment, tune_malloc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--pages", type=int, default=8, help="receipts per pass (8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender (3)")
    parser.add_argument(
        "--contenders",
        default=",".join(BOUND_CONTENDERS),
        help=f"comma-separated, from {','.join(BOUND_CONTENDERS)} (all)",
    )
    parser.add_argument(
        "--plain-malloc", action="store_true", help="no restart with huge pages for malloc"
    )
    parser.add_argument("--json", type=Path, help="write the timings and ratios here")
    args = parser.parse_args()
    if args.data is None:
        parser.error("give --data or set ASYNCPIPE_SROIE to the SROIE receipts")
    contenders = args.contenders.split(",")
    if "bare" not in contenders or not set(contenders) <= set(BOUND_CONTENDERS):
        parser.error(f"--contenders: bare and some of {','.join(BOUND_CONTENDERS[1:])}")
    if not args.plain_malloc:
        restart_with(start_environment())
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')}", flush=True)
    cores = len(os.sched_getaffinity(0))
    tune_malloc()  # the pipeline's malloc state, before anything is timed
    refs = pick_refs([str(args.data / "img")], args.pages)
    timings = measure_ocr(
        refs,
        cores,
        contenders,
        rounds=args.rounds,
        bare=[1],
        say=lambda text: print(text, file=sys.stderr, flush=True),
    )
    comparison = OcrComparison(cores, tuple(timings))
    for line in ocr_report(comparison):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(comparison.to_json(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
