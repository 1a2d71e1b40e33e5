"""
Read a doubtful line again, changed, and keep the reading the recogniser is surest of.

Issue 10 point 4, round 21: does reading each low-confidence line crop again, changed
(taller margin, trimmed, stretched, squeezed, contrast stretched, doubled), and keeping
the highest-scoring reading, raise character accuracy? Every crop the recogniser scores
under ``--below`` is read once per change by the same ``RapidOcrEngine`` (its spacing
included), inside rapidocr's own recognition step, so boxes and filtering stay its own.

The OCR is cached as the variant ``reread`` of ``benchmarks/fields_ocr.py``; score it
beside the default with ``accuracy_offline.py --compare default,reread``. This script
also prints, per change, how often its reading was nearer the transcript's line than the
reading it was compared with (development half only: the held-out lines are never read).

Usage (from the project root)::

    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/ocr_reread.py --cache-dir DIR
    ASYNCPIPE_SROIE=../shared/data/sroie .venv/bin/python benchmarks/accuracy_offline.py \\
        --compare default,reread --half dev --cache-dir DIR
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fields_ocr import DEFAULT_CACHE_DIR, ocr_variant, receipts_parser
from rapidfuzz.distance import Levenshtein

from stages.ocr import RapidOcrEngine


def _margin(crop: np.ndarray) -> np.ndarray:
    pad = max(1, round(crop.shape[0] * 0.15))
    return cv2.copyMakeBorder(crop, pad, pad, 0, 0, cv2.BORDER_REPLICATE)


def _trim(crop: np.ndarray) -> np.ndarray:
    cut = round(crop.shape[0] * 0.08)
    return crop[cut : crop.shape[0] - cut] if cut and crop.shape[0] - 2 * cut > 8 else crop


def _stretch(crop: np.ndarray, factor: float) -> np.ndarray:
    interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    return cv2.resize(crop, None, fx=factor, fy=1.0, interpolation=interpolation)


def _contrast(crop: np.ndarray) -> np.ndarray:
    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


#: Each change made to a doubtful crop before it is read again.
CHANGES = {
    "margin": _margin,
    "trim": _trim,
    "wide": lambda crop: _stretch(crop, 1.25),
    "narrow": lambda crop: _stretch(crop, 0.85),
    "contrast": _contrast,
    "double": lambda crop: cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC),
    "margin_wide": lambda crop: _stretch(_margin(crop), 1.25),
}


#: Per doubtful crop: its first reading and the reading of each change, as
#: ``(text, score)``, in the order of `CHANGES`.
Log = list[tuple[tuple[str, float], list[tuple[str, float]]]]


def rereading(below: float, log: Log) -> Any:
    """
    A ``RapidOcrEngine`` factory whose recogniser reads every crop scored under ``below``
    again once per change, keeping the best-scoring reading; each crop's readings go to
    ``log``.
    """

    def make(**options: Any) -> RapidOcrEngine:
        engine = RapidOcrEngine(**options)
        ocr = engine._ocr
        read = ocr.recognize_txt

        def reread(crops: list[Any]) -> Any:
            result = read(crops)
            doubtful = [k for k, score in enumerate(result.scores) if score < below]
            texts, scores = list(result.txts), list(result.scores)
            words = list(result.word_results)
            readings: list[list[tuple[str, float]]] = [[] for _ in doubtful]
            for change in CHANGES.values() if doubtful else ():
                again = read([change(crops[k]) for k in doubtful])
                for j, k in enumerate(doubtful):
                    readings[j].append((again.txts[j], again.scores[j]))
                    if again.scores[j] > scores[k]:
                        texts[k], scores[k] = again.txts[j], again.scores[j]
                        words[k] = again.word_results[j]
            log.extend(
                zip([(result.txts[k], result.scores[k]) for k in doubtful], readings, strict=True)
            )
            result.txts, result.scores, result.word_results = tuple(texts), scores, tuple(words)
            return result

        ocr.recognize_txt = reread
        return engine

    return make


def nearer(data: Path, stems: list[str], log: Log) -> None:
    """
    Print, per change and per way of choosing among the readings, how often the reading
    is nearer the transcript's line (the one nearest the first reading) than the first.
    """
    truth = [
        row.split(",", 8)[8].strip().upper()
        for stem in stems
        for row in (data / "box" / f"{stem}.csv").read_text(errors="ignore").splitlines()
        if row.count(",") >= 8
    ]
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    farther: list[str] = []
    for (first, score), readings in log:
        line = min(truth, key=lambda text: Levenshtein.distance(text, first.upper()))
        best, best_score = max(readings, key=lambda reading: reading[1])
        vote, votes = collections.Counter(text for text, _ in readings).most_common(1)[0]
        choices = {
            **{name: text for name, (text, _) in zip(CHANGES, readings, strict=True)},
            "the surest of all (kept by `reread`)": best if best_score > score else first,
            "a majority of the changes' readings": vote if 2 * votes > len(readings) else first,
        }
        before = Levenshtein.distance(line, first.upper())
        kept = choices["the surest of all (kept by `reread`)"]
        if Levenshtein.distance(line, kept.upper()) > before:
            farther.append(f"{first!r} ({score:.5f}) -> {kept!r} ({best_score:.5f})")
        for name, text in choices.items():
            after = Levenshtein.distance(line, text.upper())
            counts[name][
                "nearer" if after < before else "farther" if after > before else "same"
            ] += 1
    print(f"{len(log)} doubtful crops")
    print("| reading | nearer the transcript | farther | same |\n|---|---|---|---|")
    for name, count in counts.items():
        print(f"| {name} | {count['nearer']} | {count['farther']} | {count['same']} |")
    print("the surest reading, farther from the transcript:", *farther, sep="\n  ")


def main(argv: list[str] | None = None) -> int:
    """Run from the command line; returns 0."""
    parser = receipts_parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--below", type=float, default=0.95, help="re-read crops scored under")
    args = parser.parse_args(argv)
    images = sorted((args.data / "img").glob("*.jpg"))[0::2]  # the development half
    if (args.cache_dir / "ocr-reread.json").exists():
        parser.error(f"{args.cache_dir}/ocr-reread.json exists: the log needs a fresh read")
    log: Log = []
    stored = ocr_variant(
        images, "reread", args.cache_dir, options={}, make=rereading(args.below, log)
    )
    cpu = sum(stored[image.stem]["cpu_seconds"] for image in images)
    print(f"reread below={args.below} receipts={len(images)} ocr_cpu_seconds={cpu:.1f}")
    nearer(args.data, [image.stem for image in images], log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
