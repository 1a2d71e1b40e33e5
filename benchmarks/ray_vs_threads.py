"""
The Ray executor against local threads, on this machine, for a no-op stage and for OCR.

    python benchmarks/ray_vs_threads.py [--receipts 6] [--calls 2000] [--repeat 2]

Starts one local Ray cluster (``num_cpus`` = this machine's cores, no dashboard) and
reports how long ``ray.init`` took.  Then, taking turns so that machine noise hits both
alike, and keeping the best of ``--repeat`` runs:

* **per-call overhead**: a no-op ``thread`` stage with 2 workers, ``--calls`` items,
  minus a 1-item run (so actor start-up is not counted): microseconds per call;
* **OCR**: the rapidocr stage (2 workers, one engine each) over ``--receipts`` SROIE
  receipts, loaded and decoded before the clock starts.  Engine (and actor) start-up is
  counted, as a real run pays it once; the steady-state figure leaves it out by
  subtracting a 2-page run.

The last line is::

    ray_vs_threads noop_us_threads=A noop_us_ray=B ocr_ratio=R

R = Ray pages/s / threads pages/s over the whole run (below 1 means Ray is slower).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage
from asyncpipe._ray import RayExecutor
from stages._page import Page
from stages.inputs import discover, load_page
from stages.ocr import make_engine, ocr_page

__all__ = ["main"]

SROIE = Path(os.environ.get("ASYNCPIPE_SROIE",
                            Path(__file__).resolve().parents[2] / "shared" / "data" / "sroie"))


def _noop(value: int) -> int:
    return value


def _engine() -> Any:
    return make_engine("rapidocr")


async def _timed(stage: Stage, values: list[Any]) -> float:
    count = 0

    async def sink(item: Any) -> None:
        nonlocal count
        assert item.ok, item.error
        count += 1

    started = time.perf_counter()
    await Pipeline([stage], max_buffer_size=8).run(values, sink=sink)
    assert count == len(values)
    return time.perf_counter() - started


async def _bench(args: argparse.Namespace, pages: list[Page]) -> None:
    ray_exec = RayExecutor()
    noop = Stage("noop", _noop, kind="thread", workers=2)
    ocr = Stage("ocr", ocr_page, kind="thread", workers=2, resource=_engine)
    executors: dict[str, RayExecutor | None] = {"threads": None, "ray": ray_exec}
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, executor in executors.items():
            n = args.calls if name == "threads" else args.calls // 2
            stage = noop.replace(executor=executor)
            one = await _timed(stage, [0])
            many = await _timed(stage, list(range(n)))
            us = (many - one) / (n - 1) * 1e6
            best[f"noop_{name}"] = min(best.get(f"noop_{name}", us), us)
            stage = ocr.replace(executor=executor)
            # Pages carry their pixels; OCR drops them, so every run gets fresh copies.
            two = await _timed(stage, [_copy(p) for p in pages[:2]])
            whole = await _timed(stage, [_copy(p) for p in pages])
            steady = (len(pages) - 2) / max(whole - two, 1e-9)
            for key, value in ((f"ocr_{name}", len(pages) / whole),
                               (f"ocr_steady_{name}", steady)):
                best[key] = max(best.get(key, 0.0), value)
            print(f"  {name:7s} noop {us:8.1f} us/call   ocr {len(pages) / whole:.3f} pages/s "
                  f"(whole run {whole:.1f} s, steady {steady:.3f} pages/s)", flush=True)
    print()
    print(f"no-op thread stage, 2 workers: threads {best['noop_threads']:.1f} us/call, "
          f"ray {best['noop_ray']:.1f} us/call")
    print(f"OCR, 2 workers, {len(pages)} receipts: threads {best['ocr_threads']:.3f} pages/s, "
          f"ray {best['ocr_ray']:.3f} pages/s (ratio {best['ocr_ray'] / best['ocr_threads']:.2f}); "
          f"steady state threads {best['ocr_steady_threads']:.3f}, "
          f"ray {best['ocr_steady_ray']:.3f}")
    print(f"ray_vs_threads noop_us_threads={best['noop_threads']:.1f} "
          f"noop_us_ray={best['noop_ray']:.1f} "
          f"ocr_ratio={best['ocr_ray'] / best['ocr_threads']:.2f}")


def _copy(page: Page) -> Page:
    return Page(ref=page.ref, image=None if page.image is None else page.image.copy())


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--receipts", type=int, default=6)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(str(p) for p in (SROIE / "img").glob("*.jpg"))[: args.receipts]
    pages = [load_page(ref) for ref in discover(paths)]

    import ray

    started = time.perf_counter()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             object_store_memory=200 * 1024**2, log_to_driver=False)
    print(f"ray {ray.__version__}: ray.init (new local cluster, {os.cpu_count()} CPUs) took "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    try:
        anyio.run(_bench, args, pages)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
