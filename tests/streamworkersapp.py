"""
A journaled `Pipeline.stream` shared by two consumer tasks, run as a subprocess by the
stream tests (which kill it with SIGKILL).

With ``--hold``, one task takes an item, writes its key to ``--held`` and keeps it for
ever (a worker stuck on a slow call); the other handles the rest.  Each handled item's
key is appended to ``--consumed`` (one ``os.write`` on an ``O_APPEND`` descriptor)
before its task asks for the next.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio

from asyncpipe import Item, Journal, Pipeline, ReceiveQueue, Stage

__all__ = ["main"]


async def _double(value: int) -> int:
    return value * 2


async def _consume(args: argparse.Namespace) -> None:
    fd = os.open(args.consumed, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def handle(items: ReceiveQueue[Item]) -> None:
        async for item in items:
            await anyio.sleep(args.pause)  # stands for a write to a database
            os.write(fd, f"{item.key}\n".encode())

    async def hold(items: ReceiveQueue[Item]) -> None:
        item = await items.receive()
        await anyio.Path(args.held).write_text(item.key)
        await anyio.sleep_forever()

    pipeline = Pipeline([Stage("double", _double, workers=4, checkpoint=True)])
    try:
        async with (
            pipeline.stream(
                range(args.items), key=str, journal=Journal(args.journal), resume=args.resume
            ) as items,
            anyio.create_task_group() as tg,
        ):
            if args.hold:
                tg.start_soon(hold, items)
            tg.start_soon(handle, items)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--consumed", type=Path, required=True)
    parser.add_argument("--held", type=Path)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    anyio.run(_consume, parser.parse_args())


if __name__ == "__main__":
    main()
