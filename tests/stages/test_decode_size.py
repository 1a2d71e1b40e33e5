from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from corpus import blank_pdf
from PIL import Image

from stages._page import PageRef
from stages.ocr import RAPIDOCR_MAX_SIDE, rapidocr_max_side
from stages.pipeline import (
    LARGE_PAGE_PIXELS,
    DocumentSettings,
    build_pipeline,
    engine_max_side,
    page_loader,
)

A4_600DPI = (4961, 7016)


def _a4_scan(path: Path) -> Path:
    """A 600-dpi A4 JPEG: white, with a black band so it is not blank."""
    pixels = np.full((A4_600DPI[1], A4_600DPI[0], 3), 255, dtype=np.uint8)
    pixels[3000:3200, 1000:4000] = 0
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


class TestEngineMaxSide:
    """Large pages decode at the OCR engine's working size, ordinary ones as before."""

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

    def test_ordinary_pages_decode_as_before(self, tmp_path: Path) -> None:
        """A page under LARGE_PAGE_PIXELS decodes at full size."""
        path = tmp_path / "receipt.jpg"
        pixels = np.full((3508, 2481, 3), 255, dtype=np.uint8)  # as the longest receipts
        pixels[1000:1100, 200:1800] = 0  # not blank
        Image.fromarray(pixels).save(path, "JPEG", quality=90)
        assert LARGE_PAGE_PIXELS > 3508 * 2481
        ref = PageRef(id="r", source=str(path), page=1, kind="jpeg")
        load = build_pipeline(DocumentSettings(malloc_tuning=False)).stages[0]
        assert load.fn(ref).image.shape == (3508, 2481, 3)
        # A long receipt, 6 times as long as wide: whole, for the OCR's strips.
        long = np.full((6000, 1000, 3), 255, dtype=np.uint8)
        long[1000:1100, 100:900] = 0
        Image.fromarray(long).save(tmp_path / "long.jpg", "JPEG", quality=90)
        ref = PageRef(id="l", source=str(tmp_path / "long.jpg"), page=1, kind="jpeg")
        assert load.fn(ref).image.shape == (6000, 1000, 3)

    def test_ordinary_png_and_tiff_pages_decode_whole(self, tmp_path: Path) -> None:
        """A receipt on a 300-dpi A4 page (8.7 Mpx) as PNG or TIFF reaches preprocess at
        full size, as the same JPEG does: cut down to the receipt, it needs every pixel."""
        pixels = np.full((3508, 2481), 246, dtype=np.uint8)
        pixels[300:1500, 200:900] = 0  # not blank
        scan = Image.fromarray(pixels)
        scan.save(tmp_path / "a4.png")
        scan.save(tmp_path / "a4.tif", "TIFF", save_all=True, append_images=[scan])
        load = build_pipeline(DocumentSettings(malloc_tuning=False)).stages[0]
        for name, kind, page in (("a4.png", "png", 1), ("a4.tif", "tiff", 2)):
            ref = PageRef(id=name, source=str(tmp_path / name), page=page, kind=kind)
            loaded = load.fn(ref)
            assert loaded.image.shape[:2] == (3508, 2481), name
            assert loaded.scale == 1.0, name

    def test_pdf_pages_render_at_their_scans_resolution(self, tmp_path: Path) -> None:
        """A scanner app's PDF keeps its scan's pixels: a 300-dpi receipt and a long one
        (80 x 600 mm) render at 300 dpi, whole and pixel for pixel; a page without a scan
        at ``pdf_dpi``."""
        load = page_loader(DocumentSettings(malloc_tuning=False))
        for name, height in (("receipt.pdf", 2362), ("long.pdf", 7087)):
            pixels = np.full((height, 945), 250, dtype=np.uint8)  # 80 mm wide at 300 dpi
            pixels[100 : height - 100 : 50, 100:800] = 0  # a print row every 50 px
            Image.fromarray(pixels).save(tmp_path / name, "PDF", resolution=300.0)
            loaded = load(PageRef(id=name, source=str(tmp_path / name), page=1, kind="pdf"))
            image = loaded.image
            assert image is not None
            assert image.shape[:2] == (height, 945), name  # pixel for pixel
            assert loaded.scale == pytest.approx(1.5, rel=0.001), name  # against 200 dpi
            column = image[:, 400] if image.ndim == 2 else image[:, 400, 0]
            starts = int((np.diff((column < 128).astype(np.int8)) == 1).sum())
            assert starts == len(range(100, height - 100, 50)), name  # every printed row
        blank = blank_pdf(tmp_path / "blank.pdf", width=200, height=300)
        loaded = load(PageRef(id="blank", source=str(blank), page=1, kind="pdf"))
        assert loaded.image is not None
        assert loaded.image.shape[:2] == (834, 556)  # 200 x 300 pt at 200 dpi
        assert loaded.scale == 1.0

    def test_pipeline_bounds_other_formats(self, tmp_path: Path) -> None:
        """A 600-dpi A4 PNG, a page of a multi-page TIFF of them and a PDF page sized like
        one (4961x7016 pt) all reach OCR at <= 2000 px on the long side."""
        pixels = np.full((A4_600DPI[1], A4_600DPI[0]), 255, dtype=np.uint8)
        pixels[3000:3200, 1000:4000] = 0
        scan = Image.fromarray(pixels)
        scan.save(tmp_path / "a4.png")
        scan.save(tmp_path / "a4.tif", "TIFF", save_all=True, append_images=[scan])
        scan.save(tmp_path / "a4.pdf", "PDF", resolution=72.0)
        load = build_pipeline(DocumentSettings(malloc_tuning=False)).stages[0]
        for name, kind, page in (("a4.png", "png", 1), ("a4.tif", "tiff", 2), ("a4.pdf", "pdf", 1)):
            ref = PageRef(id=name, source=str(tmp_path / name), page=page, kind=kind)
            loaded = load.fn(ref)
            height, width = loaded.image.shape[:2]
            assert (height, width) in ((2000, 1414), (2000, 1415)), name
            if kind != "pdf":  # a PDF's scale is against its rendering at pdf_dpi
                assert loaded.scale == pytest.approx(1414 / 4961, rel=0.001), name
            assert int(loaded.image[round(3100 / 7016 * height), width // 2].min()) < 64, name
