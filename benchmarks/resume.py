"""
What a resume costs, next to a fresh run of the same size (issue 16).

The run: N small items through the framework's public API, two checkpointed async
stages whose outputs are about 1 KB each (a page's text, then its lines), a `Journal`
and a `JsonlSink`.  Three processes, each measured on its own:

1. fresh: all N items, from nothing;
2. crash: the same, SIGKILLed when the output holds about half the lines;
3. resume: the crashed run resumed to the end.

It prints, for each size, the figures and their ratios against the goals:

- peak RSS of the resume <= 1.5 x the fresh run's;
- journal size at the end of a run <= 2 x the bytes of the items in flight, plus the
  done keys (at the end nothing is in flight: the bound is the done lines);
- resume start-up (from ``Pipeline.run`` to the first call of the first stage for an
  item not finished) <= 2 s per million finished items.

It checks exactly-once too: after the resume every id is in the output once.

Usage::

    python benchmarks/resume.py --items 300000 1000000 [--dir /tmp/resume-bench]
    python benchmarks/resume.py --items 3000000 --part fresh    # a long size in two parts
    python benchmarks/resume.py --items 3000000 --part resume
    python benchmarks/resume.py --items 1000000 --compaction-delay 4   # a writer that lags
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import orjson

from asyncpipe import Journal, JsonlSink, Pipeline, Stage
from asyncpipe._durable import LineScanner
from asyncpipe._keyset import KeySet

TEXT = "".join(chr(97 + (i * 7) % 26) if i % 9 else " " for i in range(1000))
WORKERS = 8
BUFFER = 16


async def _page(n: int) -> dict[str, Any]:
    if _first[0] is None:
        _first[0] = time.perf_counter()
        _first_cpu[0] = time.process_time()
    k = n % 997
    return {"n": n, "text": TEXT[k:] + TEXT[:k]}


async def _lines(value: dict[str, Any]) -> dict[str, Any]:
    text = value["text"]
    return {"n": value["n"], "lines": [text[i : i + 100] for i in range(0, 1000, 100)]}


_first: list[float | None] = [None]
_first_cpu: list[float | None] = [None]


def _delay_compactions(seconds: float) -> None:
    """
    Make every journal compaction sleep first (``--compaction-delay``): the writer falls
    behind and its queue fills, as on a fast machine, whatever the load.
    """
    from asyncpipe import _journal

    compact = _journal.compact

    def delayed(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return compact(*args, **kwargs)

    _journal.compact = delayed


async def _child(items: int, folder: Path, resume: bool) -> dict[str, Any]:
    pipeline = Pipeline(
        [
            Stage("page", _page, workers=WORKERS, checkpoint=True),
            Stage("lines", _lines, workers=WORKERS, checkpoint=True),
        ],
        max_buffer_size=BUFFER,
    )
    started = time.perf_counter()
    started_cpu = time.process_time()
    summary = await pipeline.run(
        range(items),
        sink=JsonlSink(folder / "out.jsonl"),
        journal=Journal(folder / "journal.jsonl"),
        resume=resume,
        key=str,
    )
    ended = time.perf_counter()
    first = _first[0]
    return {
        "ok": summary.ok,
        "skipped": summary.skipped,
        "seconds": ended - started,
        "first_new_item": None if first is None else first - started,
        "first_new_item_cpu": None if _first_cpu[0] is None else _first_cpu[0] - started_cpu,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """
    This process's peak RSS: ``VmHWM`` where Linux has it.  Not ``ru_maxrss``: a child
    started by ``vfork`` and ``exec`` inherits its parent's peak there (the parent's
    memory at the spawn counts as the child's), and the parent of the resume has just
    held a ``set`` of every done key (`_done_key_memory`): 154 MB at 1M.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_DELAY = [0.0]  # --compaction-delay, passed on to each child


def _run(items: int, folder: Path, *, resume: bool, kill_at: int | None = None) -> Any:
    args = [sys.executable, __file__, "--child", str(items), "--dir", str(folder)]
    if _DELAY[0]:
        args += ["--compaction-delay", str(_DELAY[0])]
    if resume:
        args.append("--resume")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    if kill_at is not None:
        out = folder / "out.jsonl"
        while proc.poll() is None:
            if out.exists() and out.stat().st_size >= kill_at:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        return {"returncode": proc.returncode}
    stdout, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"child failed with {proc.returncode}")
    return json.loads(stdout.splitlines()[-1])


def _lines_in(path: Path) -> int:
    return sum(block.count(b"\n") for _, block in LineScanner(path).blocks())


def _check_exactly_once(path: Path, items: int) -> None:
    seen: set[str] = set()
    for _, line in LineScanner(path):
        key = orjson.loads(line)["id"]
        if key in seen:
            raise SystemExit(f"duplicated output line: {key}")
        seen.add(key)
    if len(seen) != items:
        raise SystemExit(f"{len(seen)} ids in the output, not {items}")


def _done_key_memory(path: Path) -> tuple[float, float]:
    """Bytes per key of the finished keys as a KeySet and as a set (tracemalloc)."""
    keys = [orjson.loads(line)["id"] for _, line in LineScanner(path)]
    tracemalloc.start()
    compact = KeySet(keys)
    a = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del compact
    tracemalloc.start()
    plain = {key.encode().decode() for key in keys}
    b = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del plain
    return a / len(keys), b / len(keys)


def bench_fresh(items: int, root: Path) -> dict[str, Any]:
    """The fresh run; its figures are saved for `bench` (``--part resume``)."""
    fresh_dir = root / f"fresh-{items}"
    shutil.rmtree(fresh_dir, ignore_errors=True)
    fresh_dir.mkdir(parents=True)
    fresh: dict[str, Any] = _run(items, fresh_dir, resume=False)
    fresh["out_bytes"] = (fresh_dir / "out.jsonl").stat().st_size
    fresh["journal_bytes"] = (fresh_dir / "journal.jsonl").stat().st_size
    fresh["index_bytes"] = (fresh_dir / "out.jsonl.keys").stat().st_size
    fresh["load_average"] = os.getloadavg()
    shutil.rmtree(fresh_dir)
    (root / f"fresh-{items}.json").write_text(json.dumps(fresh))
    return fresh


def bench(items: int, root: Path, *, saved_fresh: bool = False) -> dict[str, Any]:
    crash_dir = root / f"crash-{items}"
    shutil.rmtree(crash_dir, ignore_errors=True)
    crash_dir.mkdir(parents=True)
    if saved_fresh:
        fresh = json.loads((root / f"fresh-{items}.json").read_text())
    else:
        fresh = bench_fresh(items, root)
    out_bytes = fresh["out_bytes"]

    _run(items, crash_dir, resume=False, kill_at=out_bytes // 2)
    finished = _lines_in(crash_dir / "out.jsonl")  # a torn last line is not counted
    journal_at_kill = (crash_dir / "journal.jsonl").stat().st_size
    per_key = _done_key_memory(crash_dir / "out.jsonl")
    resumed = _run(items, crash_dir, resume=True)
    resumed["journal_bytes"] = (crash_dir / "journal.jsonl").stat().st_size
    resumed["index_bytes"] = (crash_dir / "out.jsonl.keys").stat().st_size
    _check_exactly_once(crash_dir / "out.jsonl", items)
    shutil.rmtree(crash_dir)

    done_line = len(orjson.dumps({"ev": "done", "k": str(items - 1), "status": "ok"})) + 1
    checkpoint_bytes = 2 * (out_bytes / items)  # two checkpoints of about an output each
    in_flight = 2 * WORKERS + 3 * BUFFER  # workers, and the queues before them and the sink
    return {
        "items": items,
        "fresh": fresh,
        "finished_at_kill": finished,
        "journal_at_kill_mb": journal_at_kill / 1e6,
        "resume": resumed,
        "keyset_bytes_per_key": per_key[0],
        "set_bytes_per_key": per_key[1],
        "rss_ratio": resumed["peak_rss_mb"] / fresh["peak_rss_mb"],
        "journal_bound": 2 * in_flight * checkpoint_bytes + items * done_line + 4096,
        "startup_s_per_million": resumed["first_new_item"] / (finished / 1e6),
        "startup_cpu_s_per_million": resumed["first_new_item_cpu"] / (finished / 1e6),
        "output_mb": out_bytes / 1e6,
    }


def report(result: dict[str, Any]) -> None:
    f, r = result["fresh"], result["resume"]
    print(f"\n== {result['items']:,} items (output {result['output_mb']:.0f} MB) ==")
    print(
        f"fresh:  {f['seconds']:.1f} s, peak RSS {f['peak_rss_mb']:.0f} MB, "
        f"journal at end {f['journal_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"killed: {result['finished_at_kill']:,} lines written, journal "
        f"{result['journal_at_kill_mb']:.1f} MB"
    )
    print(
        f"resume: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB, first new item "
        f"after {r['first_new_item']:.2f} s, journal at end {r['journal_bytes'] / 1e6:.1f} MB; "
        f"{r['skipped']:,} skipped + {r['ok']:,} run = every id once"
    )
    print(
        f"key index beside the output at end: fresh {f['index_bytes'] / 1e6:.1f} MB, "
        f"resumed {r['index_bytes'] / 1e6:.1f} MB ({r['index_bytes'] / result['items']:.1f} B/item)"
    )
    print(
        f"done keys: KeySet {result['keyset_bytes_per_key']:.1f} B/key, "
        f"set {result['set_bytes_per_key']:.1f} B/key"
    )
    bound = result["journal_bound"]
    end = max(f["journal_bytes"], r["journal_bytes"])
    checks = [
        ("peak RSS resume / fresh", result["rss_ratio"], 1.5),
        ("journal at end / (2 x in flight + done keys)", end / bound, 1.0),
        ("start-up s per million finished / 2 s", result["startup_s_per_million"] / 2, 1.0),
    ]
    print(
        f"  start-up: {r['first_new_item']:.2f} s for {result['finished_at_kill']:,} finished "
        f"items = {result['startup_s_per_million']:.2f} s per million (CPU time of the "
        f"process: {r['first_new_item_cpu']:.2f} s = "
        f"{result['startup_cpu_s_per_million']:.2f} s per million)"
    )
    print(f"  exactly once: every one of {result['items']:,} ids once in the output: PASS")
    for name, value, goal in checks:
        print(f"  {name}: {value:.2f} (goal <= {goal}) {'PASS' if value <= goal else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--items",
        type=int,
        nargs="+",
        default=[300_000],
        help="the run's size; several sizes run one after another (default 300000)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/tmp/asyncpipe-resume-bench"),
        help="where the runs write their outputs and journals (default "
        "/tmp/asyncpipe-resume-bench)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--part",
        choices=["all", "fresh", "resume"],
        default="all",
        help="run it all, or in two parts (a size that takes long): the fresh run, "
        "then the crash and the resume against the fresh run saved in --dir",
    )
    parser.add_argument(
        "--compaction-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="make each journal compaction sleep this long first, in every run: the "
        "writer falls behind and its queue fills, as on a fast machine (default 0)",
    )
    args = parser.parse_args()
    _DELAY[0] = args.compaction_delay
    if args.compaction_delay:
        _delay_compactions(args.compaction_delay)
    if args.child is not None:
        result = anyio.run(_child, args.child, args.dir, args.resume)
        print(json.dumps(result))
        return
    print(f"load average: {os.getloadavg()}")
    args.dir.mkdir(parents=True, exist_ok=True)
    for items in args.items:
        if args.part == "fresh":
            print(json.dumps(bench_fresh(items, args.dir)))
            continue
        result = bench(items, args.dir, saved_fresh=args.part == "resume")
        report(result)
        print(json.dumps(result))
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
