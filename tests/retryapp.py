"""
A journaled run whose every third item fails until ``--fixed``, run as a subprocess by
the ``retry_failed`` kill test and the wording test (``--stop-on-signals``: the run
stops on SIGINT and SIGTERM).

Each call of the stage appends the item's key to ``--calls`` (one ``os.write`` on an
``O_APPEND`` descriptor) before it returns.
"""

from __future__ import annotations

import argparse
import os

import anyio

from asyncpipe import Journal, JsonlSink, Pipeline, Stage

__all__ = ["main"]


async def _run(args: argparse.Namespace) -> None:
    calls = os.open(args.calls, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def work(value: int) -> int:
        await anyio.sleep(args.pause)
        os.write(calls, f"{value}\n".encode())
        if value % 3 == 0 and not args.fixed:
            raise ValueError(f"{value} is a multiple of three")
        return value * 2

    try:
        await Pipeline([Stage("work", work, workers=2)]).run(
            range(args.items),
            sink=JsonlSink(args.out),
            journal=Journal(args.journal),
            resume=args.resume,
            retry_failed=args.retry_failed,
            key=str,
            stop_on_signals=args.stop_on_signals,
        )
    finally:
        os.close(calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--fixed", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--stop-on-signals", action="store_true")
    anyio.run(_run, parser.parse_args())


if __name__ == "__main__":
    main()
