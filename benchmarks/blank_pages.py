"""
What blank pages cost: a two-sided scan whose backs are blank, read by the CLI with blank
pages skipped (the default) and read (``--read-blank``), in alternation.

The input is one PDF of ``--sheets`` sheets at 150 dpi: each front a SROIE receipt on an
A4 page, each back the paper's grain (grey 238, sigma 5) with the front showing through
mirrored at 6 % of its darkness, as a thin sheet scanned two-sided does. Each run is
``python -m asyncpipe run duplex.pdf --out ...`` offline (no LLM) at the default workers;
its wall time and its CPU seconds (the child's user + system) are printed, then the ratio
of the two arms' medians. The fronts' records must be the same in both arms, and the
backs' must say "blank page" with the default and hold no text either way; the script
exits 1 when they do not.

Usage (from the project root)::

    .venv/bin/python benchmarks/blank_pages.py [--data DIR] [--sheets 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _root
import numpy as np
import orjson
from PIL import Image

__all__ = ["main"]

DEFAULT_DATA = Path(os.environ.get("ASYNCPIPE_SROIE", _root.ROOT.parent / "shared/data/sroie"))
A4 = (1240, 1754)  # 150 dpi


def duplex(data: Path, sheets: int, into: Path) -> Path:
    """The two-sided scan: a receipt on each front, its faint mirror on each back."""
    rng = np.random.default_rng(0)
    pages = []
    for number in range(sheets):
        with Image.open(data / "img" / f"{2 * number:03d}.jpg") as scan:
            receipt = scan.convert("L")
        front = Image.new("L", A4, 246)
        receipt.thumbnail((A4[0] - 200, A4[1] - 200))
        front.paste(receipt, (100, 100))
        ink = 255 - np.asarray(front, dtype=np.float32)
        grain = rng.normal(238, 5, ink.shape) - 0.06 * ink[:, ::-1]
        back = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8))
        pages += [front.convert("RGB"), back.convert("RGB")]
    path = into / "duplex.pdf"
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=150)
    return path


def run(pdf: Path, out: Path, flags: list[str]) -> tuple[float, float, list[dict]]:
    """One CLI run: wall seconds, CPU seconds, the records."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "asyncpipe", "run", str(pdf), "--out", str(out)]
    done = subprocess.run(
        [*command, "--overwrite", "--progress", "none", *flags],
        cwd=_root.ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"run {flags} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, [orjson.loads(line) for line in out.read_bytes().splitlines()]


def main(argv: list[str] | None = None) -> int:
    """Print the two arms' runs and their ratio; 1 when the records disagree."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sheets", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    arms = {"skipped (default)": [], "read (--read-blank)": ["--read-blank"]}
    times: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    records: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pdf = duplex(args.data, args.sheets, Path(tmp))
        load = os.getloadavg()[0]
        print(f"{2 * args.sheets} pages ({args.sheets} sheets, backs blank); load {load:.1f}")
        for turn in range(args.rounds):
            order = list(arms) if turn % 2 == 0 else list(arms)[::-1]
            for arm in order:
                wall, cpu, records[arm] = run(pdf, Path(tmp) / "out.jsonl", arms[arm])
                times[arm].append((wall, cpu))
                print(f"  {arm}: {wall:.1f} s wall, {cpu:.1f} CPU s")
    print("| blank pages | wall s (median) | CPU s (median) |")
    print("|---|---|---|")
    medians = {
        arm: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for arm, runs in times.items()
    }
    for arm, (wall, cpu) in medians.items():
        print(f"| {arm} | {wall:.1f} | {cpu:.1f} |")
    (skip_wall, skip_cpu), (read_wall, read_cpu) = medians.values()
    print(f"skipped / read: wall {skip_wall / read_wall:.2f}, CPU {skip_cpu / read_cpu:.2f}")
    skipped, read = records.values()
    fronts_agree = [r["fields"] for r in skipped[::2]] == [r["fields"] for r in read[::2]]
    backs_blank = all(
        r["text"] == "" and any(w.startswith("blank page") for w in r["warnings"])
        for r in skipped[1::2]
    )
    texts = [r["text"] for r in read[1::2] if r["text"]]
    print(f"fronts' fields the same: {fronts_agree}; backs marked blank: {backs_blank}")
    print(f"backs read with --read-blank: {len(texts)} of {len(read[1::2])} gave text")
    for text in texts[:2]:
        print(f"  e.g. {text[:120]!r}")
    return 0 if fronts_agree and backs_blank else 1


if __name__ == "__main__":
    sys.exit(main())
