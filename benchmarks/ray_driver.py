"""
What one driver costs per page when the work runs on Ray: CPU, bytes shipped, and the
pages/s it can feed at most.

    unshare -n sh -c 'ip link set lo up && ASYNCPIPE_SROIE=/work/shared/data/sroie \\
        .venv/bin/python benchmarks/ray_driver.py'

Run it inside a loopback-only network namespace (as above, as root) so that Ray binds
127.0.0.1; it refuses to run elsewhere unless given ``--any-network``.

The document pipeline runs on a local Ray cluster (2 CPUs, one actor each) over small
SROIE receipts and 600-dpi A4 scans made from them (as in soak.py; 12 of each by
default), in three layouts (``--layouts``):

- ``ocr-only``: the old default.  The driver decodes and preprocesses every page and
  ships the decoded pixels to an OCR actor (only on a few pages: ``--old-pages``).
- ``bytes``: the default.  The driver attaches each page's file bytes; load, preprocess,
  OCR and the offline text stages run as one call on an actor, which sends back lines
  and text.
- ``paths``: ``--inputs-shared``.  As ``bytes``, but only the path travels: the actor
  reads the file (shared storage).

Each run writes JSON lines and a checkpoint journal as ``asyncpipe run`` does.  The
driver's CPU is ``time.process_time`` of this process (Ray's driver threads included;
the actors are other processes).  It has three parts, which the run separates:

- **idle**: what Ray's driver threads burn per second doing nothing (timers, gRPC
  polling).  Measured here with the cluster up and no call in flight, for
  ``--idle-seconds`` before the runs and again after them; the mean is used.
- **start**: the CPU of starting the stage's actors, once per run.
- **per page** (the marginal cost): the rest, per page:
  ``(total - idle rate x wall - start) / pages``: what one more page costs.  Its
  column ``+-`` is how far it moves with the idle rate's own spread (half the gap
  between its two measurements x wall / pages): on a slow cluster the idle part is most
  of the total, and the per-page figure is a small difference of large ones.  The
  no-op rows below measure the driver's per-item work more tightly.

So total per page = per page + start / pages + idle rate / pages per second.  The goal
(driver CPU <= 30 ms per page) is judged both ways: on the total over the run, and on
the marginal cost.  The driver's CPU is also split by thread (Ray's C++ threads name
themselves: ``worker.io``, ``client.poll0``...; the event loop is ``main``).  Bytes
shipped are the pickled call arguments out plus the results back, against the encoded
file's size.  Then the ceiling: a no-op remote stage over many items of 1000 bytes, and
over items as large as the mean A4 scan: the items/s one driver can feed when the remote
work is instant, with its CPU per item.

``--ray-env quiet`` (the default, what `RayExecutor` sets for a driver that starts Ray)
or ``default`` (Ray's own settings) picks the driver's ``RAY_*`` settings,
``--ray-setting NAME=VALUE`` adds one (e.g. ``RAY_max_direct_call_object_size``), and
``--log-to-driver`` turns on Ray's default of printing the actors' output on the driver
(`RayExecutor` turns it off); with ``--idle-only`` only the idle rate is measured, to
compare them.  The last lines are ``PASS``/``FAIL`` against the goals and::

    ray_driver cpu_ms_per_page=C marginal_ms_per_page=M idle_ms_per_s=I bytes_ratio=B
        noop_items_per_s=N noop_cpu_ms_per_item=P

(on one line; C and M are the worst of the fused layouts, B the worst of ``bytes``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import make_a4

from asyncpipe import Journal, JsonlSink, Pipeline, RayExecutor, Stage, StageCall
from asyncpipe._ray_connect import QUIET_DRIVER_ENV, driver_env
from stages._page import PageRef
from stages.inputs import discover
from stages.pipeline import DocumentSettings, build_pipeline, output_record

__all__ = ["main"]

GOAL_CPU_MS = 30.0
GOAL_BYTES_RATIO = 1.5

#: The layouts: the old one (only OCR remote, pixels shipped), the default (fused, the
#: file's bytes shipped) and ``--inputs-shared`` (fused, the path shipped).
LAYOUTS = ("ocr-only", "bytes", "paths")


class _Metered(RayExecutor):
    """A RayExecutor that counts pickled bytes per call and the CPU of starting its actors."""

    sent = 0
    received = 0
    metering = 0.0  # driver CPU spent pickling to count bytes: not the driver's own cost
    start = 0.0  # driver CPU from opening the stage until its actors are ready

    @asynccontextmanager
    async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
        began = time.process_time()
        async with super().open(stage) as call:
            _Metered.start += time.process_time() - began

            async def metered(value: Any) -> Any:
                started = time.process_time()
                _Metered.sent += len(pickle.dumps(value, protocol=5))
                _Metered.metering += time.process_time() - started
                result = await call(value)
                started = time.process_time()
                _Metered.received += len(pickle.dumps(result, protocol=5))
                _Metered.metering += time.process_time() - started
                return result

            yield metered


def _noop(value: PageRef) -> PageRef:
    # What comes back is small, as a page's lines and text are: only the bytes travel out.
    return dataclasses.replace(value, data=None)


async def _drain(pipeline: Pipeline, refs: list[Any]) -> tuple[int, int]:
    """Run as ``asyncpipe run`` does: JSON lines out, a checkpoint journal, input order."""
    with tempfile.TemporaryDirectory(prefix="ray-driver-") as folder:
        summary = await pipeline.run(
            refs,
            sink=JsonlSink(Path(folder) / "out.jsonl", record=output_record),
            journal=Journal(Path(folder) / "out.journal"),
            key=lambda r: getattr(r, "id", str(r)),
        )
    return summary.ok, summary.failed


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """
    CPU seconds (user + system) of each of this process's threads, by thread id, with
    its name (Ray's C++ threads name themselves; Python's do not, and show as the
    process's name).
    """
    tick = os.sysconf("SC_CLK_TCK")
    threads = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return threads


def _by_thread(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], total: float
) -> dict[str, float]:
    """
    CPU seconds spent between two `_thread_cpu` snapshots, summed by thread name; what
    is missing from ``total`` (the process's CPU over the same time) was spent by threads
    that ended before the second snapshot.
    """
    main = threading.get_native_id()
    spent: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        label = "main (event loop)" if tid == main else name
        spent[label] = spent.get(label, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    spent["(ended threads)"] = total - sum(spent.values())
    return {name: cpu for name, cpu in spent.items() if cpu > 0}


def _idle_rate(seconds: float) -> float:
    """The driver's CPU seconds per second with the cluster up and nothing to do."""
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _measure(pipeline: Pipeline, refs: list[PageRef]) -> dict[str, Any]:
    _Metered.sent = _Metered.received = 0
    _Metered.metering = _Metered.start = 0.0
    threads = _thread_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    ok, failed = anyio.run(_drain, pipeline, refs)
    by_thread = _by_thread(threads, _thread_cpu(), time.process_time() - cpu)
    cpu, wall = time.process_time() - cpu - _Metered.metering, time.perf_counter() - wall
    pages = len(refs)
    encoded = sum(Path(ref.source).stat().st_size for ref in refs) / pages
    return {
        "pages": pages,
        "ok": ok,
        "failed": failed,
        "cpu": cpu,
        "wall": wall,
        "start": _Metered.start,
        "sent_per_page": _Metered.sent / pages,
        "received_per_page": _Metered.received / pages,
        "encoded_per_page": encoded,
        "bytes_ratio": (_Metered.sent + _Metered.received) / pages / encoded,
        "by_thread": by_thread,
    }


def _ceiling(items: int, size: int, workers: int) -> dict[str, Any]:
    """A no-op remote stage over ``items`` pages of ``size`` bytes each, run as `_drain` does."""
    data = b"\0" * size
    values = [
        PageRef(id=f"p{n}", source="/nonexistent", page=1, kind="jpeg", data=data)
        for n in range(items)
    ]
    pipeline = Pipeline(
        [Stage("noop", _noop, kind="thread", workers=workers, executor=RayExecutor())]
    )
    threads = _thread_cpu()
    cpu, wall = time.process_time(), time.perf_counter()
    anyio.run(_drain, pipeline, values)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "items": items,
        "size": size,
        "cpu": cpu,
        "wall": wall,
        "by_thread": _by_thread(threads, _thread_cpu(), cpu),
    }


def _a4_scans(receipts: list[Path], cache: Path) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    scans = []
    for receipt in receipts:
        target = cache / f"a4-{receipt.stem}.jpg"
        if not target.exists():
            make_a4(receipt, target)
        scans.append(target)
    return scans


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("ASYNCPIPE_SROIE"),
        help="the SROIE folder (default $ASYNCPIPE_SROIE)",
    )
    parser.add_argument("--small", type=int, default=12, help="small receipts (default 12)")
    parser.add_argument(
        "--large", type=int, default=12, help="A4 scans, made from the first receipts (default 12)"
    )
    parser.add_argument(
        "--layouts",
        default=",".join(LAYOUTS),
        help=f"comma-separated, of {', '.join(LAYOUTS)} (default all)",
    )
    parser.add_argument(
        "--old-pages",
        type=int,
        default=2,
        help="pages of each kind through the old ocr-only layout (default 2)",
    )
    parser.add_argument(
        "--ray-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a RAY_* variable for the driver and the local cluster (repeatable)",
    )
    parser.add_argument(
        "--noop-items", type=int, default=2000, help="no-op items of 1000 bytes (default 2000)"
    )
    parser.add_argument(
        "--noop-large",
        type=int,
        default=300,
        help="no-op items as large as the mean A4 scan (default 300; 0 skips them)",
    )
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--ray-env", choices=("quiet", "default"), default="quiet")
    parser.add_argument(
        "--log-to-driver",
        action="store_true",
        help="print the actors' output on the driver (Ray's default; RayExecutor's is off)",
    )
    parser.add_argument("--idle-only", action="store_true", help="measure only the idle rate")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    parser.add_argument(
        "--any-network",
        action="store_true",
        help="run even outside a loopback-only network namespace",
    )
    return parser


def _per_page(r: dict[str, Any], idle: float) -> tuple[float, float, float, float]:
    """
    Driver CPU ms per page: total, its idle part, marginal (the rest, with the actors'
    start), and marginal without the start (what one more page costs).
    """
    pages = r["pages"]
    total = 1000 * r["cpu"] / pages
    idle_part = 1000 * idle * r["wall"] / pages
    marginal = total - idle_part
    return total, idle_part, marginal, marginal - 1000 * r["start"] / pages


def _print_rows(rows: list[tuple[str, str, dict[str, Any]]], idle: float, spread: float) -> None:
    """
    The table; ``spread`` (CPU s per s) is how far the idle rate moved between its two
    measurements: the per-page figure is known to about ``spread x wall / pages``.
    """
    print(
        f"{'layout':8} {'pages':5} {'n':>3} {'wall s':>7} {'pages/s':>7} "
        f"{'CPU ms/page':>11} {'idle part':>9} {'marginal':>8} {'start ms':>8} "
        f"{'per page':>8} {'+-':>5} {'out KB':>7} {'back KB':>7} {'file KB':>7} "
        f"{'bytes/file':>10}"
    )
    for layout, label, r in rows:
        pages = r["pages"]
        total, idle_part, marginal, steady = _per_page(r, idle)
        print(
            f"{layout:8} {label:5} {int(pages):>3} {r['wall']:>7.1f} {pages / r['wall']:>7.3f} "
            f"{total:>11.1f} {idle_part:>9.1f} {marginal:>8.1f} {1000 * r['start']:>8.0f} "
            f"{steady:>8.1f} {1000 * spread * r['wall'] / pages:>5.1f} "
            f"{r['sent_per_page'] / 1024:>7.1f} "
            f"{r['received_per_page'] / 1024:>7.1f} "
            f"{r['encoded_per_page'] / 1024:>7.1f} {r['bytes_ratio']:>10.2f}"
            + (f"  ({int(r['failed'])} failed)" if r["failed"] else "")
        )
    print("driver CPU by thread, ms per page (the five busiest, then the rest):")
    for layout, label, r in rows:
        spent = sorted(r["by_thread"].items(), key=lambda kv: -kv[1])
        rest = sum(cpu for _, cpu in spent[5:])
        shown = [f"{name} {1000 * cpu / r['pages']:.1f}" for name, cpu in spent[:5]]
        shown.append(f"rest {1000 * rest / r['pages']:.1f}")
        print(f"  {layout:8} {label:5} " + ", ".join(shown))


def _pipeline(layout: str) -> Pipeline:
    if layout == "ocr-only":
        return build_pipeline(DocumentSettings()).configure(
            executor=_Metered(), executor_stages=["ocr"]
        )
    # The executor's default stages: load, preprocess, OCR and the text stages, fused.
    settings = DocumentSettings(ship_bytes=layout == "bytes")
    return build_pipeline(settings).configure(executor=_Metered())


def _verdicts(rows: list[tuple[str, str, dict[str, Any]]], idle: float) -> list[str]:
    """PASS/FAIL lines for the fused layouts: driver CPU both ways, and bytes."""
    lines = []
    for layout, label, r in rows:
        if layout == "ocr-only":
            continue
        total, idle_part, marginal, steady = _per_page(r, idle)
        lines.append(
            f"{'PASS' if total <= GOAL_CPU_MS else 'FAIL'} {layout} {label}: driver CPU, total "
            f"over the run, {total:.1f} ms/page (goal <= {GOAL_CPU_MS:g}; start "
            f"{marginal - steady:.1f} + per page {steady:.1f} + idle {idle_part:.1f})"
        )
        lines.append(
            f"{'PASS' if steady <= GOAL_CPU_MS else 'FAIL'} {layout} {label}: driver CPU, "
            f"marginal, {steady:.1f} ms/page (goal <= {GOAL_CPU_MS:g}; without the start "
            "and the idle part)"
        )
        lines.append(
            f"{'PASS' if r['bytes_ratio'] <= GOAL_BYTES_RATIO else 'FAIL'} {layout} {label}: "
            f"shipped {r['bytes_ratio']:.2f} x the encoded file (goal <= {GOAL_BYTES_RATIO:g})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table, PASS/FAIL lines and the last line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.data is None and not args.idle_only:
        parser.error("give --data or set ASYNCPIPE_SROIE")
    layouts = [name for name in args.layouts.split(",") if name]
    if not set(layouts) <= set(LAYOUTS):
        parser.error(f"--layouts: pick from {', '.join(LAYOUTS)}")
    extra = dict(setting.split("=", 1) for setting in args.ray_setting)
    if not all(name.startswith("RAY_") for name in extra):
        parser.error("--ray-setting takes RAY_NAME=VALUE")
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"] and not args.any_network:
        parser.error(f"interfaces {interfaces}: run inside `unshare -n` (see the docstring)")
    import ray

    settings = {**(QUIET_DRIVER_ENV if args.ray_env == "quiet" else {}), **extra}
    with driver_env(settings):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=args.log_to_driver)
    load_before = os.getloadavg()
    try:
        time.sleep(3)  # let the new cluster settle
        idle_before = _idle_rate(args.idle_seconds)
        if args.idle_only:
            print(
                f"ray_driver idle ray_env={args.ray_env} log_to_driver={args.log_to_driver} "
                f"idle_ms_per_s={1000 * idle_before:.2f} "
                f"over {args.idle_seconds:g} s (load average {load_before[0]:.1f})"
            )
            return 0
        receipts = sorted((args.data / "img").glob("*.jpg"))
        small = receipts[: args.small]
        large = _a4_scans(receipts[: args.large], args.cache)
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for label, paths in (("small", small), ("A4", large)):
            for layout in layouts:
                chosen = paths[: args.old_pages] if layout == "ocr-only" else paths
                if chosen:
                    refs = list(discover([str(p) for p in chosen]))
                    rows.append((layout, label, _measure(_pipeline(layout), refs)))
        a4_size = round(sum(path.stat().st_size for path in large) / len(large)) if large else 0
        ceilings = [_ceiling(args.noop_items, 1000, workers=2)]
        if args.noop_large and a4_size:
            ceilings.append(_ceiling(args.noop_large, a4_size, workers=2))
        idle_after = _idle_rate(args.idle_seconds)
    finally:
        ray.shutdown()
    load_after = os.getloadavg()
    idle = (idle_before + idle_after) / 2
    print(
        f"config: 2 actors x 1 CPU on a local Ray {ray.__version__} cluster, ray_env={args.ray_env}"
        f", log_to_driver={args.log_to_driver}"
        + "".join(f", {name}={value}" for name, value in extra.items())
        + f"; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"idle driver: {1000 * idle_before:.2f} ms of CPU per s before the runs, "
        f"{1000 * idle_after:.2f} after; {1000 * idle:.2f} used"
    )
    _print_rows(rows, idle, abs(idle_before - idle_after) / 2)
    for ceiling in ceilings:
        rate = ceiling["items"] / ceiling["wall"]
        cpu = 1000 * ceiling["cpu"] / ceiling["items"]
        marginal = 1000 * (ceiling["cpu"] - idle * ceiling["wall"]) / ceiling["items"]
        spent = sorted(ceiling["by_thread"].items(), key=lambda kv: -kv[1])[:4]
        print(
            f"no-op remote stage, 2 actors, {ceiling['items']} items of {ceiling['size']} bytes: "
            f"{rate:.0f} items/s, driver CPU {cpu:.2f} ms/item, marginal {marginal:.2f} "
            "ms/item; by thread "
            + ", ".join(f"{name} {1000 * t / ceiling['items']:.2f}" for name, t in spent)
        )
    noop_rate = ceilings[0]["items"] / ceilings[0]["wall"]
    noop_cpu = 1000 * ceilings[0]["cpu"] / ceilings[0]["items"]
    for line in _verdicts(rows, idle):
        print(line)
    fused = [(layout, r) for layout, _, r in rows if layout != "ocr-only"]
    worst = [max((_per_page(r, idle)[i] for _, r in fused), default=0.0) for i in (0, 3)]
    worst_bytes = max((r["bytes_ratio"] for layout, r in fused if layout == "bytes"), default=0.0)
    print(
        f"ray_driver cpu_ms_per_page={worst[0]:.1f} marginal_ms_per_page={worst[1]:.1f} "
        f"idle_ms_per_s={1000 * idle:.2f} bytes_ratio={worst_bytes:.2f} "
        f"noop_items_per_s={noop_rate:.0f} noop_cpu_ms_per_item={noop_cpu:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
