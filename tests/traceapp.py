"""
The document app with every stage execution traced, for the multi-node Ray test.

``ASYNCPIPE_APP=traceapp:app`` (with ``tests/`` on ``PYTHONPATH``) runs ``stages.app``
unchanged, except that each stage function first appends one JSON line to the file
named by ``$ASYNCPIPE_TRACE``: the stage, the item key, the wall time it started and the
process id.  Each line is one ``os.write`` on an ``O_APPEND`` descriptor, so lines from
the driver and from Ray actors on every node (all on one machine here) never interleave.
Ray pickles this module's functions by value (``ray.cloudpickle``), so the workers need
not import it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
from ray import cloudpickle

from asyncpipe import Job, Pipeline, RunOptions, Stage
from stages._page import PageRef
from stages.app import app as documents

__all__ = ["TRACE_ENV", "app"]

TRACE_ENV = "ASYNCPIPE_TRACE"

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # type: ignore[no-untyped-call]


def _mark(path: str, stage: str, value: Any) -> None:
    """Append ``{"s": stage, "k": key, "t": now, "pid": pid}`` to ``path``."""
    key = value.id if isinstance(value, PageRef) else value.ref.id
    line = orjson.dumps({"s": stage, "k": key, "t": time.time(), "pid": os.getpid()}) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _traced(path: str, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    _mark(path, stage, args[-1])
    return fn(*args)


async def _traced_async(path: str, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    _mark(path, stage, args[-1])
    return await fn(*args)


def traced(stage: Stage, path: str) -> Stage:
    """``stage`` with its function tracing each execution to ``path``."""
    wrap = _traced if stage.kind == "thread" else _traced_async
    return stage.replace(fn=partial(wrap, path, stage.name, stage.fn))


class TracedDocuments:
    """The document app, its stages traced to ``$ASYNCPIPE_TRACE``."""

    description = "the document app, each stage execution traced (tests only)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        documents.add_arguments(parser)

    @asynccontextmanager
    async def open(self, options: RunOptions) -> AsyncIterator[Job]:
        path = os.environ[TRACE_ENV]
        async with documents.open(options) as job:
            pipeline = job.pipeline
            job.pipeline = Pipeline(
                [traced(stage, path) for stage in pipeline.stages],
                max_buffer_size=pipeline.max_buffer_size,
                limits=pipeline.limits,
            )
            yield job


app = TracedDocuments()
