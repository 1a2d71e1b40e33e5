"""
A small pipeline run as a subprocess by the crash and signal tests.

Four stages over ``--items`` integers: ``load`` (async), ``crunch`` (thread), ``paid``
(async, checkpointed: stands for a paid LLM call) and ``finish`` (thread, checkpointed,
with encode/decode hooks).  Each checkpointed call appends ``RUN_ID KEY STAGE`` to the
side file (one ``os.write`` on an ``O_APPEND`` descriptor, before the call returns), so
the tests can count calls.  The stage results depend only on the item, never on timing,
so an interrupted run must end with the same output as an uninterrupted one.

With ``--hold-after N``, the run's ``load`` calls after its first N never return: the
run cannot finish, so a test's SIGKILL aimed at it cannot arrive too late.

The last line on stdout is a JSON summary.  Exit status: 0 when the run finished, 130
after SIGINT and 143 after SIGTERM (``128 + signal number``, as a shell reports it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson

from asyncpipe import Item, Journal, JsonlSink, Pipeline, Stage

__all__ = ["EXIT_CODES", "Result", "calls_of", "expected_value", "main", "written_ids"]

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


@dataclass(frozen=True)
class Result:
    """The output of ``finish``: not JSON-safe as such, so it needs encode/decode."""

    digest: str
    total: int


def written_ids(out: Path) -> list[str]:
    """The ids of the output's whole lines, in order (a torn last line left out)."""
    data = out.read_bytes()
    return [orjson.loads(line)["id"] for line in data[: data.rfind(b"\n") + 1].splitlines()]


def calls_of(side: Path, run: int) -> Counter[tuple[str, str]]:
    """The paid calls run number ``run`` made, by key and stage, from the side file."""
    found: Counter[tuple[str, str]] = Counter()
    for line in side.read_text().splitlines():
        number, key, stage = line.split()
        if int(number) == run:
            found[key, stage] += 1
    return found


def key_of(value: int) -> str:
    """The stable key of an input value."""
    return f"k{value:04d}"


def _load(value: int) -> int:
    return value * 7 + 3


def _crunch(value: int) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:12]


def _paid(digest: str) -> dict[str, Any]:
    return {"digest": digest, "score": int(digest[:4], 16) % 1000}


def _finish(value: dict[str, Any]) -> Result:
    return Result(value["digest"][::-1], value["score"] * 3 + len(value["digest"]))


def expected_value(value: int) -> dict[str, Any]:
    """What the sink line of ``value`` holds in ``value``, computed without the pipeline."""
    return _record_value(_finish(_paid(_crunch(_load(value)))))


def _record_value(result: Result) -> dict[str, Any]:
    return {"digest": result.digest, "total": result.total}


class _App:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = args.run_id
        self.side = os.open(args.side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.loads = 0

    def _delay(self, key: str, stage: str) -> float:
        rng = random.Random(f"{self.args.seed}/{self.run_id}/{key}/{stage}")
        return rng.uniform(0.0, self.args.sleep)

    def _called(self, key: str, stage: str) -> None:
        os.write(self.side, f"{self.run_id} {key} {stage}\n".encode())

    async def load(self, value: int) -> tuple[str, int]:
        key = key_of(value)
        self.loads += 1
        if 0 <= self.args.hold_after < self.loads:
            await anyio.sleep_forever()  # held until the test kills the run
        await anyio.sleep(self._delay(key, "load"))
        return key, _load(value)

    def crunch(self, value: tuple[str, int]) -> tuple[str, str]:
        key, number = value
        time.sleep(self._delay(key, "crunch"))
        return key, _crunch(number)

    async def paid(self, value: tuple[str, str]) -> list[Any]:
        key, digest = value
        await anyio.sleep(self._delay(key, "paid"))
        self._called(key, "paid")
        return [key, _paid(digest)]

    def finish(self, value: list[Any]) -> tuple[str, Result]:
        key, paid = value
        time.sleep(self._delay(key, "finish"))
        self._called(key, "finish")
        return key, _finish(paid)


def _encode(value: tuple[str, Result]) -> dict[str, Any]:
    key, result = value
    return {"key": key, "digest": result.digest, "total": result.total}


def _decode(data: dict[str, Any]) -> tuple[str, Result]:
    return data["key"], Result(data["digest"], data["total"])


def _record(item: Item) -> dict[str, Any]:
    record: dict[str, Any] = {"id": item.key, "status": "ok" if item.ok else "error"}
    if item.error is not None:
        record["error"] = item.error.to_json()
    else:
        key, result = item.value
        if key != item.key:
            raise AssertionError(f"item {item.key} carries the value of {key}")
        record["value"] = _record_value(result)
    return record


def _slow_compaction(pause: float) -> None:
    """
    Make every journal compaction slow (a pause after each write to the new file and
    before it replaces the journal), so that the tests' kills land inside compactions.
    """
    from asyncpipe import _journal_state

    real = _journal_state.atomic_write  # type: ignore[attr-defined]

    class Slow:
        def __init__(self, out: Any) -> None:
            self._out = out

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self._out, name)
            if name in ("write", "copy_from"):

                def slow(*args: Any) -> Any:
                    result = attr(*args)
                    time.sleep(pause)
                    return result

                return slow
            return attr

    @contextlib.contextmanager
    def atomic_write(path: Any) -> Iterator[Any]:
        with real(path) as out:
            yield Slow(out)
            time.sleep(pause)  # the new file is whole, not yet renamed

    _journal_state.atomic_write = atomic_write  # type: ignore[attr-defined]


def _slow_index(pause: float) -> None:
    """
    Make every append to the output's key index slow: half a record, a pause, the rest,
    so that the tests' kills land inside index writes and leave torn records.
    """
    from asyncpipe._keyindex import KeyIndex

    real = KeyIndex.append

    def append(self: KeyIndex, data: bytes) -> None:
        half = len(data) // 2
        real(self, data[:half])
        time.sleep(pause)
        real(self, data[half:])

    KeyIndex.append = append  # type: ignore[method-assign]


def _workers(spec: str) -> list[int]:
    counts = [int(n) for n in spec.split(",")]
    if len(counts) != 4:
        raise SystemExit("--workers takes four comma-separated counts")
    return counts


async def _main(args: argparse.Namespace) -> int:
    app = _App(args)
    w = _workers(args.workers)
    pipeline = Pipeline(
        [
            Stage("load", app.load, workers=w[0]),
            Stage("crunch", app.crunch, kind="thread", workers=w[1]),
            Stage("paid", app.paid, workers=w[2], checkpoint=True),
            Stage(
                "finish",
                app.finish,
                kind="thread",
                workers=w[3],
                checkpoint=True,
                encode=_encode,
                decode=_decode,
            ),
        ],
        max_buffer_size=args.buffer,
    )
    if args.compaction_pause:
        _slow_compaction(args.compaction_pause)
    if args.index_pause:
        _slow_index(args.index_pause)
    compaction: dict[str, Any] = {"compact_grace": args.compact_grace}
    if args.compact_bytes is not None:
        compaction["compact_bytes"] = args.compact_bytes
    journal = Journal(args.journal, fsync_every=args.fsync_every, fsync_interval=0.05, **compaction)
    sink = JsonlSink(args.out, record=_record, fsync_interval=0.05)
    summary = await pipeline.run(
        range(args.items),
        sink=sink,
        journal=journal,
        resume=args.resume,
        retry_failed=args.resume and args.retry_failed,
        ordered=args.ordered,
        key=key_of,
        stop_on_signals=True,
    )
    report = {
        "ok": summary.ok,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "interrupted": summary.interrupted,
        "cancelled": summary.cancelled,
    }
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    if summary.interrupted is not None:
        return EXIT_CODES.get(summary.interrupted, 1)
    return 0


def launch(
    root: Path, run: int, *, resume: bool, hold: int, items: int, journal: str
) -> subprocess.Popen[bytes]:
    """
    Start this app on ``items`` items in ``root`` (its output ``out.jsonl``, its journal
    ``journal``, its paid calls counted in ``calls.txt``, its log ``run<run>.log``),
    holding after ``hold`` items are written (``-1``: never) so a test can kill it there.
    """
    args = [
        sys.executable,
        __file__,
        *("--items", str(items), "--out", str(root / "out.jsonl")),
        *("--journal", str(root / journal), "--side", str(root / "calls.txt")),
        *("--run-id", str(run), "--workers", "4,2,4,2", "--sleep", "0.04"),
        *("--hold-after", str(hold)),
    ]
    if resume:
        args.append("--resume")
    with open(root / f"run{run}.log", "wb") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the pipeline, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--side", required=True)
    parser.add_argument("--run-id", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--ordered", action="store_true")
    parser.add_argument("--workers", default="4,2,8,2")
    parser.add_argument("--buffer", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=0.01, help="most seconds per stage call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hold-after",
        type=int,
        default=-1,
        help="load calls after the first N never return (default: none held)",
    )
    parser.add_argument("--fsync-every", type=int, default=1000)
    parser.add_argument(
        "--compact-bytes",
        type=int,
        default=None,
        help="Journal(compact_bytes=...); default: the Journal's",
    )
    parser.add_argument("--compact-grace", type=float, default=0.0)
    parser.add_argument(
        "--compaction-pause",
        type=float,
        default=0.0,
        help="seconds to sleep at each step of a compaction",
    )
    parser.add_argument(
        "--index-pause",
        type=float,
        default=0.0,
        help="seconds to sleep in the middle of each write to the output's key index",
    )
    args = parser.parse_args(argv)
    return anyio.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
