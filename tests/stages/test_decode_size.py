from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages._page import PageRef
from stages.ocr import RAPIDOCR_MAX_SIDE, rapidocr_max_side
from stages.pipeline import DocumentSettings, build_pipeline, engine_max_side

A4_600DPI = (4961, 7016)


def _a4_scan(path: Path) -> Path:
    """A 600-dpi A4 JPEG: white, with a black band so it is not blank."""
    pixels = np.full((A4_600DPI[1], A4_600DPI[0], 3), 255, dtype=np.uint8)
    pixels[3000:3200, 1000:4000] = 0
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


class TestEngineMaxSide:
    """The size pages are decoded at follows the OCR engine's working size."""

    def test_rapidocr_default_and_override(self) -> None:
        """rapidocr works at its max_side_len: 1500 by default, else what params say."""
        assert RAPIDOCR_MAX_SIDE == 1500
        assert rapidocr_max_side() == 1500
        assert engine_max_side("rapidocr", {}) == 1500
        params = {"params": {"Global.max_side_len": 2000}}
        assert engine_max_side("rapidocr", params) == 2000
        assert engine_max_side("paddle", {}) is None

    def test_pipeline_decodes_a4_at_a_quarter(self, tmp_path: Path) -> None:
        """The default load stage decodes a 600-dpi A4 JPEG at libjpeg's 1/4 scale."""
        path = _a4_scan(tmp_path / "a4.jpg")
        ref = PageRef(id="a4", source=str(path), page=1, kind="jpeg")
        load = build_pipeline(DocumentSettings(malloc_tuning=False)).stages[0]
        assert load.name == "load"
        page = load.fn(ref)
        assert page.image.shape == (1754, 1241, 3)  # >= 1500 on the long side, 1/4 scale
        assert page.scale == pytest.approx(1241 / 4961)
        options = {"params": {"Global.max_side_len": 2000}}
        wider = build_pipeline(DocumentSettings(ocr_options=options, malloc_tuning=False))
        assert wider.stages[0].fn(ref).image.shape == (3508, 2481, 3)  # 1/2: 1/4 < 2000
