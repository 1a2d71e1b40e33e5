"""Blank pages: found by their missing ink (`stages._paper.is_blank`) and not read by OCR."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from asyncpipe import Item
from stages._page import Page, PageRef
from stages.ocr import RapidOcrEngine, ocr_page
from stages.pipeline import output_record
from stages.preprocess import PreprocessOptions, is_blank, preprocess

A4 = (3508, 2480)  # 300 dpi


def _grain(level: float, sigma: float) -> npt.NDArray[np.uint8]:
    """An empty A4 page as a scanner gives it: paper of some grey, and its grain."""
    noise = np.random.default_rng(0).normal(level, sigma, A4)
    return np.clip(noise, 0, 255).astype(np.uint8)


def _scan(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _page(image: npt.NDArray[np.uint8]) -> Page:
    return Page(ref=PageRef(id="p", source="p.png", page=1, kind="image"), image=image)


class TestIsBlank:
    @pytest.mark.parametrize(
        "image",
        [
            np.full(A4, 255, np.uint8),
            _grain(235, 6),
            _grain(225, 12),
            np.full((40, 30, 3), 90, np.uint8),
        ],
        ids=["white", "grain 6", "grain 12", "small grey"],
    )
    def test_a_page_without_ink_is_blank(self, image: npt.NDArray[np.uint8]) -> None:
        assert is_blank(image)

    def test_specks_of_dust_leave_it_blank(self) -> None:
        page = _grain(240, 4)
        for x, y in ((300, 400), (1800, 2900), (1200, 100)):
            cv2.circle(page, (x, y), 3, 20, -1)
        assert is_blank(page)

    def test_one_short_word_is_ink(self) -> None:
        page = np.full(A4, 250, np.uint8)
        cv2.putText(page, "Page 3", (1100, 3300), cv2.FONT_HERSHEY_SIMPLEX, 2, 30, 5)
        assert not is_blank(page)

    def test_print_faded_to_a_fifth_is_ink(self) -> None:
        """Thermal print that kept a fifth of its darkness (the robustness benchmark's
        ``faded`` keeps 35 %)."""
        page = np.full(A4, 245, np.uint8)
        cv2.putText(page, "TOTAL 12.50", (600, 1500), cv2.FONT_HERSHEY_SIMPLEX, 3, 195, 8)
        assert not is_blank(page)

    def test_no_receipt_is_blank_as_scanned_or_faded(self, sroie: Path) -> None:
        for path in sorted((sroie / "img").glob("*.jpg")):
            image = _scan(path)
            faded = (255 - (255 - image.astype(np.float32)) * 0.35).astype(np.uint8)
            assert not is_blank(image), path.name
            assert not is_blank(faded), path.name


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine()


class TestBlankPages:
    def test_ocr_skips_a_blank_page_and_its_record_says_so(self, engine: RapidOcrEngine) -> None:
        page = ocr_page(engine, preprocess(_page(_grain(235, 6)), PreprocessOptions()))
        assert page.lines == [] and page.text == "" and page.image is None
        assert page.notes["ocr"]["blank"] is True
        [warning] = output_record(Item("p", 0, page))["warnings"]
        assert warning.startswith("blank page: it holds no ink")

    def test_skip_blank_off_reads_it(self, engine: RapidOcrEngine) -> None:
        options = PreprocessOptions(skip_blank=False)
        page = ocr_page(engine, preprocess(_page(_grain(235, 6)), options))
        assert "blank" not in page.notes["ocr"] and page.lines == []
        [warning] = output_record(Item("p", 0, page))["warnings"]
        assert warning.startswith("no text: OCR found no text")

    def test_a_page_with_print_is_read(self, engine: RapidOcrEngine, sroie: Path) -> None:
        image = _scan(sroie / "img" / "000.jpg")
        page = ocr_page(engine, preprocess(_page(image), PreprocessOptions()))
        assert "blank" not in page.notes["ocr"] and len(page.lines) > 20
