"""
Sweep the rapidocr engine's settings: character accuracy and fields on the held-out
receipts, and CPU seconds per page, to choose the OCR defaults by measurement (issue 11,
point 6; issue 10, point 4).

Every setting is a set of :class:`stages.ocr.RapidOcrEngine` keyword arguments (the
engine exactly as the document app builds it, plus rapidocr config keys in ``params``).
Two subcommands:

- ``accuracy``: one engine, one onnxruntime thread, reads every SROIE receipt through the
  pipeline's own path (``benchmarks/fields_ocr.py``: ``load_page`` -> default
  ``preprocess`` -> ``ocr_page``), cached per setting in ``/tmp/ocrsweep-cache``. Each
  receipt is scored by :func:`stages.offline.score_receipt` (the scoring of
  ``benchmarks/accuracy_offline.py``): OCR character accuracy (1 - CER against ``box/``)
  and the four fields, exact, on the development half (even positions of the sorted
  names) and the held-out half (odd positions). CPU s/page is the process CPU time of
  the ``ocr_page`` calls (robust to other load, not to a shared core's caches); it is
  recorded when the page is read, so exploration runs can stay under ``nice``. The
  cache is keyed by setting name: delete ``ocr-default.json`` when the engine's own
  defaults change (``default`` is whatever :class:`RapidOcrEngine` does today).
- ``speed``: decodes and preprocesses ``--limit`` receipts (spread over the sorted list),
  builds the engines, warms each on one page, then times a ``ThreadPoolExecutor`` of
  ``engines`` workers (one engine each, ``threads`` intra-op threads each) over the
  pages: wall pages/s and process CPU s/page. Run it under the bench lock at normal
  priority; it prints the load average before and after, and checks that every page's
  text equals the one cached by ``accuracy`` (when cached).

Usage (from the project root)::

    nice -n 19 .venv/bin/python benchmarks/ocr_sweep.py accuracy [--setting NAME ...]
    flock /tmp/asyncpipe-bench.lock sh -c 'uptime; .venv/bin/python benchmarks/ocr_sweep.py \\
        speed --setting side2000 --setting default --layout 1x1 --layout 2x1; uptime'
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import _root  # noqa: F401  (the project on sys.path)
from accuracy_offline import score_cached, split, summary
from fields_ocr import DEFAULT_DATA, ocr_variant
from ocr_engines import ocr_on_engines

from stages.ocr import RapidOcrEngine

__all__ = [
    "BASELINE",
    "CACHE_DIR",
    "ENGINE_CLASS",
    "SETTINGS",
    "CommaGapEngine",
    "accuracy",
    "engine_options",
    "main",
    "respace_commas",
    "speed",
]

CACHE_DIR = Path("/tmp/ocrsweep-cache")
#: The setting every other is compared with: the engine's default before the sweep.
BASELINE = "side2000"

#: The settings swept: ``RapidOcrEngine`` keyword arguments. rapidocr 3.x defaults:
#: ``Global.max_side_len`` 2000 (the page is shrunk to this first), detector
#: ``limit_type`` min / ``limit_side_len`` 736 (the detector's input is enlarged until its
#: short side is 736: a 460-px-wide receipt is read at 1.6x), ``unclip_ratio`` 1.6,
#: recogniser batch 6.
SETTINGS: dict[str, dict[str, Any]] = {
    # The engine as the app builds it today (max_side_len 1500 since this sweep).
    "default": {},
    # rapidocr's own max_side_len, the app's default before this sweep: the baseline.
    "side2000": {"params": {"Global.max_side_len": 2000}},
    "side1280": {"params": {"Global.max_side_len": 1280}},
    "side1500": {"params": {"Global.max_side_len": 1500}},
    "side2500": {"params": {"Global.max_side_len": 2500}},
    "det_min512": {"params": {"Det.limit_side_len": 512}},
    "det_min960": {"params": {"Det.limit_side_len": 960}},
    "det_native": {"params": {"Det.limit_type": "max", "Det.limit_side_len": 4000}},
    "side1500_min960": {"params": {"Global.max_side_len": 1500, "Det.limit_side_len": 960}},
    "det_max1280": {"params": {"Det.limit_type": "max", "Det.limit_side_len": 1280}},
    "batch1": {"params": {"Rec.rec_batch_num": 1}},
    "batch16": {"params": {"Rec.rec_batch_num": 16}},
    "side1500_batch16": {"params": {"Global.max_side_len": 1500, "Rec.rec_batch_num": 16}},
    "unclip2": {"params": {"Det.unclip_ratio": 2.0}},
    # A prototype, not an engine option: the recogniser's spaces after commas checked
    # against the gap between the characters' boxes (see :func:`comma_gap_engine`).
    "comma_gap": {
        "params": {"Global.return_word_box": True, "Global.return_single_char_box": True}
    },
    "openvino": {
        "params": {
            "Det.engine_type": "openvino",
            "Rec.engine_type": "openvino",
            "EngineConfig.openvino.inference_num_threads": 1,
        }
    },
}


def engine_options(name: str, threads: int = 1) -> dict[str, Any]:
    """
    The engine keyword arguments of one setting with ``threads`` inference threads.

    Args:
        name: a key of :data:`SETTINGS`.
        threads: intra-op threads per engine (onnxruntime or OpenVINO).

    Returns:
        Keyword arguments for :class:`~stages.ocr.RapidOcrEngine`.
    """
    options = dict(SETTINGS[name])
    params = dict(options.get("params", {}))
    if "EngineConfig.openvino.inference_num_threads" in params:
        params["EngineConfig.openvino.inference_num_threads"] = threads
    for key, value in params.items():
        if key.endswith(".engine_type") and isinstance(value, str):
            from rapidocr import EngineType  # rapidocr wants its enum here, not a string

            params[key] = EngineType(value)
    options["params"] = params
    options["intra_op_threads"] = threads
    return options


def respace_commas(text: str, chars: Sequence[Any]) -> str:
    """
    The spaces after commas in one recognised line, decided by the characters' boxes.

    The recogniser often reads ``BAHRU,JOHOR`` as ``BAHRU, JOHOR``; with one box per
    character, a comma whose next character starts within a quarter of the median
    character width loses the space after it, and one followed by a gap of more than
    three quarters of that width gets one.

    Args:
        text: the line as recognised.
        chars: rapidocr's single-character results for that line, ``(char, score, box)``.

    Returns:
        The line, or ``text`` unchanged when the boxes do not match its characters.
    """
    glyphs = [item for item in chars if str(item[0]).strip()]
    if "".join(str(item[0]) for item in glyphs) != text.replace(" ", "") or len(glyphs) < 3:
        return text
    lefts = [min(point[0] for point in item[2]) for item in glyphs]
    rights = [max(point[0] for point in item[2]) for item in glyphs]
    width = sorted(r - left for left, r in zip(lefts, rights, strict=True))[len(glyphs) // 2]
    out: list[str] = []
    index = -1
    for position, char in enumerate(text):
        if char == " ":
            previous = out[-1] if out else ""
            gap = lefts[index + 1] - rights[index] if index + 1 < len(glyphs) else width
            if previous == "," and gap < 0.25 * width:
                continue
            if not out or out[-1] == " ":
                continue
            out.append(char)
            continue
        index += 1
        out.append(char)
        following = text[position + 1] if position + 1 < len(text) else " "
        if (
            char == ","
            and following != " "
            and index + 1 < len(glyphs)
            and lefts[index + 1] - rights[index] > 0.75 * width
        ):
            out.append(" ")
    return "".join(out)


class CommaGapEngine(RapidOcrEngine):
    """The document app's engine with :func:`respace_commas` applied to its lines."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        inner = self._ocr

        def call(image: Any) -> Any:
            result = inner(image)
            texts = getattr(result, "txts", None)
            words = getattr(result, "word_results", None)
            if texts is not None and words is not None and len(words) == len(texts):
                result.txts = tuple(
                    respace_commas(str(text), chars) if chars else str(text)
                    for text, chars in zip(texts, words, strict=True)
                )
            return result

        self._ocr = call


#: Settings read by another engine class than the app's.
ENGINE_CLASS: dict[str, type[RapidOcrEngine]] = {"comma_gap": CommaGapEngine}


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def accuracy(data: Path, names: Sequence[str], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """
    Read (or take from the cache) every receipt under each setting; print the table.

    Args:
        data: the SROIE folder.
        names: keys of :data:`SETTINGS`.
        cache_dir: the OCR cache folder.

    Returns:
        ``{setting: {"dev": summary, "held": summary, "cpu_s_per_page": float}}``.
    """
    images = sorted((data / "img").glob("*.jpg"))
    stems = [image.stem for image in images]
    halves = split(stems)
    rows: dict[str, dict[str, Any]] = {}
    # The baseline of every table (read once, then cached): rapidocr's own 2000.
    for name in [BASELINE, *(name for name in names if name != BASELINE)]:
        make = ENGINE_CLASS.get(name, RapidOcrEngine)
        cached = ocr_variant(images, name, cache_dir, options=engine_options(name), make=make)
        scores = dict(zip(stems, score_cached(data, cached, stems), strict=True))
        row: dict[str, Any] = {
            half: summary([scores[stem] for stem in halves[half]]) for half in ("dev", "held")
        }
        cpu = [cached[stem].get("cpu_seconds") for stem in stems]
        row["cpu_s_per_page"] = sum(cpu) / len(cpu) if None not in cpu else float("nan")
        rows[name] = row
    base = rows.get(BASELINE)
    print(
        f"\n{len(images)} SROIE receipts; 1 engine x 1 thread; held-out = odd positions "
        f"({halves['held'][0]}, {halves['held'][1]}, ... {halves['held'][-1]}); fields: "
        "exact matches on the held-out half (development half)\n"
    )
    print(
        "| setting | char acc held-out (dev) | company | date | address | total "
        f"| CPU s/page | vs {BASELINE} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        held, dev = row["held"], row["dev"]
        fields = [
            f"{round(held[f] * held[f'{f}_n'])}/{int(held[f'{f}_n'])} "
            f"({round(dev[f] * dev[f'{f}_n'])}/{int(dev[f'{f}_n'])})"
            for f in ("company", "date", "address", "total")
        ]
        ratio = row["cpu_s_per_page"] / base["cpu_s_per_page"] if base else float("nan")
        print(
            f"| {name} | {held['ocr']:.4f} ({dev['ocr']:.4f}) | "
            + " | ".join(fields)
            + f" | {row['cpu_s_per_page']:.2f} | {ratio:.2f} |"
        )
    print(f"load average now: {_load()}")
    return rows


def _text(lines: Sequence[Any]) -> str:
    return "\n".join(getattr(line, "text", None) or line["text"] for line in lines)


def speed(
    data: Path,
    names: Sequence[str],
    layouts: Sequence[tuple[int, int]],
    limit: int,
    cache_dir: Path,
) -> list[dict[str, Any]]:
    """
    Time each setting at each ``(engines, threads)`` layout on ``limit`` receipts.

    Args:
        data: the SROIE folder.
        names: keys of :data:`SETTINGS`.
        layouts: ``(engines, intra-op threads per engine)`` pairs.
        limit: how many receipts (evenly spread over the sorted names).
        cache_dir: where ``accuracy`` cached the texts to compare with.

    Returns:
        One row per setting and layout.
    """
    from stages.inputs import discover, load_page
    from stages.ocr import ocr_page
    from stages.preprocess import PreprocessOptions, preprocess

    images = sorted((data / "img").glob("*.jpg"))
    step = max(1, len(images) // max(1, limit))
    picked = images[::step][:limit]
    pages = [
        preprocess(load_page(next(iter(discover([image])))), PreprocessOptions())
        for image in picked
    ]
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{len(pages)} receipts: {', '.join(image.stem for image in picked)}")
    print(f"load average before: {_load()}  ({os.cpu_count()} cores)", flush=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        cache_file = cache_dir / f"ocr-{name}.json"
        cached: Mapping[str, Any] = (
            json.loads(cache_file.read_text()) if cache_file.exists() else {}
        )
        for engines_n, threads in layouts:
            make = ENGINE_CLASS.get(name, RapidOcrEngine)
            engines = [make(**engine_options(name, threads)) for _ in range(engines_n)]
            for engine in engines:  # warm-up: first-call allocations are not timed
                ocr_page(engine, copy.copy(pages[0]))
            texts, wall, cpu = _timed(engines, pages)
            for engine in engines:
                engine.close()
            same = sum(
                _text(cached[stem]["lines"]) == text
                for stem, text in texts.items()
                if stem in cached
            )
            row = {
                "setting": name,
                "engines": engines_n,
                "threads": threads,
                "pages_per_s": len(pages) / wall,
                "cpu_s_per_page": cpu / len(pages),
                "same_text": f"{same}/{sum(stem in cached for stem in texts)}",
                "load": _load(),
            }
            rows.append(row)
            print(
                f"  {name} {engines_n}x{threads}: {row['pages_per_s']:.3f} pages/s, "
                f"{row['cpu_s_per_page']:.2f} CPU s/page, text as cached {row['same_text']}, "
                f"load {row['load']}",
                flush=True,
            )
    print("\n| setting | engines x threads | pages/s | CPU s/page | text = accuracy run |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['setting']} | {row['engines']}x{row['threads']} | "
            f"{row['pages_per_s']:.3f} | {row['cpu_s_per_page']:.2f} | {row['same_text']} |"
        )
    print(f"load average after: {_load()}")
    return rows


def _timed(engines: Sequence[Any], pages: Sequence[Any]) -> tuple[dict[str, str], float, float]:
    """OCR the pages on one thread per engine; return texts, wall s and process CPU s."""
    wall, cpu = time.perf_counter(), time.process_time()
    texts = ocr_on_engines(engines, pages)
    return texts, time.perf_counter() - wall, time.process_time() - cpu


def _layout(text: str) -> tuple[int, int]:
    engines, _, threads = text.partition("x")
    return int(engines), int(threads or 1)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Command-line entry point (see the module docstring).

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("what", choices=("accuracy", "speed"))
    parser.add_argument("--setting", action="append", choices=sorted(SETTINGS))
    parser.add_argument(
        "--layout", action="append", type=_layout, help="ENGINESxTHREADS (speed); default 1x1"
    )
    parser.add_argument("--limit", type=int, default=8, help="receipts timed by speed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    if not sorted((args.data / "img").glob("*.jpg")):
        parser.error(f"no receipts in {args.data / 'img'}")
    if args.what == "accuracy":
        accuracy(args.data, args.setting or list(SETTINGS), args.cache_dir)
    else:
        layouts = args.layout or [(1, 1)]
        speed(args.data, args.setting or ["default"], layouts, args.limit, args.cache_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
