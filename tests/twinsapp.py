"""
Two runs at once in one process, both with ``stop_on_signals``, run as a subprocess by
the signal tests: ``fast`` (short calls) and ``slow`` (each call takes ``--slow``
seconds).

Each call appends ``RUN VALUE`` to ``--side`` as it begins; each run prints
``RUN {summary}`` as it returns.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
import orjson

from asyncpipe import Pipeline, Stage

__all__ = ["main"]


async def _one(name: str, pause: float, side: int) -> None:
    async def work(value: int) -> int:
        os.write(side, f"{name} {value}\n".encode())
        await anyio.sleep(pause)
        return value

    summary = await Pipeline([Stage("work", work, workers=2)]).run(
        range(10_000), stop_on_signals=True
    )
    report = {"interrupted": summary.interrupted, "cancelled": summary.cancelled}
    sys.stdout.write(f"{name} {orjson.dumps(report).decode()}\n")
    sys.stdout.flush()


async def _main(args: argparse.Namespace) -> None:
    side = os.open(args.side, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_one, "slow", args.slow, side)
            tg.start_soon(_one, "fast", 0.01, side)
    finally:
        os.close(side)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", required=True)
    parser.add_argument("--slow", type=float, required=True)
    anyio.run(_main, parser.parse_args())


if __name__ == "__main__":
    main()
