"""
A small non-document app for ``asyncpipe run --app cliapp:app`` (the CLI tests).

Each INPUT is a text file; each line of it is one item, keyed ``FILE:LINE``.  Stages:
``parse`` (async), ``square`` (thread, group ``math``, checkpointed) and ``paid``
(async, group ``math``, declares the shared limit ``calls``, checkpointed: it stands for
a paid API call).  Every ``paid`` call appends ``RUN KEY`` to the ``--side`` file, so a
test can count the calls a resumed run repeats.  The app asks to start with
``CLIAPP_STARTED_WITH=1`` (``start_environment``); ``--env-log`` records the pid and that
variable as the run opens.  ``--log-http`` makes each ``paid`` call log as httpx does
(an INFO line per request on the ``httpx`` logger) and a WARNING there.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from asyncpipe import Item, Job, Pipeline, RateLimit, RunOptions, Stage

__all__ = ["CountingApp", "app"]


class CountingApp:
    """Numbers in text files → parse → square → paid call → JSON lines."""

    description = "square the numbers in text files"

    def start_environment(self) -> dict[str, str]:
        return {"CLIAPP_STARTED_WITH": "1"}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("counting")
        group.add_argument("--side", type=Path, required=True, help="where paid calls are logged")
        group.add_argument("--run-id", default="0", help="tags this run's calls in --side")
        group.add_argument("--delay", type=float, default=0.0, help="seconds per paid call")
        group.add_argument("--env-log", type=Path, help="append 'PID CLIAPP_STARTED_WITH' here")
        group.add_argument("--log-http", action="store_true", help="log each call as httpx")

    @asynccontextmanager
    async def open(self, options: RunOptions) -> AsyncIterator[Job]:
        args = options.app_options
        if args.env_log is not None:
            with args.env_log.open("a") as log:
                log.write(f"{os.getpid()} {os.environ.get('CLIAPP_STARTED_WITH')}\n")
        side = os.open(args.side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

        async def parse(value: tuple[str, str]) -> list[Any]:
            key, text = value
            return [key, int(text)]

        def square(value: list[Any]) -> list[Any]:
            key, number = value
            return [key, number * number]

        async def paid(value: list[Any]) -> list[Any]:
            key, number = value
            await anyio.sleep(args.delay)
            os.write(side, f"{args.run_id} {key}\n".encode())
            if args.log_http:
                http = logging.getLogger("httpx")
                http.info('HTTP Request: POST http://127.0.0.1/?api-key=k "HTTP/1.1 200 OK"')
                http.warning("an httpx warning")
            return [key, number + 1]

        pipeline = Pipeline(
            [
                Stage("parse", parse, workers=2),
                Stage("square", square, kind="thread", group="math", checkpoint=True),
                Stage("paid", paid, group="math", limiter="calls", checkpoint=True),
            ],
            limits={"calls": RateLimit(100_000, 1)},
        )
        try:
            yield Job(
                pipeline=pipeline,
                source=_lines(options.inputs),
                key=lambda value: value[0],
                record=_record,
            )
        finally:
            os.close(side)


def _lines(inputs: list[str]) -> Iterator[tuple[str, str]]:
    for name in inputs:
        for number, line in enumerate(Path(name).read_text().splitlines(), 1):
            if line.strip():
                yield f"{Path(name).name}:{number}", line.strip()


def _record(item: Item) -> dict[str, Any]:
    record: dict[str, Any] = {"id": item.key, "status": "ok" if item.ok else "error"}
    if item.error is not None:
        record["error"] = item.error.to_json()
    else:
        record["value"] = item.value[1]
    return record


app = CountingApp()
