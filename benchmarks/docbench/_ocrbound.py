"""
An OCR bound independent of the pipeline runs it judges (issue 11, point 1).

The bare rapidocr engine, without asyncpipe, OCRs the same pages as the pipeline (decoded
and preprocessed as the pipeline does, before the clock starts) two ways:

- 1 engine on 1 thread: the physical reference; ``cores`` times its rate is what the
  cores could do if nothing were lost;
- ``cores`` engines in a plain ``ThreadPoolExecutor`` (one engine per thread): what a
  careful user writes by hand.

Against them runs the document pipeline itself, OCR-bound: ``cores`` OCR workers and the
offline text stages (no LLM latency to drain), on the same pages, with and without the
per-page ``malloc_trim`` (``DocumentSettings.malloc_tuning``).

What makes the comparison fair (each was a cause of the harness's unstable figures):

- every engine is built the same way (`stages.ocr.make_engine`, one onnxruntime thread
  per session), inside the timed region in every contender (the pipeline builds its
  engines in its workers; the pool's threads do the same);
- the process is in the same state for all: the bench calls `tune_malloc` (2 malloc
  arenas, as the pipeline sets) and the preprocess sets OpenCV to 1 thread before the
  first timing, so the timings before and after the pipeline runs no longer differ in
  allocator or OpenCV threads;
- the same pages, in the same order; the contenders are interleaved (pool, pipeline,
  pool, pipeline) so that a change of load moves both;
- the process CPU seconds per page are kept beside the wall rate: they do not depend on
  how much of the machine the run got, so they say whether the pipeline costs more CPU
  per page than the bare engine or only got less of the cores.
"""

from __future__ import annotations

import copy
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from stages.inputs import load_page
from stages.ocr import make_engine, ocr_page
from stages.offline import correct_text
from stages.pipeline import DocumentSettings, build_pipeline
from stages.preprocess import PreprocessOptions, preprocess

if TYPE_CHECKING:
    from stages._page import Page, PageRef
    from stages.ocr import OcrEngine

__all__ = [
    "DECODE_MAX_SIDE",
    "OcrComparison",
    "OcrTiming",
    "decode_pages",
    "measure_ocr",
    "ocr_on_engines",
    "ocr_report",
    "time_bare",
    "time_pipeline",
]

#: The longest side the pipeline decodes at for rapidocr (`stages.pipeline`'s default).
DECODE_MAX_SIDE = 2000


def ocr_on_engines(
    engines: Sequence[OcrEngine] | Callable[[], OcrEngine],
    pages: Sequence[Page],
    threads: int | None = None,
) -> dict[str, str]:
    """
    OCR the pages in a plain thread pool, one engine per thread (never shared).

    This is what a careful user writes by hand: each thread takes its own engine the first
    time it runs. ``engines`` is either the engines (one thread each) or a factory each
    thread calls once (inside the caller's clock, as the pipeline's workers do; those
    engines are closed at the end). Pages are copied, as `ocr_page` drops the pixels.
    Returns each page's text by file stem.
    """
    if callable(engines):
        make = engines
        workers = threads or 1
        built: list[OcrEngine] = []
    else:
        make = iter(list(engines)).__next__
        workers = threads or len(engines)
        built = []
    lock = threading.Lock()
    local = threading.local()

    def run(page: Page) -> tuple[str, str]:
        engine = getattr(local, "engine", None)
        if engine is None:
            with lock:
                engine = local.engine = make()
                built.append(engine)
        done = ocr_page(engine, copy.copy(page))
        return Path(done.ref.source).stem, done.text or ""

    try:
        with ThreadPoolExecutor(workers) as pool:
            return dict(pool.map(run, pages))
    finally:
        if callable(engines):
            for engine in built:
                engine.close()


@dataclass(frozen=True)
class OcrTiming:
    """
    One timed pass over the pages.

    Attributes:
        name: ``bare`` (engines in a thread pool) or ``pipeline`` / ``pipeline-no-trim``.
        threads: OCR threads (engines).
        pages: pages OCRed.
        seconds: wall seconds, engines built inside.
        cpu_seconds: this process's CPU seconds (all threads) over the same span.
    """

    name: str
    threads: int
    pages: int
    seconds: float
    cpu_seconds: float

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds

    @property
    def cpu_per_page(self) -> float:
        return self.cpu_seconds / self.pages

    def label(self) -> str:
        return f"{self.name} x{self.threads}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threads": self.threads,
            "pages": self.pages,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "pages_per_s": self.pages_per_s,
            "cpu_per_page": self.cpu_per_page,
        }


def decode_pages(refs: Sequence[PageRef]) -> list[Page]:
    """
    The pages as the pipeline hands them to OCR: decoded at rapidocr's working size, then
    the default preprocess (which also sets OpenCV to 1 thread, process-wide, as it does
    in the pipeline).
    """
    options = PreprocessOptions()
    return [preprocess(load_page(ref, max_side=DECODE_MAX_SIDE), options) for ref in refs]


def time_bare(pages: Sequence[Page], threads: int) -> OcrTiming:
    """
    ``threads`` bare engines in a ``ThreadPoolExecutor`` over ``pages``.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    ocr_on_engines(make_engine, pages, threads)
    return OcrTiming(
        "bare", threads, len(pages), time.perf_counter() - wall, time.process_time() - cpu
    )


def time_pipeline(refs: Sequence[PageRef], threads: int, *, trim: bool = True) -> OcrTiming:
    """
    The document pipeline with ``threads`` OCR workers and the offline text stages.

    ``trim`` is ``DocumentSettings.malloc_tuning``: ``malloc_trim`` after each OCR page.
    """
    settings = DocumentSettings(
        workers={"load": 2, "preprocess": 2, "ocr": threads}, malloc_tuning=trim
    )
    pipeline = build_pipeline(settings, None)
    done: list[Any] = []

    async def keep(item: Any) -> None:
        done.append(item)

    cpu, wall = time.process_time(), time.perf_counter()
    summary = anyio.run(lambda: pipeline.run(list(refs), sink=keep))
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    if summary.failed or len(done) != len(refs):
        raise RuntimeError(f"the OCR-bound pipeline failed {summary.failed} of {len(refs)} pages")
    name = "pipeline" if trim else "pipeline-no-trim"
    return OcrTiming(name, threads, len(refs), seconds, cpu_seconds)


@dataclass(frozen=True)
class OcrComparison:
    """
    The bare engine and the OCR-bound pipeline, timed in one bench run.

    Attributes:
        cores: OCR threads of the pool and the pipeline.
        timings: every pass, in the order run; the single-thread reference is the
            ``bare`` pass with 1 thread, the hand-written pool the ``bare`` passes with
            ``cores`` threads.
    """

    cores: int
    timings: tuple[OcrTiming, ...]

    @property
    def single(self) -> OcrTiming:
        """The fastest pass of 1 bare engine on 1 thread."""
        return max(
            (t for t in self.timings if t.name == "bare" and t.threads == 1),
            key=lambda t: t.pages_per_s,
        )

    def of(self, name: str) -> list[OcrTiming]:
        """The passes of ``name`` with ``cores`` threads."""
        return [t for t in self.timings if t.name == name and t.threads == self.cores]

    @property
    def physical_pages_per_s(self) -> float:
        """``cores`` times the single-thread rate."""
        return self.cores * self.single.pages_per_s

    def ratios(self) -> dict[str, Any]:
        """
        The pipeline's best pages/s against the hand-written pool's best, and against
        physical; the CPU seconds per page of each (median); per interleaved pair, the
        pipeline's rate over the pool's just before it.
        """
        pool = self.of("bare")
        pipe = self.of("pipeline")
        out: dict[str, Any] = {
            "pool_best_pages_per_s": max(t.pages_per_s for t in pool),
            "pipeline_best_pages_per_s": max(t.pages_per_s for t in pipe),
            "pool_cpu_per_page": statistics.median(t.cpu_per_page for t in pool),
            "pipeline_cpu_per_page": statistics.median(t.cpu_per_page for t in pipe),
            "single_cpu_per_page": self.single.cpu_per_page,
        }
        out["vs_hand"] = out["pipeline_best_pages_per_s"] / out["pool_best_pages_per_s"]
        out["vs_physical"] = out["pipeline_best_pages_per_s"] / self.physical_pages_per_s
        out["hand_vs_physical"] = out["pool_best_pages_per_s"] / self.physical_pages_per_s
        out["cpu_vs_hand"] = out["pipeline_cpu_per_page"] / out["pool_cpu_per_page"]
        pairs = []
        last_pool: OcrTiming | None = None
        for timing in self.timings:
            if timing.threads != self.cores:
                continue
            if timing.name == "bare":
                last_pool = timing
            elif timing.name == "pipeline" and last_pool is not None:
                pairs.append(timing.pages_per_s / last_pool.pages_per_s)
        out["pairs"] = pairs
        untrimmed = self.of("pipeline-no-trim")
        if untrimmed:
            out["no_trim_best_pages_per_s"] = max(t.pages_per_s for t in untrimmed)
            out["no_trim_cpu_per_page"] = statistics.median(t.cpu_per_page for t in untrimmed)
            out["no_trim_vs_hand"] = out["no_trim_best_pages_per_s"] / out["pool_best_pages_per_s"]
            out["trim_cpu_cost"] = out["pipeline_cpu_per_page"] / out["no_trim_cpu_per_page"] - 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "cores": self.cores,
            "pages": self.single.pages,
            "single": self.single.to_json(),
            "physical_pages_per_s": self.physical_pages_per_s,
            "timings": [t.to_json() for t in self.timings],
            "ratios": self.ratios(),
        }


def measure_ocr(
    refs: Sequence[PageRef],
    cores: int,
    plan: Sequence[tuple[str, int]],
    *,
    say: Callable[[str], None] = lambda text: None,
) -> list[OcrTiming]:
    """
    Run the passes of ``plan`` in order on ``refs``: ``("bare", threads)``,
    ``("pipeline", threads)`` or ``("pipeline-no-trim", threads)``.
    """
    pages = decode_pages(refs)
    correct_text("warm")  # the offline stages' dictionary loads once, not inside a pass
    out = []
    for name, threads in plan:
        say(f"OCR bound: {name} x{threads} on {len(refs)} pages")
        if name == "bare":
            out.append(time_bare(pages, threads))
        else:
            out.append(time_pipeline(refs, threads, trim=name == "pipeline"))
    return out


def ocr_report(comparison: OcrComparison) -> list[str]:
    """
    The comparison as report lines: one per pass, then the ratios and the goal.
    """
    lines = [
        f"OCR bound ({comparison.single.pages} pages, the same pages in every pass, engines "
        "built inside each pass; wall pages/s and this process's CPU s/page):"
    ]
    for t in comparison.timings:
        lines.append(
            f"    {t.label():<22} {t.pages_per_s:.3f} pages/s  {t.seconds:6.1f} s  "
            f"CPU {t.cpu_per_page:.2f} s/page"
        )
    r = comparison.ratios()
    lines.append(
        f"    physical (x{comparison.cores} the single thread) "
        f"{comparison.physical_pages_per_s:.3f} pages/s; hand-written pool best "
        f"{r['pool_best_pages_per_s']:.3f} = {r['hand_vs_physical']:.2f} of physical"
    )
    pairs = " ".join(f"{p:.2f}" for p in r["pairs"])
    verdict = "met" if r["vs_hand"] >= 0.95 else "NOT met"
    lines.append(
        f"OCR-bound pipeline x{comparison.cores} best {r['pipeline_best_pages_per_s']:.3f} "
        f"pages/s = {r['vs_hand']:.2f} of the hand-written pool (goal >= 0.95: {verdict}; "
        f"each pass over the pool pass before it: {pairs}), {r['vs_physical']:.2f} of "
        f"physical; CPU per page {r['pipeline_cpu_per_page']:.2f} s against the pool's "
        f"{r['pool_cpu_per_page']:.2f} (x{r['cpu_vs_hand']:.2f})"
    )
    if "no_trim_vs_hand" in r:
        lines.append(
            f"    without the per-page malloc_trim: {r['no_trim_best_pages_per_s']:.3f} pages/s "
            f"= {r['no_trim_vs_hand']:.2f} of the pool, CPU {r['no_trim_cpu_per_page']:.2f} "
            f"s/page (the trim costs {100 * r['trim_cpu_cost']:+.0f} % CPU per page)"
        )
    return lines
