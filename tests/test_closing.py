"""
The lines a run prints when it ends (`asyncpipe._summary.closing_lines`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from asyncpipe import RunSummary
from asyncpipe._summary import closing_lines

pytestmark = pytest.mark.anyio


async def options(tmp_path: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """closing_lines' arguments for an output holding ``records``."""
    out = tmp_path / "out.jsonl"
    await anyio.Path(out).write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return {
        "out": out,
        "journal": tmp_path / "out.jsonl.journal",
        "command": ["asyncpipe", "run", "in", "--out", str(out)],
        "unit": "pages",
    }


ERROR = {"stage": "load", "type": "InputError", "message": "x", "attempts": 1}


async def test_one_page_is_one_page(tmp_path: Path) -> None:
    """One page is said in the singular (round 24's audit: "1 pages failed")."""
    summary = RunSummary(stages=[], elapsed=1.0, ok=0, failed=1, skipped=0)
    lines = await closing_lines(
        summary, **await options(tmp_path, [{"id": "a", "status": "error", "error": ERROR}])
    )
    assert lines[0] == "Done in 1s: 1 page in the output, 0 ok, 1 failed."
    assert "1 page failed (error records in the output):" in lines


async def test_a_second_signal_says_what_it_cancelled(tmp_path: Path) -> None:
    """After a second Ctrl-C the lines say the pages in flight were cancelled and that
    resume does them; after one, they do not (round 23's audit: nothing said so)."""
    records = [{"id": "a"}, {"id": "b"}]
    for cancelled in (False, True):
        summary = RunSummary(
            stages=[],
            elapsed=1.0,
            ok=2,
            failed=0,
            skipped=0,
            interrupted="SIGINT",
            cancelled=cancelled,
        )
        lines = await closing_lines(summary, **await options(tmp_path, records))
        assert lines[0] == "Run interrupted by SIGINT after 1s: 2 pages are in the output."
        said = [line for line in lines if line.startswith("A second signal cancelled")]
        assert said == (
            [
                "A second signal cancelled the pages in flight: they are not in the output, "
                "and the resumed run does them from their last checkpoint."
            ]
            if cancelled
            else []
        )
