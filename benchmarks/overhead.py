"""
Framework overhead: no-op items per second through 3 async stages, side by side.

    python benchmarks/overhead.py [--items 100000] [--repeat 3]

Runs, in one process and one run: asyncpipe (journal off, statistics on), the two
hand-written pipelines a good engineer would write (``asyncio.Queue(maxsize=64)`` and
anyio memory object streams), pypeln task stages, aiostream ``pipe.map`` with
``task_limit=1``, and spdl (``PipelineBuilder``, concurrency 1 per stage, its own event loop
in a background thread).  Each figure is the best of ``--repeat`` runs, taken in turns so that
machine noise hits every contender alike.  The last line is::

    overhead ratio_vs_handwritten=R best_peer=P

R = asyncpipe / the faster hand-written pipeline (goal: >= 0.85); P = asyncpipe / the
fastest of pypeln, aiostream and spdl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage

STAGES = 3


async def noop(x: int) -> int:
    return x


async def run_asyncpipe(n: int) -> None:
    pipeline = Pipeline([Stage(f"s{i}", noop) for i in range(STAGES)], max_buffer_size=64)
    count = 0

    async def sink(item: object) -> None:
        nonlocal count
        count += 1

    summary = await pipeline.run(range(n), sink=sink)
    assert count == n and summary.ok == n, (count, summary.ok)


async def run_asyncio_queue(n: int) -> None:
    queues: list[asyncio.Queue[int | None]] = [asyncio.Queue(maxsize=64) for _ in range(STAGES + 1)]
    count = 0

    async def source() -> None:
        for i in range(n):
            await queues[0].put(i)
        await queues[0].put(None)

    async def stage(i: int) -> None:
        inbox, outbox = queues[i], queues[i + 1]
        while (x := await inbox.get()) is not None:
            await outbox.put(await noop(x))
        await outbox.put(None)

    async def sink() -> None:
        nonlocal count
        while await queues[-1].get() is not None:
            count += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(source)
        for i in range(STAGES):
            tg.start_soon(stage, i)
        tg.start_soon(sink)
    assert count == n


async def run_anyio_streams(n: int) -> None:
    ends = [anyio.create_memory_object_stream[int](64) for _ in range(STAGES + 1)]
    count = 0

    async def source() -> None:
        async with ends[0][0] as send:
            for i in range(n):
                await send.send(i)

    async def stage(i: int) -> None:
        async with ends[i][1] as receive, ends[i + 1][0] as send:
            async for x in receive:
                await send.send(await noop(x))

    async def sink() -> None:
        nonlocal count
        async with ends[-1][1] as receive:
            async for _ in receive:
                count += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(source)
        for i in range(STAGES):
            tg.start_soon(stage, i)
        tg.start_soon(sink)
    assert count == n


async def run_aiostream(n: int) -> None:
    from aiostream import pipe, stream

    xs = stream.iterate(range(n))
    for _ in range(STAGES):
        xs = xs | pipe.map(noop, task_limit=1)
    count = 0
    async with xs.stream() as items:
        async for _ in items:
            count += 1
    assert count == n


def run_pypeln(n: int) -> None:
    import pypeln as pl

    xs = range(n)
    for _ in range(STAGES):
        # maxsize=0 (unbounded): with maxsize=64 on chained stages pypeln 0.4.9 hangs here.
        xs = pl.task.map(noop, xs, workers=1, maxsize=0)
    count = sum(1 for _ in xs)
    assert count == n


def run_spdl(n: int) -> None:
    from spdl.pipeline import PipelineBuilder

    builder: Any = PipelineBuilder()
    builder = builder.add_source(range(n))
    for _ in range(STAGES):
        builder = builder.pipe(noop, concurrency=1)
    pipeline = builder.add_sink(64).build(num_threads=1)
    count = 0
    with pipeline.auto_stop():
        for _ in pipeline:
            count += 1
    assert count == n


def timed(fn: Callable[[int], Awaitable[None]] | Callable[[int], None], n: int) -> float:
    start = time.perf_counter()
    if asyncio.iscoroutinefunction(fn):
        anyio.run(fn, n)
    else:
        fn(n)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    contenders: dict[str, Callable[[int], object]] = {
        "asyncpipe": run_asyncpipe,
        "handwritten asyncio.Queue": run_asyncio_queue,
        "handwritten anyio streams": run_anyio_streams,
        "aiostream pipe.map": run_aiostream,
        "pypeln task": run_pypeln,
        "spdl PipelineBuilder": run_spdl,
    }
    best = dict.fromkeys(contenders, 0.0)
    for _ in range(args.repeat):
        for name, fn in contenders.items():
            best[name] = max(best[name], timed(fn, args.items))  # type: ignore[arg-type]
    print(
        f"{args.items} no-op items through {STAGES} async stages, best of {args.repeat} "
        f"(load {os.getloadavg()[0]:.2f}):"
    )
    for name, rate in best.items():
        print(f"  {name:<28} {rate:>10,.0f} items/s")
    handwritten = max(best["handwritten asyncio.Queue"], best["handwritten anyio streams"])
    peer = max(best["aiostream pipe.map"], best["pypeln task"], best["spdl PipelineBuilder"])
    print(
        f"overhead ratio_vs_handwritten={best['asyncpipe'] / handwritten:.2f} "
        f"best_peer={best['asyncpipe'] / peer:.2f}"
    )


if __name__ == "__main__":
    main()
