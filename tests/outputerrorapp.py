"""
A small pipeline run as a subprocess by ``tests/test_journal_output_error.py``.

Three stages over ``--items`` integers: ``load`` (async), ``paid`` (async,
checkpointed: stands for a paid LLM call, each appended as ``RUN_ID KEY`` to the side
file before it returns) and ``shape`` (async, not checkpointed), whose value for the
item ``--unencodable`` is a set: the JSON-lines sink cannot encode it, and writes the
item as an error record of stage ``output`` (the journal gets its done line only).

With ``--hold-after N``, the run's ``load`` calls after its first N never return, so a
test's SIGKILL cannot arrive too late.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import anyio

from asyncpipe import Journal, JsonlSink, Pipeline, Stage

__all__ = ["key_of", "main"]


def key_of(value: int) -> str:
    """The stable key of an input value."""
    return f"k{value:03d}"


async def _main(args: argparse.Namespace) -> int:
    side = os.open(args.side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    loads = 0

    async def load(value: int) -> int:
        nonlocal loads
        loads += 1
        if 0 <= args.hold_after < loads:
            await anyio.sleep_forever()  # held until the test kills the run
        return value

    async def paid(value: int) -> int:
        await anyio.sleep(0.01)
        os.write(side, f"{args.run_id} {key_of(value)}\n".encode())
        return value * 3

    async def shape(value: int) -> Any:
        if value == args.unencodable * 3:
            return {value}  # JSON has no sets
        return {"n": value}

    pipeline = Pipeline(
        [
            Stage("load", load, workers=2),
            Stage("paid", paid, workers=2, checkpoint=True),
            Stage("shape", shape, workers=2),
        ]
    )
    journal = Journal(args.journal, fsync_interval=0.05, compact_grace=0.0)
    sink = JsonlSink(args.out, fsync_interval=0.05)
    await pipeline.run(
        range(args.items),
        sink=sink,
        journal=journal,
        resume=args.resume,
        retry_failed=args.resume and args.retry_failed,
        key=key_of,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the pipeline, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--unencodable", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--side", required=True)
    parser.add_argument("--run-id", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--hold-after", type=int, default=-1)
    args = parser.parse_args(argv)
    return anyio.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
