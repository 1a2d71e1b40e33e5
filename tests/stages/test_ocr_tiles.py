"""Long pages read in overlapping strips (stages/ocr/_tiles.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from stages._page import Line
from stages.ocr import RapidOcrEngine
from stages.ocr._tiles import (
    LONG_PAGE,
    MAX_ASPECT,
    MAX_STRIPS,
    MOST_ENLARGED,
    detector_side,
    read_in_strips,
    readable,
    strips,
)

__all__: list[str] = []


class TestStrips:
    @pytest.mark.parametrize(("long", "short"), [(1000, 463), (1389, 463), (1924, 818)])
    def test_a_page_up_to_three_times_as_long_is_one_strip(self, long: int, short: int) -> None:
        assert long <= LONG_PAGE * short
        (whole,) = strips(long, short)
        assert (whole.start, whole.stop, whole.keep_from, whole.keep_to) == (0, long, 0, long)

    @pytest.mark.parametrize(("long", "short"), [(1400, 463), (2778, 463), (5952, 992)])
    def test_strips_cover_the_page_and_their_shares_partition_it(
        self, long: int, short: int
    ) -> None:
        cuts = strips(long, short)
        assert len(cuts) >= 2
        assert cuts[0].start == 0 and cuts[-1].stop == long
        assert cuts[0].keep_from == 0 and cuts[-1].keep_to == long
        for strip in cuts:
            assert strip.stop - strip.start == min(2 * short, 1500)
            assert strip.start <= strip.keep_from < strip.keep_to <= strip.stop
        for first, second in itertools.pairwise(cuts):
            assert first.keep_to == second.keep_from
            overlap = first.stop - second.start
            assert overlap >= short // 4
            # A line up to half the overlap tall on either side of the cut is whole in
            # the strip that keeps it.
            assert first.keep_to - second.start >= overlap / 2 - 1
            assert first.stop - first.keep_to >= overlap / 2 - 1


class TestDegeneratePages:
    """Pages no scanner makes on purpose (round 26's audit) are read in bounded time."""

    @pytest.mark.parametrize(("long", "short"), [(20000, 1), (2000, 30), (99_999, 99)])
    def test_a_narrow_page_is_read_whole(self, long: int, short: int) -> None:
        """A 1x20000 pixel PNG (121 bytes) was cut into 10,000 strips, read for more than
        10 minutes; the detector scales a narrow strip up to 736 pixels anyway."""
        assert len(strips(long, short)) == 1

    @pytest.mark.parametrize(("long", "short"), [(1_000_000, 100), (40_000, 300)])
    def test_a_long_page_is_cut_into_few_strips(self, long: int, short: int) -> None:
        """The strips still cover the page and partition it."""
        cuts = strips(long, short)
        assert 2 <= len(cuts) <= MAX_STRIPS
        assert cuts[0].start == 0 and cuts[-1].stop == long
        assert cuts[0].keep_from == 0 and cuts[-1].keep_to == long
        for first, second in itertools.pairwise(cuts):
            assert first.keep_to == second.keep_from and first.stop >= second.start

    def test_a_side_shrunk_under_16_pixels_is_padded(self) -> None:
        """rapidocr rounds sides to a multiple of 32: a 20x2000 page's 15 pixels became 0
        (an empty ResizeImgError). It is padded below with white; boxes stay."""
        page = np.zeros((20, 2000, 3), dtype=np.uint8)
        padded = readable(page, max_side=1500)
        assert padded.shape == (2000 // MAX_ASPECT, 2000, 3)  # also at most 8 to 1
        assert (padded[:20] == 0).all() and (padded[20:] == 255).all()
        assert readable(padded, max_side=1500) is padded
        assert readable(np.zeros((4, 100), dtype=np.uint8)).shape == (17, 100)
        receipt = np.zeros((1500, 700), dtype=np.uint8)
        assert readable(receipt) is receipt

    @pytest.mark.parametrize(
        ("shape", "reads"), [((20, 2000), 1), ((2000, 30), 1), ((1, 20000), 0), ((20000, 1), 0)]
    )
    def test_the_engine_reads_them(self, shape: tuple[int, int], reads: int) -> None:
        """Blank, so no text, and no error, in one read at most: a side under 8 pixels
        holds no print (the 20x2000 page failed with an empty error, the 2000x30 one
        took 57 s in 38 strips, the 20000x1 one over 10 minutes)."""
        engine = RapidOcrEngine()
        calls: list[tuple[int, ...]] = []
        real = engine._ocr

        def counted(image: npt.NDArray[np.uint8]) -> object:
            calls.append(image.shape)
            return real(image)

        engine._ocr = counted
        assert engine.recognize(np.full((*shape, 3), 255, dtype=np.uint8)) == []
        assert len(calls) == reads


class TestSmallPages:
    """A small page is enlarged at most MOST_ENLARGED times for the detector."""

    def test_detector_side(self) -> None:
        # rapidocr enlarges a 17x34 crop to a short side of 30 first.
        assert detector_side(17, 34) == 30 * MOST_ENLARGED
        assert detector_side(50, 150) == 50 * MOST_ENLARGED
        # A receipt, or any page with a short side of 92 or more, as before.
        assert detector_side(1000, 700) == detector_side(92, 400) == 736
        # Shrunk to 1500 on its long side first.
        assert detector_side(3000, 80) == 40 * MOST_ENLARGED
        assert detector_side(100, 300, limit=960) == 100 * MOST_ENLARGED

    @staticmethod
    def _label(text: str) -> npt.NDArray[np.uint8]:
        """A label 60x20 pixels, cropped to its print (as a run's preprocess does)."""
        drawn = np.full((20, 60), 255, dtype=np.uint8)
        cv2.putText(drawn, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1)
        ys, xs = np.nonzero(drawn < 128)
        crop = drawn[ys.min() - 2 : ys.max() + 3, xs.min() - 2 : xs.max() + 3]
        return np.asarray(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), dtype=np.uint8)

    def test_the_detector_reads_a_label_at_a_fitting_size(self) -> None:
        """Enlarged to a short side of 736 (24 times), these labels' print was not found
        and each cost as much as a receipt; enlarged 8 times they read."""
        engine = RapidOcrEngine()
        seen: list[tuple[int, ...]] = []
        detector = engine._ocr.text_det
        session = detector.session

        def detect(image: npt.NDArray[np.float32]) -> object:
            seen.append(image.shape)
            return session(image)

        detector.session = detect
        try:
            for text in ("120", "160", "180"):
                lines = engine.recognize(self._label(text))
                assert [line.text for line in lines] == [text]
            page = np.full((900, 700, 3), 255, dtype=np.uint8)
            cv2.putText(page, "TOTAL 12.00", (50, 400), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 0, 3)
            assert [line.text for line in engine.recognize(page)] == ["TOTAL 12.00"]
        finally:
            engine.close()
        # (batch, channels, height, width): the labels at most 8 times 30 pixels tall,
        # the page at 736 pixels wide, as before.
        assert all(shape[2] <= 32 * round(30 * MOST_ENLARGED / 32) for shape in seen[:3])
        assert seen[-1][3] == 736


def _bars(page: npt.NDArray[np.uint8]) -> list[Line]:
    """A stand-in reader: one line per run of dark rows that lies whole in the image."""
    dark = [bool((row < 128).any()) for row in page]
    lines: list[Line] = []
    top: int | None = None
    for row, ink in enumerate([*dark, False]):
        if ink and top is None:
            top = row
        elif not ink and top is not None:
            if top > 0 and row < len(dark):  # cut by the strip's edge: not read
                quad: list[list[float]] = [[10, top], [90, top], [90, row], [10, row]]
                lines.append(Line(f"bar{top}", [10.0, top, 90.0, row], 1, quad))
            top = None
    return lines


class TestReadInStrips:
    def test_every_line_once_in_page_pixels(self) -> None:
        """Bars every 37 rows, some across every cut: each comes back once, where it is."""
        page = np.full((2000, 100), 255, dtype=np.uint8)
        tops = list(range(5, 1990, 37))
        for top in tops:
            page[top : top + 12] = 0
        read: list[npt.NDArray[np.uint8]] = []

        def reader(part: npt.NDArray[np.uint8]) -> list[Line]:
            read.append(part)
            return _bars(part)

        lines = read_in_strips(page, reader)
        assert lines is not None
        assert len(read) == len(strips(2000, 100)) > 1
        assert sorted(line.box[1] for line in lines) == tops
        assert all(line.box[3] - line.box[1] == 12 for line in lines)
        assert all(line.quad is not None and line.quad[0][1] == line.box[1] for line in lines)

    def test_a_wide_page_is_read_whole(self) -> None:
        """A page 6 times as wide as tall keeps its lines whole: they may run along it."""
        page = np.full((100, 600), 255, dtype=np.uint8)
        page[40:52, 10:590] = 0
        assert read_in_strips(page, _bars) is None

    def test_a_short_page_is_not_cut(self) -> None:
        page = np.full((300, 100), 255, dtype=np.uint8)
        assert read_in_strips(page, _bars) is None


def _long_receipt(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The receipt's middle band repeated until it is 6 times as long as wide."""
    h, w = image.shape[:2]
    top, bottom = int(0.45 * h), int(0.6 * h)
    copies = -(-(6 * w - h) // (bottom - top))
    parts = [image[:bottom], *[image[top:bottom]] * copies, image[bottom:]]
    return np.ascontiguousarray(np.vstack(parts))


def test_a_long_receipt_keeps_its_header_and_total(sroie: Path) -> None:
    """Receipt 008 made 6 times as long as wide: read in strips, its header and its
    total are read as on the scan; read whole, shrunk to 1500 pixels, they are not."""
    scan = cv2.imread(str(sroie / "img" / "008.jpg"), cv2.IMREAD_COLOR)
    assert scan is not None
    page = _long_receipt(np.asarray(scan, dtype=np.uint8))
    assert page.shape[0] > LONG_PAGE * page.shape[1]
    texts = {}
    for name, cut in (("strips", True), ("whole", False)):
        engine = RapidOcrEngine(strips=cut, orient=False)
        try:
            texts[name] = {line.text for line in engine.recognize(page)}
            if name == "strips":
                flat = [line.text for line in engine.recognize(np.asarray(scan))]
        finally:
            engine.close()
    wanted = {flat[0], flat[1], flat[-1]} | {text for text in flat if "112.45" in text}
    assert wanted <= texts["strips"], wanted - texts["strips"]
    assert not wanted <= texts["whole"]
