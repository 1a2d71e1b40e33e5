"""
What one OCR call costs in memory, under each allocator knob, on an A4 scan or a receipt.

One rapidocr engine (the pipeline's options) reads one page three times: ``--page a4``
(the default), an A4 scan of ``soak.py``, or ``--page receipt``, the first of its small
receipts (463x1026); each decoded the pipeline's way (at the engine's working size: an A4
scan at libjpeg's 1/4 scale, 1241x1754).  A thread samples the resident memory every
20 ms.  Each variant runs in a fresh process:

    default: what the pipeline does now: glibc tuned (`stages._malloc.tune_malloc`, 2
        arenas, and `release_memory` after each call), onnxruntime's memory pattern on,
        its CPU arena off (rapidocr's default).
    untuned: glibc's default malloc.
    mmap_1mb: tuned, and every block of 1 MB or more mapped on its own
        (``M_MMAP_THRESHOLD``), the first fix tried.
    arena: onnxruntime's CPU memory arena on (it grows to the largest input and keeps it).
    no_pattern: onnxruntime's memory pattern off (tensors allocated one by one).
    no_trim: tuned (2 arenas) but no ``release_memory`` after the calls.

It prints the resident memory before the calls, the peak during them, the transient
(their difference), the CPU seconds (user + system) of the 2nd and 3rd calls (the 1st
warms up) and the resident memory after the last.

    python benchmarks/ocr_memory.py --data /work/shared/data/sroie
    python benchmarks/ocr_memory.py --data ... --page receipt --variants default
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
from pathlib import Path
from typing import Any

__all__ = ["VARIANTS", "main"]

#: variant -> (tune malloc, memory pattern, CPU arena)
VARIANTS: dict[str, tuple[bool, bool, bool]] = {
    "default": (True, True, False),
    "untuned": (False, True, False),
    "mmap_1mb": (True, True, False),
    "arena": (True, True, True),
    "no_pattern": (True, False, False),
    "no_trim": (True, True, False),
}


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def child(data: Path, cache: Path, variant: str, which: str) -> None:
    """
    Measure one variant in this process and print a JSON line.
    """
    tuned, pattern, arena = VARIANTS[variant]
    from stages._malloc import release_memory, tune_malloc

    if tuned and not tune_malloc():
        raise SystemExit("malloc tuning not applied (not glibc, or switched off)")
    if variant == "mmap_1mb":
        import ctypes

        ctypes.CDLL(None).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    from rapidocr.inference_engine.onnxruntime import main as ort_main

    options = ort_main.OrtInferSession._init_sess_opts

    def session_options(cfg: Any) -> Any:
        made = options(cfg)
        made.enable_mem_pattern = pattern
        return made

    ort_main.OrtInferSession._init_sess_opts = staticmethod(session_options)  # type: ignore[method-assign]

    from soak import make_corpus

    from stages._page import PageRef
    from stages.inputs import load_page
    from stages.ocr import make_engine
    from stages.pipeline import engine_max_side

    large, small = make_corpus(data, cache)
    engine = make_engine(
        "rapidocr", params={"EngineConfig.onnxruntime.enable_cpu_mem_arena": arena}
    )
    source = large[0] if which == "a4" else small[0]
    ref = PageRef(id=which, source=str(source), page=1, kind="jpeg")
    page = load_page(ref, max_side=engine_max_side("rapidocr", {}))
    assert page.image is not None
    before = _rss_mb()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = []
    for _ in range(3):
        started = time.process_time()
        lines = engine.recognize(page.image)
        if variant != "no_trim":
            release_memory()
        cpu.append(time.process_time() - started)
    stop.set()
    sampler.join()
    print(
        json.dumps(
            {
                "variant": variant,
                "page": which,
                "shape": list(page.image.shape),
                "lines": len(lines),
                "before_mb": round(before),
                "peak_mb": round(max(peak[0], resource.getrusage(0).ru_maxrss / 1024)),
                "transient_mb": round(peak[0] - before),
                "cpu_s": round((cpu[1] + cpu[2]) / 2, 2),
                "after_mb": round(_rss_mb()),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    """
    Run every variant in a fresh process and print one JSON line each.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("ASYNCPIPE_SROIE"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/asyncpipe-soak"))
    parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--page", choices=("a4", "receipt"), default="a4")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data (the SROIE folder) or set ASYNCPIPE_SROIE")
    if args.child:
        child(args.data, args.cache, args.child, args.page)
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("ASYNCPIPE_MALLOC_TUNING", None)
    for variant in args.variants:
        command = [sys.executable, __file__, "--data", str(args.data), "--cache", str(args.cache)]
        command += ["--page", args.page]
        done = subprocess.run(
            [*command, "--child", variant], capture_output=True, text=True, check=False, env=env
        )
        if done.returncode != 0:
            raise SystemExit(f"{variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here.parent), str(here)]
    raise SystemExit(main())
