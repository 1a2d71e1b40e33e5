"""
A small app for the progress tests, run through the real command line with
``ASYNCPIPE_APP=progressapp:app`` (``tests/`` on ``PYTHONPATH``).

Each input is a folder of ``*.txt`` files, one item per file, keyed by file name.  Stage
``read`` (thread) fails with ``ValueError`` on a file whose text starts with ``bad``;
stage ``work`` (async) sleeps ``--delay`` seconds and upper-cases the text.  Fixing a
bad file and running ``--resume --retry-failed`` makes its item succeed.  The app gives
the total (the file count; with ``--refine``, first half of it, then all of it), the unit
``files``, and two extra counters of ``work``: its calls and the characters it handled.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from asyncpipe import Item, Job, Pipeline, RunOptions, Stage

__all__ = ["app"]


def _read(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if text.startswith("bad"):
        raise ValueError(f"{path.name}: bad content")
    return text


class _ProgressApp:
    description = "upper-case text files, slowly"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--delay", type=float, default=0.0, help="seconds per item")
        parser.add_argument("--refine", action="store_true", help="give the total in two steps")

    @asynccontextmanager
    async def open(self, options: RunOptions) -> AsyncIterator[Job]:
        args = options.app_options
        files = sorted(p for name in options.inputs for p in Path(name).glob("*.txt"))  # noqa: ASYNC240
        counts = {"calls": 0, "characters": 0}

        async def work(text: str) -> str:
            await anyio.sleep(args.delay)
            counts["calls"] += 1
            counts["characters"] += len(text)
            return text.upper()

        pipeline = Pipeline(
            [
                Stage("read", _read, kind="thread", workers=2),
                Stage("work", work, workers=2),
            ]
        )

        async def refine() -> AsyncIterator[int]:
            yield len(files) // 2
            await anyio.sleep(0.3)
            yield len(files)

        def record(item: Item) -> dict[str, Any]:
            out: dict[str, Any] = {"id": item.key, "status": "ok" if item.ok else "error"}
            if item.error is not None:
                out["error"] = item.error.to_json()
            else:
                out["value"] = item.value
            return out

        yield Job(
            pipeline=pipeline,
            source=files,
            key=lambda path: path.name,
            record=record,
            total=refine if args.refine else len(files),
            unit="files",
            counters={"work": lambda: dict(counts)},
        )


app = _ProgressApp()
