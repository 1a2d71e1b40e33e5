"""
What loading one large page costs in memory: the pipeline's ``load`` stage on a 600-dpi A4
scan in each format (issue 11, point 5: unseen scans come in other formats too).

The scans are `soak.py`'s (a shared SROIE receipt enlarged onto a 4961x7016 page), written
once to ``--cache`` as JPEG, PNG, a multi-page LZW TIFF and a multi-page PDF whose pages
are sized in points like the scan in pixels (`soak.large_pages`).  For the first two pages
of each it prints the decoded shape, ``page.scale`` and the transient: the highest resident
memory while loading (sampled every 2 ms by a thread) less the memory before.  The default
pipeline's load stage is used (``DocumentSettings()``, malloc tuning off so nothing is
given back in between).

    python benchmarks/decode_memory.py --data /work/shared/data/sroie
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["main"]


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def main(argv: list[str] | None = None) -> int:
    """
    Load the first two pages of each format and print one line per page.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    from soak import FORMATS, large_pages, make_corpus

    from stages._page import PageRef
    from stages.pipeline import DocumentSettings, build_pipeline

    load = build_pipeline(DocumentSettings(malloc_tuning=False)).stages[0].fn
    large, _ = make_corpus(args.data, args.cache)
    for fmt in FORMATS:
        for path, kind, number in large_pages(large, fmt, args.cache)[:2]:
            ref = PageRef(id=path.name, source=str(path), page=number, kind=kind)
            before = _rss_mb()
            peak = [before]
            stop = threading.Event()

            def sample(peak: list[float] = peak, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], _rss_mb())
                    time.sleep(0.002)

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            try:
                page = load(ref)
            finally:
                stop.set()
                sampler.join()
            print(
                f"{fmt:5} {path.name} page {number}: decoded {page.image.shape} "
                f"scale {page.scale:.4f} transient {peak[0] - before:.0f} MB "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
