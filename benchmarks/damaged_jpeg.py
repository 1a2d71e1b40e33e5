"""
What the loader makes of a JPEG damaged in the middle: each receipt of a half with 64
random bytes written over its data at 30, 60 and 90 % of the file (one seed per receipt
and place), loaded as the pipeline loads it.

Each damaged file ends one of four ways:

- **silent**: decoded whole, with no word of the damage (what Pillow did for most);
- **warned**: decoded whole, with libjpeg's own warning kept (`jpeg_damage`);
- **cut at the marker**: a marker where picture data should be stopped Pillow, and the
  page was read down to it (`bad_marker`), with the share read;
- **refused**: an error record.

The 40 receipts as scanned are checked too: none may be warned of (a false alarm).

Usage (from the project root)::

    .venv/bin/python benchmarks/damaged_jpeg.py [--data DIR] [--half dev|held|all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

import _root  # noqa: F401  (the project on sys.path)
import numpy as np
from accuracy_offline import split
from fields_ocr import DEFAULT_DATA

from stages.inputs import InputError, discover, load_page

__all__ = ["damage", "main", "outcome"]

#: Where the bytes are overwritten, as shares of the file.
PLACES = (0.3, 0.6, 0.9)


def damage(data: bytes, at: float, seed: int, count: int = 64) -> bytes:
    """``data`` with ``count`` random bytes (``seed``) written over it at ``at`` of it."""
    start = int(len(data) * at)
    noise = np.random.default_rng(seed).integers(0, 256, count, np.uint8).tobytes()
    return data[:start] + noise + data[start + count :]


def outcome(path: Path) -> tuple[str, float]:
    """How the loader read ``path`` (see the module's list), and the share of rows read."""
    try:
        page = load_page(next(iter(discover([path]))), max_side=2000)
    except InputError:
        return "refused", 0.0
    load = page.notes.get("load", {})
    if "damaged" not in load:
        return "silent", 1.0
    if "read" in load:
        return "cut at the marker", load["read"]
    return "warned", 1.0


def main(argv: list[str] | None = None) -> int:
    """
    Command-line entry point.

    Returns:
        0, or 1 when a receipt as scanned is warned of or refused.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with img/")
    parser.add_argument("--half", choices=("dev", "held", "all"), default="dev")
    args = parser.parse_args(argv)
    images = sorted((args.data / "img").glob("*.jpg"))
    names = [image.stem for image in images]
    chosen = names if args.half == "all" else split(names)[args.half]
    false_alarms = [
        name for name in names if outcome(args.data / "img" / f"{name}.jpg")[0] != "silent"
    ]
    counts: Counter[str] = Counter()
    shares: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for number, name in enumerate(chosen):
            data = (args.data / "img" / f"{name}.jpg").read_bytes()
            for place, at in enumerate(PLACES):
                path = Path(folder) / f"{name}-{place}.jpg"
                path.write_bytes(damage(data, at, seed=number * len(PLACES) + place))
                kind, share = outcome(path)
                counts[kind] += 1
                if kind == "cut at the marker":
                    shares.append(share)
    total = sum(counts.values())
    print(f"| {total} damaged files ({args.half}) | count |")
    print("|---|---|")
    for kind in ("silent", "warned", "cut at the marker", "refused"):
        print(f"| {kind} | {counts[kind]} |")
    if shares:
        print(
            f"\nshare of rows read where cut at the marker: median {statistics.median(shares):.2f}"
        )
    alarms = f"{len(false_alarms)} of {len(names)}"
    print(f"receipts as scanned warned of or refused (false alarms): {alarms}")
    return 1 if false_alarms else 0


if __name__ == "__main__":
    sys.exit(main())
