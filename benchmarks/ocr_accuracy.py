"""
OCR accuracy and speed of the rapidocr engine on the SROIE receipts.

Usage::

    .venv/bin/python benchmarks/ocr_accuracy.py accuracy [--limit N] [--config NAME ...]
    .venv/bin/python benchmarks/ocr_accuracy.py throughput [--limit N]
    .venv/bin/python benchmarks/ocr_accuracy.py shared [--limit N]

``accuracy`` prints the character error rate (CER) of each preprocessing configuration;
``throughput`` prints pages/s with 1 and 2 worker threads, each with its own engine (one
onnxruntime thread each); ``shared`` calls ONE engine from 2 threads at once and compares
the text with sequential calls.

CER is ``edit distance(reference, hypothesis) / len(reference)``
(:func:`stages.offline.character_error_rate` with ``normalize=False``), summed over all receipts
(total edits / total reference characters). Before comparing, both texts are upper-cased
(SROIE transcripts are upper case), lines are joined with one space and runs of whitespace
become one space. The reference is the ``box/NNN.csv`` transcripts put in reading order by
the same :func:`stages.ocr.reading_order` the engine uses, because the annotators' order
puts some fragments at the end of the file. The receipts are read from $ASYNCPIPE_SROIE or
``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages._page import Line, Page, PageRef
from stages.ocr import RapidOcrEngine, ocr_page, reading_order
from stages.offline import character_error_rate
from stages.preprocess import PreprocessOptions, preprocess

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "CONFIGS",
    "corpus_cer",
    "normalise",
    "reference_text",
    "sroie_root",
]


def normalise(text: str) -> str:
    """
    Upper-case the text and make every run of whitespace (newlines too) one space.
    """
    return " ".join(text.upper().split())


def sroie_root() -> Path:
    """
    The SROIE folder: $ASYNCPIPE_SROIE, else ``../shared/data/sroie`` beside the project.
    """
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "sroie"
    return Path(os.environ.get("ASYNCPIPE_SROIE", default))


def reference_text(root: Path, stem: str) -> str:
    """
    The ground-truth text of one receipt, its lines in reading order, joined with newlines.

    Args:
        root: the SROIE folder.
        stem: the receipt number, e.g. ``"003"``.

    Returns:
        The transcripts of ``box/<stem>.csv`` (everything after the 8th comma).
    """
    lines: list[Line] = []
    raw = (root / "box" / f"{stem}.csv").read_text(encoding="utf-8", errors="replace")
    for row in raw.splitlines():
        parts = row.split(",", 8)
        if len(parts) != 9:
            continue
        xs = [float(v) for v in parts[0:8:2]]
        ys = [float(v) for v in parts[1:8:2]]
        lines.append(Line(parts[8], [min(xs), min(ys), max(xs), max(ys)], 1.0))
    return "\n".join(line.text for line in reading_order(lines))


def corpus_cer(pairs: Sequence[tuple[str, str]]) -> float:
    """
    Total edits over total reference characters, after :func:`normalise`.
    """
    edits = 0.0
    chars = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalise(reference), normalise(hypothesis)
        edits += character_error_rate(ref, hyp, normalize=False) * len(ref)
        chars += len(ref)
    return edits / chars if chars else 0.0


_ALL_OFF = PreprocessOptions(
    grayscale=False, deskew=False, denoise=None, binarize=False, max_side=None, min_side=None
)

#: Configurations measured by ``accuracy``: ``None`` means the raw image, no preprocess.
CONFIGS: dict[str, PreprocessOptions | None] = {
    "raw": None,
    "all_off": _ALL_OFF,
    "grayscale": replace(_ALL_OFF, grayscale=True),
    "deskew": replace(_ALL_OFF, deskew=True),
    "denoise_median": replace(_ALL_OFF, denoise="median"),
    "denoise_bilateral": replace(_ALL_OFF, denoise="bilateral"),
    "denoise_nlmeans": replace(_ALL_OFF, grayscale=True, denoise="nlmeans"),
    "binarize": replace(_ALL_OFF, binarize=True),
    "max_side_2000": replace(_ALL_OFF, max_side=2000),
    "max_side_1600": replace(_ALL_OFF, max_side=1600),
    "max_side_1280": replace(_ALL_OFF, max_side=1280),
    "min_side_600": replace(_ALL_OFF, min_side=600),
    "defaults": PreprocessOptions(),
}


def _images(root: Path, limit: int | None) -> list[Path]:
    return sorted((root / "img").glob("*.jpg"))[:limit]


def _load(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return np.asarray(image, dtype=np.uint8)


def _run_one(engine: RapidOcrEngine, path: Path, options: PreprocessOptions | None) -> str:
    page = Page(ref=PageRef(id=path.name, source=str(path), page=1, kind="jpeg"))
    page.image = _load(path)
    if options is not None:
        preprocess(page, options)
    return ocr_page(engine, page).text


def _per_worker(factory: Callable[[], RapidOcrEngine]) -> Callable[[], RapidOcrEngine]:
    local = threading.local()
    made: list[RapidOcrEngine] = []
    lock = threading.Lock()

    def get() -> RapidOcrEngine:
        if not hasattr(local, "engine"):
            local.engine = factory()
            with lock:
                made.append(local.engine)
        engine: RapidOcrEngine = local.engine
        return engine

    get.made = made  # type: ignore[attr-defined]
    return get


def _ocr_all(
    paths: Sequence[Path], options: PreprocessOptions | None, workers: int, use_cls: bool = False
) -> tuple[list[str], float]:
    engine_for = _per_worker(lambda: RapidOcrEngine(use_cls=use_cls))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: engine_for(), range(workers)))  # warm-up: build engines
        started = time.perf_counter()
        texts = list(pool.map(lambda p: _run_one(engine_for(), p, options), paths))
        seconds = time.perf_counter() - started
    for engine in engine_for.made:  # type: ignore[attr-defined]
        engine.close()
    return texts, seconds


def accuracy(root: Path, limit: int | None, names: Sequence[str], workers: int) -> None:
    """
    Print CER and seconds per page for each named configuration.
    """
    paths = _images(root, limit)
    refs = [reference_text(root, p.stem) for p in paths]
    print(f"{'config':<20} {'CER':>7} {'median':>7} {'s/page':>7}   ({len(paths)} receipts)")
    for name in names:
        use_cls = name == "raw_cls"
        options = None if use_cls else CONFIGS[name]
        texts, seconds = _ocr_all(paths, options, workers, use_cls=use_cls)
        pairs = list(zip(refs, texts, strict=True))
        per_page = [corpus_cer([pair]) for pair in pairs]
        print(
            f"{name:<20} {corpus_cer(pairs):7.4f} {statistics.median(per_page):7.4f} "
            f"{seconds * workers / len(paths):7.2f}",
            flush=True,
        )


def throughput(root: Path, limit: int | None) -> None:
    """
    Print pages/s for 1 and 2 workers, each with its own engine, default preprocessing.
    """
    paths = _images(root, limit)
    for workers in (1, 2):
        _, seconds = _ocr_all(paths, PreprocessOptions(), workers)
        print(f"workers={workers}: {len(paths) / seconds:.3f} pages/s ({seconds:.1f} s)")


def shared(root: Path, limit: int | None) -> None:
    """
    Call one engine from 2 threads at once; report whether the texts equal sequential ones.
    """
    paths = _images(root, limit)
    engine = RapidOcrEngine()
    images = [_load(p) for p in paths]

    def text(image: npt.NDArray[np.uint8]) -> str:
        return "\n".join(line.text for line in engine.recognize(image))

    sequential = [text(image) for image in images]
    errors: list[str] = []

    def run(order: Iterator[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for i in order:
            try:
                out[i] = text(images[i])
            except Exception as exc:  # report, do not hide
                errors.append(repr(exc))
        return out

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run, iter(range(len(images))))
        b = pool.submit(run, iter(reversed(range(len(images)))))
        results = [a.result(), b.result()]
    engine.close()
    same = sum(res[i] == sequential[i] for res in results for i in res)
    total = sum(len(res) for res in results)
    print(f"shared engine, 2 threads: {same}/{total} texts equal sequential; errors={errors}")


def main(argv: Sequence[str] | None = None) -> None:
    """
    Command-line entry point (see the module docstring).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("what", choices=["accuracy", "throughput", "shared"])
    parser.add_argument("--limit", type=int, default=None, help="first N receipts only")
    parser.add_argument(
        "--config", action="append", choices=[*CONFIGS, "raw_cls"], help="default: all"
    )
    parser.add_argument("--workers", type=int, default=2, help="threads for accuracy runs")
    args = parser.parse_args(argv)
    root = sroie_root()
    if args.what == "accuracy":
        accuracy(root, args.limit, args.config or [*CONFIGS, "raw_cls"], args.workers)
    elif args.what == "throughput":
        throughput(root, args.limit)
    else:
        shared(root, args.limit)


if __name__ == "__main__":
    main()
