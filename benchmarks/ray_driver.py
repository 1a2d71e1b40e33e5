"""
What one driver costs per page when the work runs on Ray: CPU seconds, bytes shipped, and
the pages/s it can feed at most.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/ray_driver.py'

Run it inside a loopback-only network namespace (as above, as root) so that Ray binds
127.0.0.1; it refuses to run elsewhere unless given ``--any-network``.

Two configurations of the document pipeline run on a local Ray cluster over the same
pages, small SROIE receipts and 600-dpi A4 scans (made from receipts, as in soak.py):

- ``ocr-only``: the old default.  The driver decodes and preprocesses every page and
  ships the decoded pixels to an OCR actor.
- ``fused``: the new default.  The driver attaches each page's file bytes; load,
  preprocess, OCR and the offline text stages run as one call on an actor, which sends
  back lines and text.

For each: the driver's CPU seconds per page (``time.process_time`` of this process, Ray's
driver threads included; the actors are other processes), and the bytes shipped per
page (pickled call arguments out plus results back) against the encoded file's size.
Then the ceiling: a no-op remote stage over many small items, the pages/s one driver
can feed when the remote work is instant.  The last line is::

    ray_driver cpu_ms_per_page=C bytes_ratio=B noop_pages_per_s=N

for the fused configuration (goals: C <= 30, B <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import pickle
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import make_a4

from asyncpipe import Item, Pipeline, RayExecutor, Stage, StageCall
from stages._page import PageRef
from stages.inputs import discover
from stages.pipeline import DocumentSettings, build_pipeline

__all__ = ["main"]


class _Metered(RayExecutor):
    """A RayExecutor that adds up the pickled bytes of every call's argument and result."""

    sent = 0
    received = 0
    metering = 0.0  # driver CPU spent pickling to count bytes: not the driver's own cost

    @asynccontextmanager
    async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
        async with super().open(stage) as call:

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
    ok = failed = 0

    async def count(item: Item) -> None:
        nonlocal ok, failed
        if item.error is None:
            ok += 1
        else:
            failed += 1

    await pipeline.run(refs, sink=count, key=lambda r: getattr(r, "id", str(r)))
    return ok, failed


def _measure(pipeline: Pipeline, refs: list[PageRef]) -> dict[str, float]:
    _Metered.sent = _Metered.received = 0
    _Metered.metering = 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    ok, failed = anyio.run(_drain, pipeline, refs)
    cpu, wall = time.process_time() - cpu - _Metered.metering, time.perf_counter() - wall
    pages = len(refs)
    encoded = sum(Path(ref.source).stat().st_size for ref in refs) / pages
    return {
        "pages": pages,
        "ok": ok,
        "failed": failed,
        "cpu_ms_per_page": 1000 * cpu / pages,
        "sent_per_page": _Metered.sent / pages,
        "received_per_page": _Metered.received / pages,
        "encoded_per_page": encoded,
        "bytes_ratio": (_Metered.sent + _Metered.received) / pages / encoded,
        "pages_per_s": pages / wall,
    }


def _ceiling(items: int, workers: int) -> dict[str, float]:
    ref = PageRef(id="x", source="/nonexistent", page=1, kind="jpeg", data=b"\0" * 1000)
    values = [
        PageRef(id=f"p{n}", source=ref.source, page=1, kind="jpeg", data=ref.data)
        for n in range(items)
    ]
    pipeline = Pipeline(
        [Stage("noop", _noop, kind="thread", workers=workers, executor=RayExecutor())]
    )
    cpu, wall = time.process_time(), time.perf_counter()
    anyio.run(_drain, pipeline, values)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"items": items, "pages_per_s": items / wall, "cpu_ms_per_item": 1000 * cpu / items}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table and the last line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("ASYNCPIPE_SROIE"),
        help="the SROIE folder (default $ASYNCPIPE_SROIE)",
    )
    parser.add_argument("--small", type=int, default=6, help="small receipts (default 6)")
    parser.add_argument("--large", type=int, default=2, help="A4 scans (default 2)")
    parser.add_argument("--noop-items", type=int, default=2000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    parser.add_argument(
        "--any-network",
        action="store_true",
        help="run even outside a loopback-only network namespace",
    )
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data or set ASYNCPIPE_SROIE")
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"] and not args.any_network:
        parser.error(f"interfaces {interfaces}: run inside `unshare -n` (see the docstring)")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        small = sorted((args.data / "img").glob("*.jpg"))[: args.small]
        args.cache.mkdir(parents=True, exist_ok=True)
        large = []
        for receipt in small[: args.large]:
            target = args.cache / f"a4-{receipt.stem}.jpg"
            if not target.exists():
                make_a4(receipt, target)
            large.append(target)
        rows: list[tuple[str, str, dict[str, float]]] = []
        for label, paths in (("small", small), ("A4", large)):
            refs = list(discover([str(p) for p in paths]))
            old = build_pipeline(DocumentSettings()).configure(
                executor=_Metered(), executor_stages=["ocr"]
            )
            new = build_pipeline(DocumentSettings(ship_bytes=True)).configure(executor=_Metered())
            rows.append(("ocr-only", label, _measure(old, refs)))
            rows.append(("fused", label, _measure(new, refs)))
        ceiling = _ceiling(args.noop_items, workers=2)
    finally:
        ray.shutdown()
    load = os.getloadavg()[0]
    print(
        f"{'config':9} {'pages':6} {'n':>3} {'driver CPU ms/page':>18} "
        f"{'sent KB/page':>13} {'back KB/page':>13} {'file KB':>8} {'bytes/file':>10} "
        f"{'pages/s':>8}"
    )
    for config, label, r in rows:
        print(
            f"{config:9} {label:6} {int(r['pages']):>3} {r['cpu_ms_per_page']:>18.1f} "
            f"{r['sent_per_page'] / 1024:>13.1f} {r['received_per_page'] / 1024:>13.1f} "
            f"{r['encoded_per_page'] / 1024:>8.1f} {r['bytes_ratio']:>10.2f} "
            f"{r['pages_per_s']:>8.3f}" + (f"  ({int(r['failed'])} failed)" if r["failed"] else "")
        )
    print(
        f"no-op remote stage, 2 actors, {ceiling['items']} items: "
        f"{ceiling['pages_per_s']:.0f} items/s, driver CPU "
        f"{ceiling['cpu_ms_per_item']:.2f} ms/item  (load average {load:.1f})"
    )
    fused = [r for config, _, r in rows if config == "fused"]
    worst_cpu = max(r["cpu_ms_per_page"] for r in fused)
    worst_bytes = max(r["bytes_ratio"] for r in fused)
    print(
        f"ray_driver cpu_ms_per_page={worst_cpu:.1f} bytes_ratio={worst_bytes:.2f} "
        f"noop_pages_per_s={ceiling['pages_per_s']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
