"""
What one driver costs per page when the work runs on Ray: CPU, bytes shipped, and the
pages/s it can feed at most.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/ray_driver.py'

Run it inside a loopback-only network namespace (as above, as root) so that Ray binds
127.0.0.1; it refuses to run elsewhere unless given ``--any-network``.

The document pipeline runs on a local Ray cluster (2 CPUs, one actor each) over small
SROIE receipts and 600-dpi A4 scans made from them (as in soak.py), in two layouts:

- ``ocr-only``: the old default.  The driver decodes and preprocesses every page and
  ships the decoded pixels to an OCR actor (only on a few pages: ``--old-pages``).
- ``fused``: the default.  The driver attaches each page's file bytes; load, preprocess,
  OCR and the offline text stages run as one call on an actor, which sends back lines
  and text.

Each run writes JSON lines and a checkpoint journal as ``asyncpipe run`` does.  The
driver's CPU is ``time.process_time`` of this process (Ray's driver threads included;
the actors are other processes).  It has two parts, which the run separates:

- **idle**: what Ray's driver threads burn per second doing nothing (timers, gRPC
  polling).  Measured here with the cluster up and no call in flight, for
  ``--idle-seconds`` before the runs and again after them; the mean is used.
- **marginal**: the rest, per page: ``(total - idle rate x wall) / pages``.  It includes
  starting the stage's actors (shown apart as ``start``, once per run).

So total per page = marginal + idle rate / pages per second.  Bytes shipped are the
pickled call arguments out plus the results back, against the encoded file's size.
Then the ceiling: a no-op remote stage over many small items, the items/s one driver
can feed when the remote work is instant, with its marginal CPU per item.

``--ray-env quiet`` (the default, what `RayExecutor` sets for a driver that starts Ray)
or ``default`` (Ray's own settings) picks the driver's ``RAY_*`` settings, and
``--log-to-driver`` turns on Ray's default of printing the actors' output on the driver
(`RayExecutor` turns it off); with ``--idle-only`` only the idle rate is measured, to
compare them.  The last lines are
``PASS``/``FAIL`` against the goals (total CPU <= 30 ms/page, bytes <= 1.5 x the file)
and::

    ray_driver cpu_ms_per_page=C marginal_ms_per_page=M idle_ms_per_s=I bytes_ratio=B
        noop_items_per_s=N

(on one line; C, M and B are the worse of receipts and A4 scans).
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import make_a4

from asyncpipe import Journal, JsonlSink, Pipeline, RayExecutor, Stage, StageCall
from asyncpipe._ray import QUIET_DRIVER_ENV, driver_env
from stages._page import PageRef
from stages.inputs import discover
from stages.pipeline import DocumentSettings, build_pipeline, output_record

__all__ = ["main"]

GOAL_CPU_MS = 30.0
GOAL_BYTES_RATIO = 1.5


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


def _noop(value: Any) -> Any:
    return value


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


def _idle_rate(seconds: float) -> float:
    """The driver's CPU seconds per second with the cluster up and nothing to do."""
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def _measure(pipeline: Pipeline, refs: list[PageRef]) -> dict[str, float]:
    _Metered.sent = _Metered.received = 0
    _Metered.metering = _Metered.start = 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    ok, failed = anyio.run(_drain, pipeline, refs)
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
    }


def _ceiling(items: int, workers: int) -> dict[str, float]:
    data = b"\0" * 1000
    values = [
        PageRef(id=f"p{n}", source="/nonexistent", page=1, kind="jpeg", data=data)
        for n in range(items)
    ]
    pipeline = Pipeline(
        [Stage("noop", _noop, kind="thread", workers=workers, executor=RayExecutor())]
    )
    cpu, wall = time.process_time(), time.perf_counter()
    anyio.run(_drain, pipeline, values)
    return {"items": items, "cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


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
    parser.add_argument("--large", type=int, default=4, help="A4 scans (default 4)")
    parser.add_argument(
        "--old-pages",
        type=int,
        default=2,
        help="pages of each kind through the old ocr-only layout (default 2; 0 skips it)",
    )
    parser.add_argument("--noop-items", type=int, default=2000)
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


def _print_rows(rows: list[tuple[str, str, dict[str, float]]], idle: float) -> None:
    print(
        f"{'layout':8} {'pages':5} {'n':>3} {'wall s':>7} {'pages/s':>7} "
        f"{'CPU ms/page':>11} {'idle part':>9} {'marginal':>8} {'start ms':>8} "
        f"{'out KB':>7} {'back KB':>7} {'file KB':>7} {'bytes/file':>10}"
    )
    for layout, label, r in rows:
        pages = r["pages"]
        print(
            f"{layout:8} {label:5} {int(pages):>3} {r['wall']:>7.1f} {pages / r['wall']:>7.3f} "
            f"{1000 * r['cpu'] / pages:>11.1f} {1000 * idle * r['wall'] / pages:>9.1f} "
            f"{1000 * (r['cpu'] - idle * r['wall']) / pages:>8.1f} {1000 * r['start']:>8.0f} "
            f"{r['sent_per_page'] / 1024:>7.1f} {r['received_per_page'] / 1024:>7.1f} "
            f"{r['encoded_per_page'] / 1024:>7.1f} {r['bytes_ratio']:>10.2f}"
            + (f"  ({int(r['failed'])} failed)" if r["failed"] else "")
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table, PASS/FAIL lines and the last line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.data is None and not args.idle_only:
        parser.error("give --data or set ASYNCPIPE_SROIE")
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"] and not args.any_network:
        parser.error(f"interfaces {interfaces}: run inside `unshare -n` (see the docstring)")
    import ray

    settings = QUIET_DRIVER_ENV if args.ray_env == "quiet" else {}
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
        small = sorted((args.data / "img").glob("*.jpg"))[: args.small]
        large = _a4_scans(small[: args.large], args.cache)
        rows: list[tuple[str, str, dict[str, float]]] = []
        for label, paths in (("small", small), ("A4", large)):
            if args.old_pages:
                refs = list(discover([str(p) for p in paths[: args.old_pages]]))
                old = build_pipeline(DocumentSettings()).configure(
                    executor=_Metered(), executor_stages=["ocr"]
                )
                rows.append(("ocr-only", label, _measure(old, refs)))
            refs = list(discover([str(p) for p in paths]))
            new = build_pipeline(DocumentSettings(ship_bytes=True)).configure(executor=_Metered())
            rows.append(("fused", label, _measure(new, refs)))
        ceiling = _ceiling(args.noop_items, workers=2)
        idle_after = _idle_rate(args.idle_seconds)
    finally:
        ray.shutdown()
    load_after = os.getloadavg()
    idle = (idle_before + idle_after) / 2
    print(
        f"config: 2 actors x 1 CPU on a local Ray {ray.__version__} cluster, ray_env={args.ray_env}"
        f", log_to_driver={args.log_to_driver}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    print(
        f"idle driver: {1000 * idle_before:.2f} ms of CPU per s before the runs, "
        f"{1000 * idle_after:.2f} after; {1000 * idle:.2f} used"
    )
    _print_rows(rows, idle)
    noop_rate = ceiling["items"] / ceiling["wall"]
    noop_marginal = 1000 * (ceiling["cpu"] - idle * ceiling["wall"]) / ceiling["items"]
    print(
        f"no-op remote stage, 2 actors, {ceiling['items']} items: {noop_rate:.0f} items/s, "
        f"driver CPU {1000 * ceiling['cpu'] / ceiling['items']:.2f} ms/item, "
        f"marginal {noop_marginal:.2f} ms/item"
    )
    fused = {label: r for layout, label, r in rows if layout == "fused"}
    worst_cpu = worst_marginal = worst_bytes = 0.0
    for label, r in fused.items():
        total = 1000 * r["cpu"] / r["pages"]
        marginal = 1000 * (r["cpu"] - idle * r["wall"]) / r["pages"]
        worst_cpu, worst_marginal = max(worst_cpu, total), max(worst_marginal, marginal)
        worst_bytes = max(worst_bytes, r["bytes_ratio"])
        cpu_ok = "PASS" if total <= GOAL_CPU_MS else "FAIL"
        bytes_ok = "PASS" if r["bytes_ratio"] <= GOAL_BYTES_RATIO else "FAIL"
        print(
            f"{cpu_ok} {label}: driver CPU {total:.1f} ms/page (goal <= {GOAL_CPU_MS:g}; "
            f"marginal {marginal:.1f} + idle {total - marginal:.1f})"
        )
        print(
            f"{bytes_ok} {label}: shipped {r['bytes_ratio']:.2f} x the encoded file "
            f"(goal <= {GOAL_BYTES_RATIO:g})"
        )
    print(
        f"ray_driver cpu_ms_per_page={worst_cpu:.1f} marginal_ms_per_page={worst_marginal:.1f} "
        f"idle_ms_per_s={1000 * idle:.2f} bytes_ratio={worst_bytes:.2f} "
        f"noop_items_per_s={noop_rate:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
