"""
Real runs of ``tests/cliapp.py`` (``asyncpipe run``) in a folder of their own, over an
input of numbered lines, for the tests that set one run's files against another's.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import orjson
from clirun import cli_env
from killing import kill_when

from asyncpipe._journal_state import journal_run
from asyncpipe._keyindex import index_run

__all__ = ["APP", "LINES", "args", "ids", "killed_run", "paid_calls", "run_ids"]

#: The lines of a run's input, ``n.txt``: its items are ``n.txt:1`` to ``n.txt:LINES``.
LINES = 40
APP = {"ASYNCPIPE_APP": "cliapp:app"}


def args(folder: Path, run: str) -> list[str]:
    """The arguments of a run in ``folder`` into ``out.jsonl``, its paid calls tagged ``run``."""
    out = folder / "out.jsonl"
    return ["n.txt", "--out", str(out), "--side", str(folder / "calls.txt"), "--run-id", run]


def ids(out: Path) -> list[str]:
    """The keys of the output's whole lines, in order."""
    data = out.read_bytes()
    return [orjson.loads(line)["id"] for line in data[: data.rfind(b"\n") + 1].splitlines()]


def killed_run(folder: Path) -> None:
    """Run slowly (0.1 s a paid call) until the output holds 10 lines, then SIGKILL it."""
    folder.mkdir()
    (folder / "n.txt").write_text("".join(f"{n}\n" for n in range(LINES)))
    command = [sys.executable, "-m", "asyncpipe", "run", *args(folder, "0")]
    process = subprocess.Popen(
        [*command, "--delay", "0.1", "--progress", "none"],
        cwd=folder,
        env=cli_env(APP, test_apps=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = folder / "out.jsonl"
    kill_when(process, lambda: out.exists() and len(ids(out)) >= 10)


def paid_calls(side: Path, run: str) -> Counter[str]:
    """The paid calls the run tagged ``run`` made, by key."""
    if not side.exists():
        return Counter()
    return Counter(
        key for tag, key in (line.split() for line in side.read_text().splitlines()) if tag == run
    )


async def run_ids(journal: Path, out: Path) -> tuple[str | None, str | None]:
    """The run ids the journal and the output's key index hold."""
    return await anyio.to_thread.run_sync(lambda: (journal_run(journal), index_run(out)))
