"""
Memory soak: peak RSS of the document pipeline over large and small scans, at 1x and 4x
the items (issue 11, point 5).

The large pages are 600-dpi A4 scans, 4961x7016 pixels (about 100 MB each once decoded),
made by enlarging a shared SROIE receipt onto a white A4 canvas; the small ones are the
receipts themselves.  The corpus takes them two by two (half the pages are large, a harsher mix
than the unseen receipts, where a quarter are) and cycles them to the item count.  Each run
is a fresh child process running the default document pipeline (default workers, offline
text stages, ordered output dropped), so its peak RSS is that run's alone: the child's
``VmHWM``, read from ``/proc/self/status`` before it exits (`peak_rss_mb`; its
``ru_maxrss`` would not do, as Linux carries the parent's peak over to a child started by
``subprocess``: 1035 MB in a child whose own peak was 10 MB).

The default 1x is 48 pages: each of the 8 distinct pages (4 A4 scans, 4 receipts) six
times, and 4x (192 pages) 24 times.  1x must be at least twice the decoded pages the
pipeline can hold at once (`pages_in_flight`: one per load, preprocess and OCR worker
plus the two queues of ``max_buffer_size`` in front of preprocess and OCR, 22 with the
defaults).  Below that, the 1x run's queues drain while its first window of OCR pages
is still running, while the 4x run's stay full through it, so the growth to 4x measures
the queues being full, which the pixel and count bounds allow by design, instead of what
the item count adds.  (The 8 / 32 pages of rounds 3-4 were below even the pages in
flight: their growth, 1.05-1.13, was that fill. At 24 / 96, round 5, the 4x peak still
sat in the 4x run's first window, 1023-1071 MB against 907-941 MB in its later windows,
and the 1x peak was 954-966 MB: growth 1.067-1.124.  At 48 / 192 both runs peak in the
same place, at their start, with both OCR workers on A4 scans and the queues filling.)
Growth then measures what repeating pages adds, which is the question (does memory
follow the item count or the pages in flight?), and not the warm-up of a run that has
not yet met its largest pages or filled its queues.  The peak is still the maximum of a
noisy process (it is highest when both OCR workers detect text on A4 scans at the same
moment); each run also prints its resident memory at the end, after the pages are gone,
which is what a leak would raise.

Configs:
    default: the defaults: JPEGs over 20 Mpx decoded at the OCR engine's working size
        (rapidocr's ``max_side_len``, 1500 px on the long side: an A4 scan at libjpeg's 1/4
        scale, 1241x1754), other pages at >= 2000 px, the queues in front of preprocess
        and OCR bounded by bytes of pixels as well as by count, and glibc malloc tuned by
        the pipeline
        (``stages/_malloc.py``: 2 arenas, and the free heap pages given back to the
        system after every 4th OCR page), the child started as ``asyncpipe run`` starts
        (`stages._malloc.start_environment`: malloc's heaps on transparent huge pages).
    trim_each: the previous default: as ``default``, the free heap pages given back
        after every OCR page.
    plain_malloc: as ``default``, on glibc's 4 KiB pages.
    trim_above_1g: as ``default``, the free heap pages given back only after an OCR page
        that leaves the process over 1 GiB resident.
    no_trim: as ``default`` (2 arenas, huge pages) but the free heap pages are never given
        back.
    decode2000: the previous default: as ``default`` but decoded at >= 2000 px (an A4
        scan at 1/2 scale, 2481x3508).
    untuned: as ``decode2000`` without the malloc tuning.
    unbounded: the first behaviour: full-size decoding, queues bounded by count only,
        malloc untuned.
    The levers tried on the default (none adopted; figures in benchmarks/README.md):
    no_pattern (onnxruntime memory pattern off), rec_batch1 (rapidocr ``rec_batch_num``
    1), arenas1 (1 malloc arena), trim_det (``malloc_trim`` also between detection and
    recognition), det_gate (one detection at a time across workers), det_gate_batch1,
    queue16 (16 MB of pixels per queue), buffer2 (2 items per queue).

``--format png|tiff|pdf`` writes the large pages in that format instead of JPEG (a PNG
each, one multi-page LZW TIFF, one multi-page PDF with 4961x7016 pt pages), generated at
run time from the shared receipts into ``--cache``.  ``--trace DIR`` writes each run's
resident memory every 20 ms with the pages in OCR at that moment; each child's JSON line
also gives the highest and lowest memory per window of ``--items`` OCR pages (a creep
raises the later windows; a coincidence peaks anywhere).

Goals: peak(4x) / peak(1x) <= 1.10 and peak < 2.0 GB for ``default``.  Each child also
prints its CPU seconds per page (user + system), to check the tuning costs no speed.

    python benchmarks/soak.py --data /work/shared/data/sroie
    python benchmarks/soak.py --data ... --config untuned   # the contrast

The A4 scans are written once to ``--cache`` (default ``/tmp/asyncpipe-soak``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stages._page import PageRef

__all__ = ["main", "make_corpus", "page_refs", "pages_in_flight", "peak_rss_mb"]

A4_600DPI = (4961, 7016)  # width, height in pixels
GOAL_GROWTH = 1.10
GOAL_PEAK_GB = 2.0

# DocumentSettings per config (see the module docstring).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "plain_malloc": {"_plain_malloc": True},
    "trim_above_1g": {"trim_above": 1 << 30},
    "no_trim": {"trim_above": 1 << 62},
    "trim_each": {"trim_every": 1},
    "decode2000": {"decode_max_side": 2000},
    "untuned": {"malloc_tuning": False, "decode_max_side": 2000},
    "unbounded": {"malloc_tuning": False, "decode_max_side": None, "max_queue_bytes": 1 << 50},
    # The levers tried on top of the default (keys starting with "_" are the soak's own).
    "no_pattern": {"_mem_pattern": False},
    "rec_batch1": {"ocr_options": {"params": {"Rec.rec_batch_num": 1}}},
    "arenas1": {"_arenas": 1},
    "queue16": {"max_queue_bytes": 16 << 20},
    "buffer2": {"max_buffer_size": 2},
    "trim_det": {"_trim_after_det": True},
    "det_gate": {"_det_gate": 1},
    "det_gate_batch1": {"_det_gate": 1, "ocr_options": {"params": {"Rec.rec_batch_num": 1}}},
}


def pages_in_flight(settings: Any) -> int:
    """
    The most decoded pages the document pipeline built from ``settings`` holds at once:
    one in each load, preprocess and OCR worker, and ``max_buffer_size`` in each of the
    queues in front of preprocess and OCR (their pixel bound only lowers that).
    """
    workers = sum(settings.workers_for(stage) for stage in ("load", "preprocess", "ocr"))
    return workers + 2 * int(settings.max_buffer_size)


def _apply_private(options: dict[str, Any]) -> dict[str, Any]:
    """
    Apply the soak's own knobs (``_arenas``, ``_mem_pattern``) and return the settings.
    """
    options = dict(options)
    options.pop("_plain_malloc", None)  # applied by `run_child`, to the child's environment
    arenas = options.pop("_arenas", None)
    if arenas is not None:
        import stages._malloc

        stages._malloc.MALLOC_ARENA_MAX = arenas
    pattern = options.pop("_mem_pattern", None)
    if pattern is not None:
        from rapidocr.inference_engine.onnxruntime import main as ort_main

        made = ort_main.OrtInferSession._init_sess_opts

        def session_options(cfg: Any) -> Any:
            opts = made(cfg)
            opts.enable_mem_pattern = pattern
            return opts

        ort_main.OrtInferSession._init_sess_opts = staticmethod(session_options)
    if options.pop("_trim_after_det", False):
        from rapidocr.ch_ppocr_det import TextDetector

        from stages._malloc import release_memory

        plain = TextDetector.__call__

        def trimmed(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return plain(self, *args, **kwargs)
            finally:
                release_memory()

        TextDetector.__call__ = trimmed  # type: ignore[method-assign]
    gate = options.pop("_det_gate", None)
    if gate is not None:
        from rapidocr.ch_ppocr_det import TextDetector

        detect = TextDetector.__call__
        semaphore = threading.Semaphore(gate)

        def gated(self: Any, *args: Any, **kwargs: Any) -> Any:
            with semaphore:
                return detect(self, *args, **kwargs)

        TextDetector.__call__ = gated  # type: ignore[method-assign]
    return options


def make_a4(receipt: Path, out: Path) -> None:
    """
    Write a 600-dpi A4 scan of ``receipt``: enlarged to 90% of the page height, centred
    on white, saved as a quality-90 JPEG.
    """
    from PIL import Image

    with Image.open(receipt) as opened:
        small = opened.convert("RGB")
    width, height = A4_600DPI
    ratio = min(0.9 * height / small.height, 0.9 * width / small.width)
    big = small.resize((round(small.width * ratio), round(small.height * ratio)))
    canvas = Image.new("RGB", A4_600DPI, (255, 255, 255))
    canvas.paste(big, ((width - big.width) // 2, (height - big.height) // 2))
    canvas.save(out, "JPEG", quality=90)


def make_corpus(data: Path, cache: Path, kinds: int = 4) -> tuple[list[Path], list[Path]]:
    """
    The large pages (600-dpi A4 scans of ``kinds`` receipts, written once to ``cache``) and
    the small ones (``kinds`` other receipts).
    """
    receipts = sorted((data / "img").glob("*.jpg"))
    if len(receipts) < 2 * kinds:
        raise SystemExit(f"need {2 * kinds} receipts in {data / 'img'}, found {len(receipts)}")
    a4_dir = cache / "a4"
    a4_dir.mkdir(parents=True, exist_ok=True)
    large = []
    for receipt in receipts[:kinds]:
        out = a4_dir / f"a4-{receipt.stem}.jpg"
        if not out.exists():
            make_a4(receipt, out)
        large.append(out)
    return large, receipts[kinds : 2 * kinds]


#: The formats the large pages can come in (``--format``).
FORMATS = ("jpeg", "png", "tiff", "pdf")


def large_pages(large: list[Path], fmt: str, cache: Path) -> list[tuple[Path, str, int]]:
    """
    The A4 scans as ``(file, kind, page)`` in format ``fmt``, written once to ``cache``:
    ``jpeg`` the scans themselves; ``png`` one PNG each; ``tiff`` one multi-page LZW TIFF
    holding them all; ``pdf`` one PDF holding them all, each page sized in points like
    the scan in pixels (4961x7016 pt: the image at 72 dpi, as image-to-PDF tools write a
    scan whose resolution they do not know), so 600-dpi-sized pages.
    """
    if fmt == "jpeg":
        return [(path, "jpeg", 1) for path in large]
    from PIL import Image

    out_dir = cache / fmt
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        pages = []
        for path in large:
            out = out_dir / f"{path.stem}.png"
            if not out.exists():
                with Image.open(path) as image:
                    image.save(out, "PNG")
            pages.append((out, "png", 1))
        return pages
    out = out_dir / f"a4-{len(large)}.{'tif' if fmt == 'tiff' else 'pdf'}"
    if not out.exists():
        images = [Image.open(path) for path in large]
        try:
            if fmt == "tiff":
                options: dict[str, Any] = {"compression": "tiff_lzw"}
            else:
                options = {"resolution": 72.0}
            images[0].save(out, fmt.upper(), save_all=True, append_images=images[1:], **options)
        finally:
            for image in images:
                image.close()
    return [(out, fmt, number + 1) for number in range(len(large))]


def page_refs(
    large: list[Path], small: list[Path], items: int, fmt: str = "jpeg", cache: Path | None = None
) -> Iterator[PageRef]:
    """
    ``items`` pages, two large then two small, cycling each list; every page gets its own
    id (discovery would fold repeats of one file into one page).

    Large pages come in pairs so that both OCR workers meet A4 scans at the same moment in
    every run, 1x included: that moment is the pipeline's worst (each rapidocr call on an
    A4 page needs ~500 MB), and a 1x run that happened to miss it would make the growth
    ratio measure luck, not what the item count adds.
    """
    from stages._page import PageRef

    big = large_pages(large, fmt, cache or Path("/tmp/asyncpipe-soak"))
    little = [(path, "jpeg", 1) for path in small]
    for index in range(items):
        pool = big if (index // 2) % 2 == 0 else little
        path, kind, page = pool[(index // 4 * 2 + index % 2) % len(pool)]
        name = (
            f"{path.stem}p{page}{path.suffix}" if page > 1 or kind in ("tiff", "pdf") else path.name
        )
        yield PageRef(id=f"{index:05d}-{name}", source=str(path), page=page, kind=kind)


class Tracer:
    """
    The resident memory every 20 ms, and which pages the OCR workers hold at that moment.

    It answers where the peak comes from: a slow creep (the lowest memory between pages
    rising with the pages seen: fragmentation, per-shape plans, caches) or a coincidence
    (the peak is the moment both OCR workers hold their costliest pages, at any point of
    the run).  ``report`` gives, per window of ``window`` OCR pages, the highest and the
    lowest resident memory, and what was in OCR at the peak.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.samples: list[tuple[float, float, int, list[str]]] = []
        self._lock = threading.Lock()
        self._active: dict[int, str] = {}
        self._done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._started = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """
        ``fn`` (the OCR stage's function) recording the page it holds while it runs.
        """

        def traced(*args: Any) -> Any:
            page = args[-1]
            shape = getattr(page.image, "shape", (0, 0))
            label = f"{page.ref.id.split('-', 1)[1]}:{shape[1]}x{shape[0]}"
            key = threading.get_ident()
            with self._lock:
                self._active[key] = label
            try:
                return fn(*args)
            finally:
                with self._lock:
                    del self._active[key]
                    self._done += 1

        return traced

    def start(self) -> None:
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _resident_mb() or 0.0
            with self._lock:
                state = (self._done, sorted(self._active.values()))
            self.samples.append((round(time.perf_counter() - self._started, 2), rss, *state))
            self._stop.wait(0.02)

    def report(self) -> dict[str, Any]:
        """
        Per window of OCR pages: the highest and lowest resident memory (MB); the peak's
        window and the pages in OCR at that moment.
        """
        if not self.samples:
            return {}
        highs: dict[int, float] = {}
        lows: dict[int, float] = {}
        for _, rss, done, _active in self.samples:
            slot = done // self.window
            highs[slot] = max(highs.get(slot, 0.0), rss)
            lows[slot] = min(lows.get(slot, rss), rss)
        peak = max(self.samples, key=lambda sample: sample[1])
        return {
            "window_high_mb": [round(highs[k]) for k in sorted(highs)],
            "window_low_mb": [round(lows[k]) for k in sorted(lows)],
            "peak_sampled_mb": round(peak[1]),
            "peak_after_pages": peak[2],
            "in_ocr_at_peak": peak[3],
        }


def child(
    data: Path, cache: Path, items: int, config: str, window: int, trace: Path | None, fmt: str
) -> None:
    """
    Run the default document pipeline over ``items`` pages and print a JSON line with the
    peak RSS and the counts (runs in its own process).
    """
    import anyio

    from stages.pipeline import DocumentSettings, build_pipeline

    settings = DocumentSettings(**_apply_private(CONFIGS[config]))
    pipeline = build_pipeline(settings)
    tracer = Tracer(window)
    pipeline.stages = [
        stage.replace(fn=tracer.wrap(stage.fn)) if stage.name == "ocr" else stage
        for stage in pipeline.stages
    ]
    started = time.perf_counter()
    large, small = make_corpus(data, cache)
    refs = list(page_refs(large, small, items, fmt, cache))
    tracer.start()
    summary = anyio.run(lambda: pipeline.run(refs, ordered=True))
    tracer.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pages = max(summary.ok + summary.failed, 1)
    if trace is not None:
        trace.write_text(json.dumps(tracer.samples))
    print(
        json.dumps(
            {
                **tracer.report(),
                "config": config,
                "format": fmt,
                "items": summary.ok + summary.failed,
                "ok": summary.ok,
                "failed": summary.failed,
                "seconds": round(time.perf_counter() - started, 1),
                "cpu_s_per_page": round((usage.ru_utime + usage.ru_stime) / pages, 2),
                "peak_rss_mb": peak_rss_mb(),
                "end_rss_mb": _resident_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """
    This process's peak resident set in MB: ``VmHWM``, which belongs to its own address
    space.  Off Linux, ``ru_maxrss`` (which on Linux includes the peak of the parent that
    started the process, so it is not used there).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _resident_mb() -> float | None:
    """
    The resident memory now, in MB (Linux ``/proc``; ``None`` elsewhere).
    """
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20), 1)


def run_child(
    data: Path, cache: Path, items: int, config: str, window: int, trace: Path | None, fmt: str
) -> dict[str, Any]:
    """
    Run `child` in a fresh interpreter and return its JSON line.
    """
    command = [sys.executable, __file__, "--child", "--data", str(data), "--cache", str(cache)]
    command += ["--items", str(items), "--config", config, "--window", str(window)]
    command += ["--format", fmt]
    if trace is not None:
        command += ["--trace", str(trace / f"trace-{config}-{fmt}-{items}.json")]
    from stages._malloc import start_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    options = CONFIGS[config]
    if options.get("malloc_tuning", True) and not options.get("_plain_malloc"):
        env.update(start_environment())
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"soak child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """
    Run the soak at 1x and 4x the items and print the peak RSS, the growth and the goals.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=os.environ.get("ASYNCPIPE_SROIE"),
        help="the SROIE folder (default $ASYNCPIPE_SROIE)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/asyncpipe-soak"),
        help="where the A4 scans made from the receipts are kept between runs "
        "(default /tmp/asyncpipe-soak)",
    )
    parser.add_argument("--items", type=int, default=48, help="pages at 1x (default 48)")
    parser.add_argument(
        "--config",
        choices=sorted(CONFIGS),
        default="default",
        metavar="NAME",
        help="a memory setting to try in place of the shipped one (default); each is "
        f"described in this script's docstring: {', '.join(sorted(CONFIGS))}",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="jpeg", help="the large pages' format (default jpeg)"
    )
    parser.add_argument("--trace", type=Path, help="write each run's RSS trace (JSON) here")
    parser.add_argument("--window", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    if args.child:
        child(args.data, args.cache, args.items, args.config, args.window, args.trace, args.format)
        return 0
    from stages.pipeline import DocumentSettings

    public = {k: v for k, v in CONFIGS[args.config].items() if not k.startswith("_")}
    held = pages_in_flight(DocumentSettings(**public))
    if args.items < 2 * held:
        print(
            f"warning: 1x = {args.items} pages is less than twice the {held} decoded pages "
            f"the pipeline can hold, so the growth measures its queues filling",
            flush=True,
        )
    large, _ = make_corpus(args.data, args.cache)
    large_pages(large, args.format, args.cache)
    rows = []
    for factor in (1, 4):
        items = args.items * factor
        row = run_child(
            args.data, args.cache, items, args.config, args.items, args.trace, args.format
        )
        row["load"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    growth = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    peak_gb = max(r["peak_rss_mb"] for r in rows) / 1024
    growth_ok = growth <= GOAL_GROWTH
    peak_ok = peak_gb < GOAL_PEAK_GB
    print(
        f"config={args.config} items={args.items}/{4 * args.items} "
        f"(half 600-dpi A4 {args.format.upper()}) "
        f"peak_rss={rows[0]['peak_rss_mb']:.0f}/{rows[1]['peak_rss_mb']:.0f} MB "
        f"end_rss={rows[0]['end_rss_mb']}/{rows[1]['end_rss_mb']} MB "
        f"cpu_s_per_page={rows[0]['cpu_s_per_page']}/{rows[1]['cpu_s_per_page']} "
        f"load={os.getloadavg()[0]:.2f}"
    )
    print(f"growth {growth:.3f} (goal <= {GOAL_GROWTH}): {'PASS' if growth_ok else 'FAIL'}")
    print(f"peak {peak_gb:.2f} GB (goal < {GOAL_PEAK_GB}): {'PASS' if peak_ok else 'FAIL'}")
    return 0 if growth_ok and peak_ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
