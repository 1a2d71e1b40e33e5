"""
An OCR bound independent of the pipeline runs it judges (issue 11, point 1).

The bare rapidocr engine, without asyncpipe, OCRs the same pages (decoded as the pipeline
decodes them, before the clock starts) two ways:

- 1 engine on 1 thread: the physical reference; ``cores`` times its rate is what the
  cores could do if nothing were lost;
- ``cores`` engines in a plain ``ThreadPoolExecutor`` (one engine per thread): what a
  careful user writes by hand.

The pipeline's OCR-bound pages/s are then divided by each (goal: >= 0.95 of the
hand-written rate).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stages.inputs import load_page
from stages.ocr import make_engine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from stages._page import PageRef

__all__ = ["OcrReference", "measure_ocr_reference", "pipeline_vs_reference"]

#: The longest side the pipeline decodes at for rapidocr (`stages.pipeline`'s default).
DECODE_MAX_SIDE = 2000


@dataclass(frozen=True)
class OcrReference:
    """
    The bare engine's rates on this machine, in this run.

    Attributes:
        pages: pages OCRed by each way.
        cores: engines in the hand-written pool.
        single_pages_per_s: 1 engine, 1 thread.
        hand_pages_per_s: ``cores`` engines in a ``ThreadPoolExecutor``.
    """

    pages: int
    cores: int
    single_pages_per_s: float
    hand_pages_per_s: float

    @property
    def physical_pages_per_s(self) -> float:
        """``cores`` times the single-thread rate."""
        return self.cores * self.single_pages_per_s

    def to_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "cores": self.cores,
            "single_pages_per_s": self.single_pages_per_s,
            "hand_pages_per_s": self.hand_pages_per_s,
            "physical_pages_per_s": self.physical_pages_per_s,
            "hand_vs_physical": self.hand_pages_per_s / self.physical_pages_per_s,
        }


def measure_ocr_reference(refs: Sequence[PageRef], cores: int) -> OcrReference:
    """
    Time the bare engine over ``refs`` both ways (engines are built before the clock).
    """
    images = [load_page(ref, max_side=DECODE_MAX_SIDE).image for ref in refs]
    pixels: list[npt.NDArray[np.uint8]] = [image for image in images if image is not None]
    engine = make_engine("rapidocr")
    started = time.perf_counter()
    for image in pixels:
        engine.recognize(image)
    single = len(pixels) / (time.perf_counter() - started)
    engine.close()

    engines = [make_engine("rapidocr") for _ in range(cores)]
    free = list(engines)
    lock = threading.Lock()
    local = threading.local()

    def ocr(image: npt.NDArray[np.uint8]) -> int:
        if not hasattr(local, "engine"):
            with lock:
                local.engine = free.pop()
        return len(local.engine.recognize(image))

    with ThreadPoolExecutor(cores) as pool:
        started = time.perf_counter()
        list(pool.map(ocr, pixels))
        hand = len(pixels) / (time.perf_counter() - started)
    for each in engines:
        each.close()
    return OcrReference(len(pixels), cores, single, hand)


def pipeline_vs_reference(
    rows: Sequence[Mapping[str, Any]], reference: OcrReference
) -> dict[str, Any] | None:
    """
    The fastest OCR-bound asyncpipe run (its bound's limiter is ``ocr``) against the
    reference: its pages/s divided by the hand-written and by the physical rate.
    """
    runs = [
        r
        for r in rows
        if r["name"] == "asyncpipe" and r.get("limiter") == "ocr" and not r.get("rate")
    ]
    if not runs:
        return None
    best = max(runs, key=lambda r: r["items_per_s"])
    return {
        "config": best["config"],
        "items": best["items"],
        "pages_per_s": best["items_per_s"],
        "vs_hand": best["items_per_s"] / reference.hand_pages_per_s,
        "vs_physical": best["items_per_s"] / reference.physical_pages_per_s,
    }
