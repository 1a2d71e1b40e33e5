"""
The three contenders, run on the same items, stage functions, OCR engine and LLM server:

* `run_sequential`: one item at a time through every stage (also measures the
  single-thread capacities the bound and the advisor use);
* `run_stage_by_stage`: the pattern hand-written tools use, each stage run to completion
  over all items by its own ``ThreadPoolExecutor``, with locks around the shared
  statistics and the CSV writes;
* `run_asyncpipe`: `stages.pipeline.build_pipeline` on the asyncpipe framework.

Checkpoints and the journal are off in all three (the bench measures throughput, and the
baselines have neither).  asyncpipe writes the app's JSON lines with `JsonlSink`.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import psutil

from asyncpipe import Item, JsonlSink, RateLimit
from stages._page import Page, PageRef
from stages.inputs import load_page
from stages.llm import LlmClient, LlmStages, llm_stages
from stages.ocr import make_engine, ocr_page
from stages.pipeline import DocumentSettings, build_pipeline, output_record
from stages.preprocess import PreprocessOptions, preprocess

from ._model import LLM_STAGES, Config

if TYPE_CHECKING:
    from collections.abc import Sequence as Seq

    from asyncpipe import RunSummary

__all__ = ["RssSampler", "RunResult", "run_asyncpipe", "run_sequential", "run_stage_by_stage"]

MODEL = "asyncpipe-bench"
# Workers of the cheap stages (load: ~5 ms, preprocess: ~0 ms per SROIE page): the same
# for every contender, so they never decide a comparison.
CHEAP_WORKERS = 2


@dataclass
class RunResult:
    """
    One measured run.

    Attributes:
        name: ``sequential``, ``stage-by-stage`` or ``asyncpipe``.
        config: the worker counts (``None`` for sequential).
        items: items done ok (written with their result), the same count for every
            contender: the throughput counts only these.
        failed: items that ended as errors.
        elapsed: wall seconds of the run (engines built inside it).
        done_at: seconds from the start at which each item was written.
        stages: per stage: workers, busy seconds, utilisation.
        bottleneck: the busiest stage.
        peak_rss: the bench process's peak resident set during the run, bytes (sampled).
        wall: ``(start, end)`` in ``time.time()``, to cut the server's request log.
        stage_seconds: mean seconds per item in each stage (sequential only).
        engine_seconds: seconds to build the OCR engine (sequential only).
        cpu_seconds: the bench process's CPU seconds over the run (set by the caller).
    """

    name: str
    config: Config | None
    items: int
    failed: int
    elapsed: float
    done_at: list[float]
    stages: dict[str, dict[str, float]]
    bottleneck: str | None
    peak_rss: int
    wall: tuple[float, float]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    engine_seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.items / self.elapsed if self.elapsed > 0 else 0.0


class RssSampler:
    """
    Samples this process's resident set every ``interval`` seconds in a daemon thread.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def _loop(self) -> None:
        while True:
            self.peak = max(self.peak, self._process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._stop.clear()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def _client(url: str, rate: tuple[int, float] | None) -> LlmClient:
    limit = RateLimit(rate[0], rate[1]) if rate is not None else None
    return LlmClient(url, MODEL, rate_limit=limit, timeout=120.0)


def _stage_table(summary: RunSummary) -> dict[str, dict[str, float]]:
    return {
        s.name: {"workers": s.workers, "busy": s.busy_seconds, "utilisation": s.utilization}
        for s in summary.stages
    }


# -- sequential ----------------------------------------------------------------------------


def run_sequential(refs: Sequence[PageRef], url: str, out: Path) -> RunResult:
    """
    One item at a time: load, preprocess, OCR, then the three LLM calls, then the next.

    The CPU steps run in a worker thread (one at a time) so that the LLM client's event
    loop is never blocked; nothing overlaps.
    """
    return anyio.run(_sequential, list(refs), url, out)


async def _sequential(refs: list[PageRef], url: str, out: Path) -> RunResult:
    options = PreprocessOptions()
    seconds = {name: 0.0 for name in ("load", "preprocess", "ocr", *LLM_STAGES)}
    failed = 0
    done_at: list[float] = []
    sampler = RssSampler()
    async with _client(url, None) as client:
        bound = await anyio.to_thread.run_sync(llm_stages, client)
        # Build (and drop) one engine first: the first build also imports rapidocr and
        # onnxruntime, which the runs after this one never pay again.
        warm = await anyio.to_thread.run_sync(make_engine, "rapidocr")
        await anyio.to_thread.run_sync(warm.close)
        with sampler.running():
            wall0 = time.time()
            t0 = time.perf_counter()
            engine = await anyio.to_thread.run_sync(make_engine, "rapidocr")
            engine_seconds = time.perf_counter() - t0
            lines = []
            for ref in refs:
                try:
                    t = time.perf_counter()
                    page = await anyio.to_thread.run_sync(load_page, ref)
                    seconds["load"] += time.perf_counter() - t
                    t = time.perf_counter()
                    page = await anyio.to_thread.run_sync(preprocess, page, options)
                    seconds["preprocess"] += time.perf_counter() - t
                    t = time.perf_counter()
                    page = await anyio.to_thread.run_sync(ocr_page, engine, page)
                    seconds["ocr"] += time.perf_counter() - t
                    for name in LLM_STAGES:
                        t = time.perf_counter()
                        page = await getattr(bound, name)(page)
                        seconds[name] += time.perf_counter() - t
                    lines.append(output_record(_item(ref, page)))
                except Exception:
                    failed += 1
                done_at.append(time.perf_counter() - t0)
            await anyio.to_thread.run_sync(engine.close)
            elapsed = time.perf_counter() - t0
            wall1 = time.time()
    await anyio.to_thread.run_sync(_write_jsonl, out, lines)
    n = max(1, len(refs))
    return RunResult(
        name="sequential",
        config=None,
        items=len(refs) - failed,
        failed=failed,
        elapsed=elapsed,
        done_at=done_at,
        stages={
            k: {"workers": 1, "busy": v, "utilisation": v / elapsed} for k, v in seconds.items()
        },
        bottleneck=max(seconds, key=lambda k: seconds[k]),
        peak_rss=sampler.peak,
        wall=(wall0, wall1),
        stage_seconds={k: v / n for k, v in seconds.items()},
        engine_seconds=engine_seconds,
    )


def _item(ref: PageRef, page: Page) -> Item:
    item = Item(ref.id, 0, page)
    return item


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    import orjson

    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")


# -- stage by stage (the hand-written ThreadPoolExecutor pattern) ---------------------------


def run_stage_by_stage(refs: Sequence[PageRef], url: str, config: Config, out: Path) -> RunResult:
    """
    The stage-by-stage pattern, written as a careful engineer of that style would.

    Each stage maps its function over *all* items with its own pool and finishes before
    the next begins.  OCR threads each build one engine (thread-local), as engines are not
    thread-safe.  The LLM stages call the same async stage functions and client through
    one blocking portal (an event loop in a thread), ``config.llm`` threads at a time.
    Shared statistics and the CSV rows are guarded by locks.
    """
    stats_lock = threading.Lock()
    csv_lock = threading.Lock()
    busy: dict[str, float] = {}
    stage_wall: dict[str, float] = {}
    failures: dict[str, str] = {}
    local = threading.local()
    engines: list[Any] = []
    options = PreprocessOptions()

    def timed(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(value: Any) -> Any:
            if value is None:
                return None  # failed in an earlier stage
            t = time.perf_counter()
            try:
                return fn(value)
            except Exception as exc:
                with stats_lock:
                    failures[getattr(value, "id", None) or value.ref.id] = f"{name}: {exc}"
                return None
            finally:
                with stats_lock:
                    busy[name] = busy.get(name, 0.0) + time.perf_counter() - t

        return run

    def ocr(page: Page) -> Page:
        engine = getattr(local, "engine", None)
        if engine is None:
            engine = local.engine = make_engine("rapidocr")
            with stats_lock:
                engines.append(engine)
        return ocr_page(engine, page)

    sampler = RssSampler()
    with anyio.from_thread.start_blocking_portal() as portal:
        client = portal.call(_make_client, url, config.rate)
        bound: LlmStages = llm_stages(client)
        out.parent.mkdir(parents=True, exist_ok=True)
        with sampler.running(), out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "company", "date", "address", "total"])
            wall0 = time.time()
            t0 = time.perf_counter()
            values: list[Any] = list(refs)
            plan: list[tuple[str, int, Callable[[Any], Any]]] = [
                ("load", CHEAP_WORKERS, load_page),
                ("preprocess", CHEAP_WORKERS, partial(preprocess, options=options)),
                ("ocr", config.ocr, ocr),
            ]
            plan += [
                (name, config.llm, partial(portal.call, getattr(bound, name)))
                for name in LLM_STAGES
            ]
            done_at: list[float] = []
            for name, workers, fn in plan:
                s = time.perf_counter()
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    values = list(pool.map(timed(name, fn), values))
                stage_wall[name] = time.perf_counter() - s
                if name == "ocr":
                    for engine in engines:
                        engine.close()
            for page in values:
                if page is not None:
                    fields = page.fields or {}
                    with csv_lock:
                        writer.writerow(
                            [
                                page.ref.id,
                                *(fields.get(k) for k in ("company", "date", "address", "total")),
                            ]
                        )
                done_at.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - t0
            wall1 = time.time()
        portal.call(client.aclose)
    workers_of = {name: workers for name, workers, _ in plan}
    stages = {
        name: {
            "workers": workers_of[name],
            "busy": busy.get(name, 0.0),
            "utilisation": busy.get(name, 0.0) / (workers_of[name] * elapsed),
        }
        for name in workers_of
    }
    return RunResult(
        name="stage-by-stage",
        config=config,
        items=len(refs) - len(failures),
        failed=len(failures),
        elapsed=elapsed,
        done_at=done_at,
        stages=stages,
        bottleneck=max(stage_wall, key=lambda k: stage_wall[k]),
        peak_rss=sampler.peak,
        wall=(wall0, wall1),
    )


async def _make_client(url: str, rate: tuple[int, float] | None) -> LlmClient:
    return _client(url, rate)


# -- asyncpipe -----------------------------------------------------------------------------


class _TimedSink(JsonlSink):
    """The app's JSON lines, plus the moment each item was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, record=output_record, overwrite=True)
        self.started = time.perf_counter()
        self.done_at: list[float] = []

    async def write(self, items: Seq[Item]) -> None:
        await super().write(items)
        now = time.perf_counter() - self.started
        self.done_at.extend([now] * len(items))


def run_asyncpipe(refs: Sequence[PageRef], url: str, config: Config, out: Path) -> RunResult:
    """
    The document pipeline on asyncpipe, as ``asyncpipe run`` builds it (journal off).
    """
    return anyio.run(_asyncpipe, list(refs), url, config, out)


async def _asyncpipe(refs: list[PageRef], url: str, config: Config, out: Path) -> RunResult:
    settings = DocumentSettings(
        workers={
            "load": CHEAP_WORKERS,
            "preprocess": CHEAP_WORKERS,
            "ocr": config.ocr,
            "llm": config.llm,
        },
        model=MODEL,
    )
    sampler = RssSampler()
    async with _client(url, config.rate) as client:
        bound = await anyio.to_thread.run_sync(llm_stages, client)
        pipeline = build_pipeline(settings, bound)
        await anyio.to_thread.run_sync(partial(out.unlink, missing_ok=True))
        sink = _TimedSink(out)
        with sampler.running():
            wall0 = time.time()
            sink.started = time.perf_counter()
            summary = await pipeline.run(refs, sink=sink)
            wall1 = time.time()
    return RunResult(
        name="asyncpipe",
        config=config,
        items=summary.ok,
        failed=summary.failed,
        elapsed=summary.elapsed,
        done_at=sink.done_at,
        stages=_stage_table(summary),
        bottleneck=summary.bottleneck,
        peak_rss=sampler.peak,
        wall=(wall0, wall1),
    )
