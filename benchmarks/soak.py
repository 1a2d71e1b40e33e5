"""
Memory soak: peak RSS of the document pipeline over large and small scans, at 1x and 4x
the items (issue 11, point 5).

The large pages are 600-dpi A4 scans, 4961x7016 pixels (about 100 MB each once decoded),
made by enlarging a shared SROIE receipt onto a white A4 canvas; the small ones are the
receipts themselves.  The corpus takes them two by two (half the pages are large, a harsher mix
than the unseen receipts, where a quarter are) and cycles them to the item count.  Each run
is a fresh child process running the default document pipeline (default workers, offline
text stages, ordered output dropped), so its peak RSS (``ru_maxrss``) is that run's alone.

The default 1x is 8 pages: each of the 8 distinct pages (4 A4 scans, 4 receipts) once, so
the 1x run has already seen every page size, and 4x (32 pages) sees the same pages three
more times.  Growth then measures what repeating pages adds, which is the question (does
memory follow the item count or the pages in flight?), and not the warm-up of a run that
has not yet met its largest pages.  The peak is still the maximum of a noisy process (it
is highest when both OCR workers detect text on A4 scans at the same moment), so a
longer run has more chances to hit it; each run also prints its resident memory at the
end, after the pages are gone, which is what a leak would raise.

Configs:
    default: the defaults: JPEGs over 20 Mpx decoded at the OCR engine's working size
        (rapidocr's ``max_side_len``, 1500 px on the long side: an A4 scan at libjpeg's 1/4
        scale, 1241x1754), other pages at >= 2000 px, the queues in front of preprocess
        and OCR bounded by bytes of pixels as well as by count, and glibc malloc tuned by
        the pipeline
        (``stages/_malloc.py``: 2 arenas, and the free heap pages given back to the
        system after each OCR page).
    decode2000: the previous default: as ``default`` but decoded at >= 2000 px (an A4
        scan at 1/2 scale, 2481x3508).
    untuned: as ``decode2000`` without the malloc tuning.
    unbounded: the first behaviour: full-size decoding, queues bounded by count only,
        malloc untuned.

Goals: peak(4x) / peak(1x) <= 1.10 and peak < 2.0 GB for ``default``.  Each child also
prints its CPU seconds per page (user + system), to check the tuning costs no speed.

    python benchmarks/soak.py --data /work/shared/data/sroie
    python benchmarks/soak.py --data ... --config untuned   # the contrast

The A4 scans are written once to ``--cache`` (default ``/tmp/asyncpipe-soak``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stages._page import PageRef

__all__ = ["main", "make_corpus", "page_refs"]

A4_600DPI = (4961, 7016)  # width, height in pixels
GOAL_GROWTH = 1.10
GOAL_PEAK_GB = 2.0

# DocumentSettings per config (see the module docstring).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "decode2000": {"decode_max_side": 2000},
    "untuned": {"malloc_tuning": False, "decode_max_side": 2000},
    "unbounded": {"malloc_tuning": False, "decode_max_side": None, "max_queue_bytes": 1 << 50},
}


def make_a4(receipt: Path, out: Path) -> None:
    """
    Write a 600-dpi A4 scan of ``receipt``: enlarged to 90% of the page height, centred
    on white, saved as a quality-90 JPEG.
    """
    from PIL import Image

    with Image.open(receipt) as opened:
        small = opened.convert("RGB")
    width, height = A4_600DPI
    ratio = min(0.9 * height / small.height, 0.9 * width / small.width)
    big = small.resize((round(small.width * ratio), round(small.height * ratio)))
    canvas = Image.new("RGB", A4_600DPI, (255, 255, 255))
    canvas.paste(big, ((width - big.width) // 2, (height - big.height) // 2))
    canvas.save(out, "JPEG", quality=90)


def make_corpus(data: Path, cache: Path, kinds: int = 4) -> tuple[list[Path], list[Path]]:
    """
    The large pages (600-dpi A4 scans of ``kinds`` receipts, written once to ``cache``) and
    the small ones (``kinds`` other receipts).
    """
    receipts = sorted((data / "img").glob("*.jpg"))
    if len(receipts) < 2 * kinds:
        raise SystemExit(f"need {2 * kinds} receipts in {data / 'img'}, found {len(receipts)}")
    a4_dir = cache / "a4"
    a4_dir.mkdir(parents=True, exist_ok=True)
    large = []
    for receipt in receipts[:kinds]:
        out = a4_dir / f"a4-{receipt.stem}.jpg"
        if not out.exists():
            make_a4(receipt, out)
        large.append(out)
    return large, receipts[kinds : 2 * kinds]


def page_refs(large: list[Path], small: list[Path], items: int) -> Iterator[PageRef]:
    """
    ``items`` pages, two large then two small, cycling each list; every page gets its own
    id (discovery would fold repeats of one file into one page).

    Large pages come in pairs so that both OCR workers meet A4 scans at the same moment in
    every run, 1x included: that moment is the pipeline's worst (each rapidocr call on an
    A4 page needs ~500 MB), and a 1x run that happened to miss it would make the growth
    ratio measure luck, not what the item count adds.
    """
    from stages._page import PageRef

    for index in range(items):
        pool = large if (index // 2) % 2 == 0 else small
        path = pool[(index // 4 * 2 + index % 2) % len(pool)]
        yield PageRef(id=f"{index:05d}-{path.name}", source=str(path), page=1, kind="jpeg")


def child(data: Path, cache: Path, items: int, config: str) -> None:
    """
    Run the default document pipeline over ``items`` pages and print a JSON line with the
    peak RSS and the counts (runs in its own process).
    """
    import anyio

    from stages.pipeline import DocumentSettings, build_pipeline

    settings = DocumentSettings(**CONFIGS[config])
    pipeline = build_pipeline(settings)
    started = time.perf_counter()
    large, small = make_corpus(data, cache)
    refs = list(page_refs(large, small, items))
    summary = anyio.run(lambda: pipeline.run(refs, ordered=True))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pages = max(summary.ok + summary.failed, 1)
    print(
        json.dumps(
            {
                "config": config,
                "items": summary.ok + summary.failed,
                "ok": summary.ok,
                "failed": summary.failed,
                "seconds": round(time.perf_counter() - started, 1),
                "cpu_s_per_page": round((usage.ru_utime + usage.ru_stime) / pages, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "end_rss_mb": _resident_mb(),
            }
        )
    )


def _resident_mb() -> float | None:
    """
    The resident memory now, in MB (Linux ``/proc``; ``None`` elsewhere).
    """
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20), 1)


def run_child(data: Path, cache: Path, items: int, config: str) -> dict[str, float]:
    """
    Run `child` in a fresh interpreter and return its JSON line.
    """
    command = [sys.executable, __file__, "--child", "--data", str(data), "--cache", str(cache)]
    command += ["--items", str(items), "--config", config]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"soak child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """
    Run the soak at 1x and 4x the items and print the peak RSS, the growth and the goals.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    parser.add_argument("--items", type=int, default=8, help="pages at 1x (default 8)")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    if args.child:
        child(args.data, args.cache, args.items, args.config)
        return 0
    make_corpus(args.data, args.cache)
    rows = []
    for factor in (1, 4):
        row = run_child(args.data, args.cache, args.items * factor, args.config)
        row["load"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    growth = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    peak_gb = max(r["peak_rss_mb"] for r in rows) / 1024
    growth_ok = growth <= GOAL_GROWTH
    peak_ok = peak_gb < GOAL_PEAK_GB
    print(
        f"config={args.config} items={args.items}/{4 * args.items} (half 600-dpi A4) "
        f"peak_rss={rows[0]['peak_rss_mb']:.0f}/{rows[1]['peak_rss_mb']:.0f} MB "
        f"end_rss={rows[0]['end_rss_mb']}/{rows[1]['end_rss_mb']} MB "
        f"cpu_s_per_page={rows[0]['cpu_s_per_page']}/{rows[1]['cpu_s_per_page']} "
        f"load={os.getloadavg()[0]:.2f}"
    )
    print(f"growth {growth:.3f} (goal <= {GOAL_GROWTH}): {'PASS' if growth_ok else 'FAIL'}")
    print(f"peak {peak_gb:.2f} GB (goal < {GOAL_PEAK_GB}): {'PASS' if peak_ok else 'FAIL'}")
    return 0 if growth_ok and peak_ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
