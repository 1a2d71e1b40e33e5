"""Spaces at ink-free gaps of a recognised line (``stages/ocr/_spacing.py``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from asyncpipe._exceptions import ConfigError
from stages._page import Line
from stages.ocr import RapidOcrEngine
from stages.ocr._rapid import respace_lines
from stages.ocr._spacing import (
    char_centres,
    gap_widths,
    ink_mask,
    insert_spaces,
    space_limits,
    space_line,
)
from stages.offline import comparable_text, edit_distance, read_box_file

__all__: list[str] = []


def glyph_line(
    spans: list[tuple[int, int]], *, height: int = 40, ink: tuple[int, int] = (10, 30)
) -> npt.NDArray[np.uint8]:
    """A white BGR line crop with a black block over each column span, rows ``ink``."""
    width = max(stop for _, stop in spans) + 10
    crop = np.full((height, width, 3), 255, dtype=np.uint8)
    for start, stop in spans:
        crop[ink[0] : ink[1], start:stop] = 0
    return crop


class TestInsertSpaces:
    """insert_spaces: the decision on given gaps."""

    def test_space_where_the_gap_is_wider_than_the_limit(self) -> None:
        """Only the gap above the limit gets a space."""
        assert insert_spaces("AB,CD", [1, 2, 9, 1], 5) == "AB, CD"

    def test_limit_itself_is_not_a_space(self) -> None:
        """A gap equal to the limit is not wide enough."""
        assert insert_spaces("AB", [5], 5) == "AB"

    def test_existing_spaces_kept_and_never_doubled(self) -> None:
        """Gaps count non-space neighbours; a gap across a space adds nothing."""
        assert insert_spaces("A BC", [9, 9], 5) == "A B C"
        assert insert_spaces("A  B", [9], 5) == "A  B"

    def test_join_drops_a_read_space_in_a_narrow_gap(self) -> None:
        """A space read where the print has almost no gap goes; wide ones stay."""
        assert insert_spaces("AL AM B", [1, 1, 1, 9], 5, join=2) == "ALAM B"
        assert insert_spaces("AL AM", [1, 2, 1], 5, join=2) == "AL AM"  # join itself stays
        assert insert_spaces("A  B", [1], 5, join=2) == "AB"  # every space of the run
        assert insert_spaces("A B", [1], 5) == "A B"  # off by default

    def test_short_texts(self) -> None:
        """Empty and one-character texts need no gaps."""
        assert insert_spaces("", [], 1) == ""
        assert insert_spaces("A", [], 1) == "A"
        assert insert_spaces(" A ", [], 1) == " A "

    def test_gaps_that_do_not_fit_are_an_error(self) -> None:
        """One gap per neighbouring pair, else ValueError."""
        with pytest.raises(ValueError, match="2 gaps for 2 characters"):
            insert_spaces("A B", [1, 2], 5)
        with pytest.raises(ValueError, match="1 limits for 2 gaps"):
            insert_spaces("ABC", [1, 2], [5])

    def test_one_limit_per_gap(self) -> None:
        """A limit per gap judges each gap by its own."""
        assert insert_spaces("ABCD", [4, 4, 4], [5, 3, 5]) == "AB CD"


class TestSpaceLimits:
    """space_limits: where a narrow gap can be a word space."""

    # A 20 px crop: the wide limit 0.45 x 20 = 9 px, the narrow one 0.22 x 20 = 4.4 px
    # unless 2.5 x the median gap is more.

    def limits(self, text: str, gaps: list[float], narrow: float | None = 0.22) -> list[float]:
        return space_limits(text, gaps, 20, 0.45, narrow)

    def test_narrow_between_letters_and_after_a_mark_ending_a_word(self) -> None:
        """NO.7,JALAN: after the full stop (a letter before it) and the comma."""
        assert self.limits("NO.7,JA", [1] * 6) == pytest.approx([4.4, 9, 4.4, 9, 4.4, 4.4])

    def test_wide_inside_numbers_and_before_marks(self) -> None:
        """119.30, 80.00, Date:, 1CR and -INV keep the wide limit: narrow glyphs."""
        assert self.limits("119.30", [1] * 5) == pytest.approx([9] * 5)
        assert self.limits("te:0", [1] * 3) == pytest.approx([4.4, 9, 4.4])
        assert self.limits("1CR", [1] * 2) == pytest.approx([9, 4.4])
        assert self.limits("-IN", [1] * 2) == pytest.approx([9, 4.4])

    def test_narrow_limit_rises_with_the_line_letter_spacing(self) -> None:
        """2.5 x a median gap of 3 px is 7.5 px; never above the wide limit."""
        assert self.limits("ABC", [3, 3]) == pytest.approx([7.5, 7.5])
        assert self.limits("ABC", [5, 5]) == pytest.approx([9, 9])

    def test_none_is_the_wide_limit_everywhere(self) -> None:
        """narrow_gap None: space_gap alone, as before; no gaps, no limits."""
        assert self.limits("AB.C", [1] * 3, None) == pytest.approx([9] * 3)
        assert self.limits("A", []) == []


class TestGapWidths:
    """gap_widths on synthetic column profiles."""

    def test_widest_free_run_between_centres(self) -> None:
        """The widest ink-free run between two centres, not the total free columns."""
        ink = [True, True, False, True, False, False, False, True, True]
        assert gap_widths(ink, [0.5, 7.5]) == [3]
        assert gap_widths(ink, [0.5, 3.0, 7.5]) == [1, 3]

    def test_only_columns_between_the_centres(self) -> None:
        """Free columns outside the two centres do not count."""
        ink = [False] * 5 + [True] * 3 + [False] * 5
        assert gap_widths(ink, [5.0, 7.0]) == [0]

    def test_centres_out_of_order_or_outside(self) -> None:
        """Decreasing centres give 0; centres past the crop are clipped to it."""
        assert gap_widths([False] * 4, [3.0, 1.0]) == [0]
        assert gap_widths([False] * 4, [-5.0, 50.0]) == [4]
        assert gap_widths([True], [0.0]) == []


class TestCrop:
    """ink_mask and char_centres on synthetic crops."""

    def test_ink_mask_finds_dark_print_on_grey_noise(self) -> None:
        """Dark blocks are ink, a noisy light ground is not."""
        rng = np.random.default_rng(0)
        crop = glyph_line([(10, 20)])
        crop[crop == 255] = rng.integers(190, 256, size=int((crop == 255).sum()), dtype=np.uint8)
        mask = ink_mask(crop)
        assert mask[10:30, 10:20].all()
        assert not mask[:, :10].any() and not mask[:, 20:].any()
        gray = ink_mask(crop[:, :, 0])
        assert gray[10:30, 10:20].all() and gray.sum() == mask.sum()

    def test_flat_crop_has_no_ink(self) -> None:
        """A blank crop has no ink."""
        mask = ink_mask(np.full((20, 30), 250, dtype=np.uint8))
        assert not mask.any()

    def test_char_centres_scale_steps_to_pixels(self) -> None:
        """Step k of n over a w-pixel crop is centred at (k + 0.5) * w / n."""
        assert char_centres([0, 3, 9], 10, 200) == [10.0, 70.0, 190.0]
        assert char_centres([1], 0, 200) == [0.0]


class TestSpaceLine:
    """space_line: crop, columns and text together."""

    # Three "glyphs" 12 px wide in a 20 px high crop: gaps of 4 px, then 14 px.
    CROP = glyph_line([(0, 12), (16, 28), (42, 54)], height=20, ink=(4, 16))
    # 64 px over 16 steps: 4 px a step, step k centred at 4k + 2.
    COLUMNS = (1, 5, 12)

    def test_space_only_in_the_wide_gap(self) -> None:
        """At 0.45 x the 20 px crop = 9 px, the 14 px gap is a space and the 4 px one not."""
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.45) == "AB C"

    def test_threshold_scales_with_crop_height(self) -> None:
        """A higher space_gap or a taller crop adds nothing, a lower one spaces both gaps."""
        tall = glyph_line([(0, 12), (16, 28), (42, 54)], height=40, ink=(14, 26))
        assert space_line("ABC", self.COLUMNS, 16, tall, 0.45) == "ABC"
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.8) == "ABC"
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.1) == "A B C"

    def test_narrow_gap_spaces_a_word_gap_that_stands_out(self) -> None:
        """A 6 px gap between letters set 1 px apart is a space at narrow_gap 0.22."""
        crop = glyph_line([(0, 8), (9, 17), (18, 26), (32, 40)], height=20, ink=(4, 16))
        # 50 px over 25 steps: 2 px a step, step k centred at 2k + 1.
        columns = (2, 6, 11, 18)
        assert space_line("ABCD", columns, 25, crop, 0.45) == "ABCD"
        assert space_line("ABCD", columns, 25, crop, 0.45, 0.22) == "ABC D"
        assert space_line("AB1D", columns, 25, crop, 0.45, 0.22) == "AB1D"  # not after a 1

    def test_unchanged_when_columns_do_not_fit(self) -> None:
        """Columns for the wrong number of characters, or a blank crop, change nothing."""
        assert space_line("ABCD", self.COLUMNS, 16, self.CROP, 0.45) == "ABCD"
        blank = np.full_like(self.CROP, 255)
        assert space_line("ABC", self.COLUMNS, 16, blank, 0.45) == "ABC"
        assert space_line("A", [1], 16, self.CROP, 0.45) == "A"


class FakeRapidOcr:
    """Just what respace_lines touches of rapidocr.RapidOCR: one line read as "ABC"."""

    def __init__(self, *, return_word_box: bool) -> None:
        self.return_word_box = return_word_box
        self.asked: list[bool] = []

    def recognize_txt(self, crops: list[Any]) -> SimpleNamespace:
        """Record whether word columns were asked for; give TestSpaceLine's columns."""
        self.asked.append(self.return_word_box)
        info = SimpleNamespace(word_cols=[[1, 5], [12]], line_txt_len=16)
        return SimpleNamespace(txts=("ABC",), word_results=(info,), imgs=crops)


class TestRespaceLines:
    """respace_lines: the wrapper around rapidocr's recognition step, without the model."""

    def test_asks_for_columns_and_hides_them_again(self) -> None:
        """Columns are asked for during the call only; the texts come back spaced."""
        ocr = FakeRapidOcr(return_word_box=False)
        respace_lines(ocr, partial(space_line, space_gap=0.45))
        result = ocr.recognize_txt([TestSpaceLine.CROP])
        assert ocr.asked == [True] and ocr.return_word_box is False
        assert result.txts == ("AB C",)
        assert result.word_results == (None,)

    def test_keeps_word_results_someone_asked_for(self) -> None:
        """With rapidocr's return_word_box on, its word results stay for its word boxes."""
        ocr = FakeRapidOcr(return_word_box=True)
        respace_lines(ocr, lambda text, cols, steps, crop: text.lower())
        result = ocr.recognize_txt([TestSpaceLine.CROP])
        assert result.txts == ("abc",)
        assert result.word_results[0].word_cols == [[1, 5], [12]]

    def test_rapidocr_without_the_step_is_a_config_error(self) -> None:
        """A rapidocr without recognize_txt cannot be spaced."""
        with pytest.raises(ConfigError, match="recognize_txt"):
            respace_lines(object(), lambda text, cols, steps, crop: text)


class TestRapidOcrEngine:
    """RapidOcrEngine(space_gap=...) on a real receipt, with the real model."""

    #: A band of rows of receipt 010, from above its shop address to below its GST
    #: number: the recogniser reads two of its lines with a colon against the next word
    #: where the print has a wide gap (seen on the development half).
    RECEIPT, TOP, BOTTOM = "010", 142, 346

    def band(self, sroie: Path) -> npt.NDArray[np.uint8]:
        """The receipt's rows TOP to BOTTOM, as loaded."""
        image = cv2.imread(str(sroie / "img" / f"{self.RECEIPT}.jpg"), cv2.IMREAD_COLOR)
        assert image is not None
        return np.asarray(image[self.TOP : self.BOTTOM], dtype=np.uint8)

    def truth(self, sroie: Path) -> str:
        """The ground-truth lines whose middle is in the band, top to bottom."""
        lines = read_box_file(sroie / "box" / f"{self.RECEIPT}.csv")
        inside = [
            line for line in lines if self.TOP < (line.box[1] + line.box[3]) / 2 < self.BOTTOM
        ]
        return "\n".join(line.text for line in sorted(inside, key=lambda line: line.box[1]))

    @pytest.mark.parametrize("use_cls", [False, True])
    def test_space_appears_where_the_print_has_a_gap(self, sroie: Path, use_cls: bool) -> None:
        """Spaces are only added, boxes stay, and the text gets closer to the truth."""
        band = self.band(sroie)
        plain_engine = RapidOcrEngine(use_cls=use_cls, space_gap=None)
        spaced_engine = RapidOcrEngine(use_cls=use_cls)  # space_gap 0.45, the default
        try:
            plain, spaced = plain_engine.recognize(band), spaced_engine.recognize(band)
        finally:
            plain_engine.close()
            spaced_engine.close()

        def squeeze(lines: list[Line]) -> list[str]:
            return ["".join(line.text.split()) for line in lines]

        assert squeeze(spaced) == squeeze(plain)
        assert [line.box for line in spaced] == [line.box for line in plain]
        assert [line.confidence for line in spaced] == [line.confidence for line in plain]
        changed = [(a.text, b.text) for a, b in zip(plain, spaced, strict=True) if a != b]
        assert changed, [line.text for line in plain]
        for before, after in changed:
            assert after.count(" ") > before.count(" ")
        truth = comparable_text(self.truth(sroie))
        distance = {
            name: edit_distance(truth, comparable_text("\n".join(line.text for line in lines)))
            for name, lines in (("plain", plain), ("spaced", spaced))
        }
        assert distance["spaced"] < distance["plain"], (changed, distance)

    @pytest.mark.parametrize("space_gap", [0.0, -0.45, float("nan")])
    def test_space_gap_must_be_positive(self, space_gap: float) -> None:
        """A space_gap that is not above 0 is a ConfigError."""
        with pytest.raises(ConfigError, match="space_gap"):
            RapidOcrEngine(space_gap=space_gap)
