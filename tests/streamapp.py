"""
A journaled `Pipeline.stream` with a slow consumer, run as a subprocess by the stream
tests (which kill it with SIGKILL).

The consumer appends each item's key to ``--consumed`` (one ``os.write`` on an
``O_APPEND`` descriptor) once it has handled it, then asks for the next.
"""

from __future__ import annotations

import argparse
import os

import anyio

from asyncpipe import Journal, Pipeline, Stage

__all__ = ["main"]


async def _double(value: int) -> int:
    return value * 2


async def _consume(args: argparse.Namespace) -> None:
    fd = os.open(args.consumed, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    pipeline = Pipeline([Stage("double", _double, workers=4, checkpoint=True)])
    try:
        async with pipeline.stream(
            range(args.items), key=str, journal=Journal(args.journal), resume=args.resume
        ) as items:
            async for item in items:
                await anyio.sleep(args.pause)  # stands for a write to a database
                os.write(fd, f"{item.key}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--consumed", required=True)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    anyio.run(_consume, parser.parse_args())


if __name__ == "__main__":
    main()
