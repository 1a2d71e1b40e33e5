"""
Framework overhead: no-op items per second through 3 async stages, side by side.

    python benchmarks/overhead.py [--items 100000] [--repeat 5] [--buffers 16,64,256]

Runs, in one process and one run: asyncpipe as a user gets it (``Pipeline(stages).run``:
statistics on, ordered output, no journal, a callback sink), once with its default queue
size (16) and once per ``--buffers`` size; the hand-written ``asyncio.Queue`` pipeline a good
engineer would write (one task per stage, a sentinel at the end) at every ``--buffers``
size; hand-written anyio memory object streams (64); aiostream ``pipe.map`` with
``task_limit=1``; pypeln task stages; and spdl (``PipelineBuilder``, concurrency 1 per stage,
its own event loop in a background thread).  pypeln and spdl run ``--peer-items`` items
(they are 30-150x slower; a rate is per item).  Each contender runs ``--repeat`` times, in
turns, so that machine noise hits every contender alike; best and median are printed.

The last line is::

    overhead ratio_vs_handwritten=R median_ratio=M default_vs_handwritten=D
        equal_buffer=MIN/MEDIAN/MAX best_peer=P

R = asyncpipe at its best queue size / the hand-written pipeline at its best one (best
against best, both sizes named; goal: >= 0.85); M = the same two configs, median against
median; D = asyncpipe with its default queue size / the best hand-written one;
equal_buffer = asyncpipe / ``asyncio.Queue`` at each ``--buffers`` size (best against
best); P = asyncpipe's best / the fastest of aiostream, pypeln and spdl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage

STAGES = 3


async def noop(x: int) -> int:
    return x


async def run_asyncpipe(n: int, buffer: int | None = None) -> None:
    stages = [Stage(f"s{i}", noop) for i in range(STAGES)]
    pipeline = Pipeline(stages) if buffer is None else Pipeline(stages, max_buffer_size=buffer)
    count = 0

    async def sink(item: object) -> None:
        nonlocal count
        count += 1

    summary = await pipeline.run(range(n), sink=sink)
    assert count == n and summary.ok == n, (count, summary.ok)


async def run_asyncio_queue(n: int, buffer: int = 64) -> None:
    queues: list[asyncio.Queue[int | None]] = [
        asyncio.Queue(maxsize=buffer) for _ in range(STAGES + 1)
    ]
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


def timed(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    if asyncio.iscoroutinefunction(fn) or isinstance(fn, partial):
        anyio.run(fn, n)
    else:
        fn(n)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items",
        type=int,
        default=100_000,
        help="items per run of asyncpipe and the hand-written pipelines (default 100000)",
    )
    parser.add_argument(
        "--peer-items",
        type=int,
        default=10_000,
        help="items per run of pypeln and spdl, which are 30-150x slower (default 10000)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs of each contender, in turns (default 5)"
    )
    parser.add_argument(
        "--buffers", default="16,64,256", help="the queue sizes compared (default 16,64,256)"
    )
    args = parser.parse_args()
    buffers = [int(b) for b in args.buffers.split(",")]
    contenders: dict[str, tuple[Callable[[int], object], int]] = {
        "asyncpipe default (16)": (partial(run_asyncpipe, buffer=None), args.items)
    }
    for b in buffers:
        contenders[f"asyncpipe buffer={b}"] = (partial(run_asyncpipe, buffer=b), args.items)
    for b in buffers:
        contenders[f"asyncio.Queue buffer={b}"] = (
            partial(run_asyncio_queue, buffer=b),
            args.items,
        )
    contenders |= {
        "anyio streams buffer=64": (run_anyio_streams, args.items),
        "aiostream pipe.map": (run_aiostream, args.items),
        "pypeln task": (run_pypeln, args.peer_items),
        "spdl PipelineBuilder": (run_spdl, args.peer_items),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    loads = []
    for _ in range(args.repeat):
        for name, (fn, n) in contenders.items():
            rates[name].append(timed(fn, n))
        loads.append(os.getloadavg()[0])
    best = {name: max(r) for name, r in rates.items()}
    median = {name: statistics.median(r) for name, r in rates.items()}
    print(
        f"no-op items through {STAGES} async stages ({args.items} items; pypeln and spdl "
        f"{args.peer_items}), best and median of {args.repeat}, "
        f"load {min(loads):.2f}-{max(loads):.2f}:"
    )
    for name in contenders:
        print(f"  {name:<26} best {best[name]:>10,.0f}  median {median[name]:>10,.0f} items/s")
    mine = max((n for n in best if n.startswith("asyncpipe ")), key=best.__getitem__)
    hand = [n for n in best if n.startswith(("asyncio.Queue", "anyio streams"))]
    theirs = max(hand, key=best.__getitem__)
    equal = [best[f"asyncpipe buffer={b}"] / best[f"asyncio.Queue buffer={b}"] for b in buffers]
    peer = max(best["aiostream pipe.map"], best["pypeln task"], best["spdl PipelineBuilder"])
    print(f"best asyncpipe: {mine}; best hand-written: {theirs}")
    print(
        f"overhead ratio_vs_handwritten={best[mine] / best[theirs]:.2f} "
        f"median_ratio={median[mine] / median[theirs]:.2f} "
        f"default_vs_handwritten={best['asyncpipe default (16)'] / best[theirs]:.2f} "
        f"equal_buffer={min(equal):.2f}/{statistics.median(equal):.2f}/{max(equal):.2f} "
        f"best_peer={best[mine] / peer:.2f}"
    )


if __name__ == "__main__":
    main()
