"""
The Ray executor against local threads on this machine, for a no-op stage and for OCR
(issue 6): ``benchmarks/bench.py --ray`` and ``benchmarks/ray_vs_threads.py`` both run it.

`run_comparison` starts one local Ray cluster (``num_cpus`` = this machine's cores, no
dashboard) and times how long ``ray.init`` took.  Then, taking turns so that machine noise
hits both alike, and keeping the best of ``repeat`` runs:

* **per-call overhead**: a no-op ``thread`` stage with 2 workers, ``calls`` items (half as
  many on Ray), minus a 1-item run (so actor start-up is not counted): microseconds per
  call;
* **OCR**: the rapidocr stage (2 workers, one engine each) over the given pages, loaded
  and decoded before the clock starts.  Engine (and actor) start-up is counted, as a real
  run pays it once; the steady-state figure leaves it out by subtracting a 2-page run.

The OCR throughput ratio is Ray pages/s / threads pages/s over the whole run (below 1
means Ray is slower).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from asyncpipe import Item, Pipeline, Stage
from asyncpipe._ray import RayExecutor
from stages._page import Page
from stages.ocr import make_engine, ocr_page

__all__ = ["RayComparison", "require_ray", "run_comparison"]

# Both executors get the same two workers: Ray actors reserve one CPU each, and two is what
# a two-core machine can give without the comparison measuring time-slicing.
WORKERS = 2
# The local cluster's shared-memory object store.  Ray's default (30% of RAM) is far more
# than pages of a few MB need; 200 MB is a guess that leaves the RAM to the OCR engines.
OBJECT_STORE_BYTES = 200 * 1024**2


@dataclass(frozen=True)
class RayComparison:
    """
    The best figures of a Ray-against-threads comparison.

    Attributes:
        pages: pages in each OCR run.
        calls: items of the threads' no-op run (Ray's has half as many).
        repeat: how many times each contender ran (the best run counts).
        noop_us_threads: microseconds per call of the no-op stage on local threads.
        noop_us_ray: microseconds per call of the no-op stage on Ray actors.
        ocr_threads: OCR pages/s on local threads over the whole run (engines built in it).
        ocr_ray: OCR pages/s on Ray actors over the whole run (actors built in it).
        ocr_steady_threads: OCR pages/s on local threads without the first two pages.
        ocr_steady_ray: OCR pages/s on Ray actors without the first two pages.
        ray_version: ``ray.__version__``.
        init_seconds: seconds ``ray.init`` took to start the local cluster.
        workers: workers (threads or actors) of each stage.
    """

    pages: int
    calls: int
    repeat: int
    noop_us_threads: float
    noop_us_ray: float
    ocr_threads: float
    ocr_ray: float
    ocr_steady_threads: float
    ocr_steady_ray: float
    ray_version: str = ""
    init_seconds: float = math.nan
    workers: int = WORKERS

    @property
    def ocr_ratio(self) -> float:
        """Ray's OCR pages/s over the threads' (below 1: Ray is slower), or NaN."""
        return self.ocr_ray / self.ocr_threads if self.ocr_threads > 0 else math.nan

    def to_json(self) -> dict[str, object]:
        """The figures for the bench's JSON results."""
        return {
            "pages": self.pages,
            "calls": self.calls,
            "repeat": self.repeat,
            "workers": self.workers,
            "noop_us_per_call_threads": self.noop_us_threads,
            "noop_us_per_call_ray": self.noop_us_ray,
            "ocr_pages_per_s_threads": self.ocr_threads,
            "ocr_pages_per_s_ray": self.ocr_ray,
            "ocr_steady_pages_per_s_threads": self.ocr_steady_threads,
            "ocr_steady_pages_per_s_ray": self.ocr_steady_ray,
            "ocr_ratio": self.ocr_ratio,
            "ray_version": self.ray_version,
            "ray_init_seconds": self.init_seconds,
        }

    def row(self) -> str:
        """
        The bench's section: the headline line, then one indented line of detail.
        """
        return (
            f"ray vs threads: per-call overhead {self.noop_us_ray:.1f} µs vs "
            f"{self.noop_us_threads:.1f} µs, OCR throughput ratio {self.ocr_ratio:.2f}\n"
            f"    ray {self.ray_version}, local cluster started in {self.init_seconds:.1f} s; "
            f"no-op thread stage, {self.workers} workers, best of {self.repeat}; "
            f"OCR, {self.workers} workers, {self.pages} pages: ray {self.ocr_ray:.3f} vs "
            f"threads {self.ocr_threads:.3f} pages/s (steady {self.ocr_steady_ray:.3f} vs "
            f"{self.ocr_steady_threads:.3f})"
        )

    def lines(self) -> list[str]:
        """
        The report of ``benchmarks/ray_vs_threads.py``; its last line is
        ``ray_vs_threads noop_us_threads=A noop_us_ray=B ocr_ratio=R``.
        """
        return [
            f"no-op thread stage, {self.workers} workers: threads {self.noop_us_threads:.1f} "
            f"us/call, ray {self.noop_us_ray:.1f} us/call",
            f"OCR, {self.workers} workers, {self.pages} receipts: threads "
            f"{self.ocr_threads:.3f} pages/s, ray {self.ocr_ray:.3f} pages/s (ratio "
            f"{self.ocr_ratio:.2f}); steady state threads {self.ocr_steady_threads:.3f}, "
            f"ray {self.ocr_steady_ray:.3f}",
            f"ray_vs_threads noop_us_threads={self.noop_us_threads:.1f} "
            f"noop_us_ray={self.noop_us_ray:.1f} ocr_ratio={self.ocr_ratio:.2f}",
        ]


def require_ray() -> None:
    """
    Check that ray can be imported, so that ``--ray`` fails before the other runs.

    Raises:
        ConfigError: ray is not installed (the message says what to install).
    """
    RayExecutor()  # its constructor checks for ray without importing it


def run_comparison(
    pages: Sequence[Page],
    *,
    calls: int = 2000,
    repeat: int = 2,
    progress: Callable[[str], None] = print,
) -> RayComparison:
    """
    Start a local Ray cluster, compare Ray actors with local threads, and shut it down.

    Args:
        pages: decoded pages for the OCR runs (at least 3); each run OCRs fresh copies.
        calls: items of the threads' no-op run (Ray's has half as many, at least 2).
        repeat: runs of each contender; the best counts.
        progress: called with one line as the cluster starts and after each round.

    Returns:
        The best figures.

    Raises:
        ConfigError: ray is not installed.
        ValueError: fewer than 3 pages, fewer than 4 calls or no repeat.
    """
    if len(pages) < 3 or calls < 4 or repeat < 1:
        raise ValueError("the Ray comparison needs 3 pages, 4 calls and 1 repeat at least")
    require_ray()
    import ray

    cpus = os.cpu_count()
    started = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
    )
    init_seconds = time.perf_counter() - started
    progress(
        f"ray {ray.__version__}: ray.init (new local cluster, {cpus} CPUs) took "
        f"{init_seconds:.1f} s"
    )
    try:
        best = anyio.run(_bench, list(pages), calls, repeat, progress)
    finally:
        ray.shutdown()
    return RayComparison(
        pages=len(pages),
        calls=calls,
        repeat=repeat,
        noop_us_threads=best["noop_threads"],
        noop_us_ray=best["noop_ray"],
        ocr_threads=best["ocr_threads"],
        ocr_ray=best["ocr_ray"],
        ocr_steady_threads=best["ocr_steady_threads"],
        ocr_steady_ray=best["ocr_steady_ray"],
        ray_version=str(ray.__version__),
        init_seconds=init_seconds,
    )


def _noop(value: int) -> int:
    return value


def _engine() -> Any:
    return make_engine("rapidocr")


def _copy(page: Page) -> Page:
    return Page(ref=page.ref, image=None if page.image is None else page.image.copy())


async def _timed(stage: Stage, values: list[Any]) -> float:
    count = 0

    async def sink(item: Item) -> None:
        nonlocal count
        if not item.ok:
            raise RuntimeError(f"ray vs threads: stage {stage.name!r} failed: {item.error}")
        count += 1

    started = time.perf_counter()
    await Pipeline([stage], max_buffer_size=8).run(values, sink=sink)
    if count != len(values):
        raise RuntimeError(f"ray vs threads: {count} of {len(values)} items came out")
    return time.perf_counter() - started


async def _bench(
    pages: list[Page], calls: int, repeat: int, progress: Callable[[str], None]
) -> dict[str, float]:
    # The cluster is up already, so the executor uses it and leaves it running.
    ray_exec = RayExecutor()
    noop = Stage("noop", _noop, kind="thread", workers=WORKERS)
    ocr = Stage("ocr", ocr_page, kind="thread", workers=WORKERS, resource=_engine)
    executors: dict[str, RayExecutor | None] = {"threads": None, "ray": ray_exec}
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, executor in executors.items():
            n = calls if name == "threads" else calls // 2
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
            for key, value in ((f"ocr_{name}", len(pages) / whole), (f"ocr_steady_{name}", steady)):
                best[key] = max(best.get(key, 0.0), value)
            progress(
                f"  {name:7s} noop {us:8.1f} us/call   ocr {len(pages) / whole:.3f} pages/s "
                f"(whole run {whole:.1f} s, steady {steady:.3f} pages/s)"
            )
    return best
