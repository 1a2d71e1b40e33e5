"""
Mixed workload: N items, each 20 ms of GIL-free CPU and then a 50 ms wait, side by side.

    python benchmarks/mixed.py [--items 200] [--cpu-ms 20] [--wait-ms 50] [--repeat 3]

The CPU part is SHA-256 over a buffer sized at start-up to take ``--cpu-ms`` of CPU time
(hashlib releases the GIL on large buffers, as OpenCV and onnxruntime do); the wait is an
``asyncio.sleep`` (or ``time.sleep`` in the thread-pool pattern), as an HTTP call would be.
The ideal is ``items * cpu / cores + wait``: every core busy, every wait overlapped.

Contenders, in one process and one run, taken in turns ``--repeat`` times (best and median
kept, so machine noise hits all alike):
    asyncpipe: a thread stage (``cores`` workers) then an async stage (32 workers), in order;
    handwritten: ``asyncio.Queue`` stages, ``cores`` tasks calling ``asyncio.to_thread`` then
        32 tasks sleeping;
    aiostream: ``pipe.map`` with ``task_limit=cores`` (to_thread) then ``task_limit=32``;
    spdl: ``PipelineBuilder`` with a ``cores``-thread executor then concurrency 32;
    threadpool w=2 / w=32: the "seeds" pattern, ``ThreadPoolExecutor.map`` over a function
        doing both parts.

The last line is::

    mixed asyncpipe_s=A ideal_s=I vs_handwritten=H vs_aiostream=S vs_spdl=P vs_pool2=T vs_pool32=U

where each ``vs_X`` is X's best time / asyncpipe's best time (above 1: asyncpipe is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage

__all__ = ["main"]

WAIT_WORKERS = 32


class Work:
    """
    The two halves of one item: ``cpu`` (GIL-free hashing) and the wait.
    """

    def __init__(self, cpu_ms: float, wait_ms: float) -> None:
        self.wait = wait_ms / 1000
        # CPU time of this thread (not wall time, which on a loaded machine includes
        # waiting for a core), the fastest of several.
        self.buffer = b"\0" * (1 << 20)
        per_mb = min(self._time() for _ in range(30))
        self.buffer = b"\0" * max(1 << 16, int((cpu_ms / 1000) / per_mb * (1 << 20)))
        self.cpu_seconds = min(self._time() for _ in range(10))

    def _time(self) -> float:
        started = time.thread_time()
        hashlib.sha256(self.buffer).digest()
        return time.thread_time() - started

    def cpu(self, value: int) -> int:
        hashlib.sha256(self.buffer).digest()
        return value

    async def wait_async(self, value: int) -> int:
        await asyncio.sleep(self.wait)
        return value

    def both(self, value: int) -> int:
        self.cpu(value)
        time.sleep(self.wait)
        return value


def run_asyncpipe(work: Work, n: int, cores: int) -> None:
    stages = [
        Stage("cpu", work.cpu, kind="thread", workers=cores),
        Stage("wait", work.wait_async, workers=WAIT_WORKERS),
    ]
    got: list[int] = []

    async def sink(item: object) -> None:
        got.append(getattr(item, "value", -1))

    summary = anyio.run(lambda: Pipeline(stages).run(range(n), sink=sink, ordered=True))
    assert summary.ok == n and got == list(range(n))


def run_handwritten(work: Work, n: int, cores: int) -> None:
    async def go() -> int:
        first: asyncio.Queue[int | None] = asyncio.Queue(64)
        second: asyncio.Queue[int | None] = asyncio.Queue(64)
        done = 0

        async def source() -> None:
            for i in range(n):
                await first.put(i)
            for _ in range(cores):
                await first.put(None)

        async def cpu() -> None:
            while (x := await first.get()) is not None:
                await second.put(await asyncio.to_thread(work.cpu, x))

        async def wait() -> None:
            nonlocal done
            while (x := await second.get()) is not None:
                await work.wait_async(x)
                done += 1

        waiters = [asyncio.create_task(wait()) for _ in range(WAIT_WORKERS)]
        await asyncio.gather(source(), *(cpu() for _ in range(cores)))
        for _ in waiters:
            await second.put(None)
        await asyncio.gather(*waiters)
        return done

    assert asyncio.run(go()) == n


def run_aiostream(work: Work, n: int, cores: int) -> None:
    from aiostream import pipe, stream

    async def cpu(x: int) -> int:
        return await asyncio.to_thread(work.cpu, x)

    async def go() -> int:
        xs: Any = (
            stream.iterate(range(n))
            | pipe.map(cpu, task_limit=cores)  # type: ignore[arg-type]
            | pipe.map(work.wait_async, task_limit=WAIT_WORKERS)  # type: ignore[arg-type]
        )
        count = 0
        async with xs.stream() as items:
            async for _ in items:
                count += 1
        return count

    assert asyncio.run(go()) == n


def run_spdl(work: Work, n: int, cores: int) -> None:
    from spdl.pipeline import PipelineBuilder

    with ThreadPoolExecutor(cores) as pool:
        builder: Any = PipelineBuilder()
        pipeline = (
            builder.add_source(range(n))
            .pipe(work.cpu, concurrency=cores, executor=pool)
            .pipe(work.wait_async, concurrency=WAIT_WORKERS)
            .add_sink(64)
            .build(num_threads=cores)
        )
        with pipeline.auto_stop():
            count = sum(1 for _ in pipeline)
    assert count == n


def run_pool(workers: int) -> Callable[[Work, int, int], None]:
    def run(work: Work, n: int, cores: int) -> None:
        with ThreadPoolExecutor(workers) as pool:
            assert list(pool.map(work.both, range(n))) == list(range(n))

    return run


def main(argv: list[str] | None = None) -> None:
    """
    Run every contender ``--repeat`` times in turns and print the table and the ratios.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--cpu-ms", type=float, default=20.0)
    parser.add_argument("--wait-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    work = Work(args.cpu_ms, args.wait_ms)
    n, cores = args.items, args.cores
    contenders: dict[str, Callable[[Work, int, int], None]] = {
        "asyncpipe": run_asyncpipe,
        "handwritten": run_handwritten,
        "aiostream": run_aiostream,
        "spdl": run_spdl,
        "pool2": run_pool(2),
        "pool32": run_pool(32),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    loads = []
    for _ in range(args.repeat):
        for name, fn in contenders.items():
            started = time.perf_counter()
            fn(work, n, cores)
            times[name].append(time.perf_counter() - started)
        loads.append(os.getloadavg()[0])
    ideal = n * work.cpu_seconds / cores + work.wait
    print(
        f"{n} items of {work.cpu_seconds * 1000:.1f} ms CPU (measured at start) then "
        f"{args.wait_ms:g} ms wait, {cores} cores; ideal {ideal:.2f} s; load "
        f"{min(loads):.2f}-{max(loads):.2f}"
    )
    for name, seconds in times.items():
        print(
            f"  {name:<12} best {min(seconds):6.2f} s  median {statistics.median(seconds):6.2f}"
            f"  max {max(seconds):6.2f}"
        )
    mine = min(times["asyncpipe"])
    ratios = " ".join(f"vs_{name}={min(times[name]) / mine:.2f}" for name in list(contenders)[1:])
    print(f"mixed asyncpipe_s={mine:.2f} ideal_s={ideal:.2f} {ratios}")


if __name__ == "__main__":
    main()
