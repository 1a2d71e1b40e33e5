"""
An item the sink cannot write as it is (a value JSON cannot hold) is told as it fails,
as a stage's failed item is: one WARNING line with the place, the key and the error,
within the run's cap of `FAILURES_LOGGED` lines.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import orjson
import pytest

from asyncpipe import JsonlSink, Pipeline, Stage
from asyncpipe._attempt import FAILURES_LOGGED

KEY = "sk-output-log-7f3c2a9e1b"


class Holder:
    """A value JSON cannot hold, whose ``repr`` and ``str`` show a secret."""

    def __repr__(self) -> str:
        return f"Holder({KEY})"

    __str__ = __repr__


def item_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages of the ``asyncpipe`` logger at ``level`` that tell a failed item."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "asyncpipe" and r.levelno == level and " failed on " in r.getMessage()
    ]


async def run_to(path: Path, stage: Stage, values: list[int]) -> list[dict[str, object]]:
    """Run ``values`` through ``stage`` into a JSON-lines file; return its lines."""
    await Pipeline([stage]).run(values, sink=JsonlSink(path), key=str)
    data = await anyio.Path(path).read_bytes()
    return [orjson.loads(line) for line in data.splitlines()]


async def odd_is_a_set(value: int) -> object:
    """A stage whose output for an odd value is a set, which JSON cannot hold."""
    return {value} if value % 2 else value


class TestOutputFailureLine:
    """The sink's failures get the line a stage's failures get."""

    async def test_one_line_per_item_the_output_cannot_hold(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each item whose value JSON cannot hold leaves one WARNING line naming the output,
        its key and the error; the items written as they were leave none."""
        caplog.set_level(logging.INFO, logger="asyncpipe")
        lines = await run_to(tmp_path / "out.jsonl", Stage("s", odd_is_a_set), [0, 1, 2, 3])
        assert [line["status"] for line in lines] == ["ok", "error", "ok", "error"]
        assert item_lines(caplog, logging.WARNING) == [
            f"the output failed on '{key}': TypeError: cannot write its output as "
            "JSON: Type is not JSON serializable: set"
            for key in ("1", "3")
        ]

    async def test_stage_and_output_failures_share_the_cap(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Stage failures and output failures together are told up to the cap, then one
        line says the rest are counted only; at DEBUG each has its line."""
        caplog.set_level(logging.DEBUG, logger="asyncpipe")

        async def fail_or_set(value: int) -> object:
            if value % 2 == 0:
                raise ValueError(f"bad value {value}")
            return {value}

        count = FAILURES_LOGGED + 10
        lines = await run_to(tmp_path / "out.jsonl", Stage("s", fail_or_set), list(range(count)))
        assert [line["status"] for line in lines] == ["error"] * count
        places = [line["error"]["stage"] for line in lines]  # type: ignore[index]
        assert places == ["s", "output"] * (count // 2)
        told = item_lines(caplog, logging.WARNING)
        assert len(told) == FAILURES_LOGGED
        assert {m.split(" failed on ")[0] for m in told} == {"stage s", "the output"}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == FAILURES_LOGGED + 1
        assert warnings[-1].startswith(f"{FAILURES_LOGGED + 1} items have failed: further")
        assert len(item_lines(caplog, logging.DEBUG)) == count

    async def test_a_secret_in_the_value_is_in_no_line(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A value JSON cannot hold whose text holds an API key leaves the key out of
        the log and the output: the message names the value's type, never the value."""
        caplog.set_level(logging.DEBUG)

        async def secret(value: int) -> object:
            return {"key": KEY, "holder": Holder()} if value else {KEY}

        out = tmp_path / "out.jsonl"
        lines = await run_to(out, Stage("s", secret), [0, 1])
        assert [line["status"] for line in lines] == ["error", "error"]
        assert len(item_lines(caplog, logging.WARNING)) == 2
        assert KEY not in caplog.text
        assert KEY.encode() not in await anyio.Path(out).read_bytes()
