"""
A thread stage's per-call cost: each worker on a thread of its own (a stage with a
``resource``) against anyio's thread pool (the same stage without one), side by side.

    python benchmarks/pinned.py [--items 20000] [--repeat 3] [--workers 1,2,4]

A no-op call isolates the hand-over between the event loop and the threads, which is all
that differs.  Both contenders run in the same process, in turns, ``--repeat`` times at
each worker count; the best of each is printed, and the last line is::

    pinned ratio_vs_pool=W1:R1,W2:R2,...

R = the pinned stage's best items/s / the pool stage's best, at W workers.  Above 1 the
worker's own thread costs less per call than the pool.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio

from asyncpipe import Pipeline, Stage


class Engine:
    """A resource that does nothing."""

    def close(self) -> None:
        pass


def with_engine(engine: Engine, value: int) -> int:
    return value


def alone(value: int) -> int:
    return value


async def rate(items: int, workers: int, pinned: bool) -> float:
    """Items per second of one run of a no-op thread stage."""
    stage: Stage = (
        Stage("work", with_engine, kind="thread", workers=workers, resource=Engine)
        if pinned
        else Stage("work", alone, kind="thread", workers=workers)
    )
    started = time.perf_counter()
    summary = await Pipeline([stage]).run(range(items))
    assert summary.ok == items
    return items / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    ratios = []
    for workers in args.workers:
        best: dict[bool, float] = {True: 0.0, False: 0.0}
        for _ in range(args.repeat):
            for pinned in (True, False):
                best[pinned] = max(best[pinned], await rate(args.items, workers, pinned))
        print(
            f"workers {workers}: own threads {best[True]:,.0f} items/s, "
            f"pool {best[False]:,.0f} items/s"
        )
        ratios.append(f"{workers}:{best[True] / best[False]:.2f}")
    print(f"pinned ratio_vs_pool={','.join(ratios)}")


def parse(argv: Any = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 4]
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse())
