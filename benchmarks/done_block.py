"""
What checking a compacted journal's run of done lines costs.

A run's compaction checks the run of done lines before it copies it, so that a line in
it garbled to the same length is dropped as any corrupt line is; a resume still seeks
past the run.  The check is a CRC-32 of the run against the one its header holds, or,
for a header without one (an older journal), one regular expression a 64 KiB block.
This builds a compacted journal of N items done (and 100 unfinished ones with a
checkpoint), then times, as the median of ``--repeat`` tries each:

- resume: reading what a resume needs, the sink's keys given (`read_for_resume`);
- compaction: the run's closing compaction of that journal (`compact`);
- check: the check alone, by the CRC where the header holds one (`check_done_block`)
  and line by line (`scan_done_block`).

Run it on the code before and after the change to compare::

    PYTHONPATH=. python benchmarks/done_block.py --items 100000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from asyncpipe import _doneblock
from asyncpipe._doneblock import scan_done_block
from asyncpipe._journal_state import compact, read_for_resume, read_header
from asyncpipe._keyset import KeySet


def _journal(path: Path, items: int) -> KeySet:
    keys = KeySet()
    with path.open("wb") as fh:
        for n in range(items):
            key = f"doc-{n:07d}.pdf"
            keys.add(key)
            fh.write(orjson.dumps({"ev": "ckpt", "k": key, "s": "ocr", "fp": "f", "out": n}))
            fh.write(b"\n" + orjson.dumps({"ev": "done", "k": key, "status": "ok"}) + b"\n")
        for n in range(100):
            out = {"text": "x" * 1000}
            fh.write(
                orjson.dumps({"ev": "ckpt", "k": f"open-{n}", "s": "ocr", "fp": "f", "out": out})
            )
            fh.write(b"\n")
    compact(path, read_header(path), full=True)  # now a compacted journal
    return keys


def _time(action: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.jsonl.journal"
        keys = _journal(path, args.items)
        layout = read_header(path)
        resume = _time(lambda: read_for_resume(path, done=keys, retry_failed=False), args.repeat)
        closing = _time(lambda: compact(path, read_header(path)), args.repeat)
        layout = read_header(path)
        crc = getattr(layout, "crc", None)  # None: the code measured writes no CRC
        lines = _time(lambda: scan_done_block(path, layout.header, layout.tail), args.repeat)
        by_crc = "none in the header"
        if crc is not None:
            check = _doneblock.check_done_block  # type: ignore[attr-defined,unused-ignore]
            took = _time(lambda: check(path, layout.header, layout.tail, crc), args.repeat)
            by_crc = f"{took * 1e3:.1f} ms"
        print(
            f"{args.items} items: journal {path.stat().st_size / 1e6:.1f} MB, done lines "
            f"{layout.done / 1e6:.1f} MB; resume read {resume * 1e3:.1f} ms; "
            f"closing compaction {closing * 1e3:.1f} ms; check of the done lines: by CRC "
            f"{by_crc}, line by line {lines * 1e3:.1f} ms (median of {args.repeat})"
        )


if __name__ == "__main__":
    main()
