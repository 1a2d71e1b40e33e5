"""Spaces at ink-free gaps of a recognised line (``stages/ocr/_spacing.py``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from stages.ocr._spacing import (
    char_centres,
    gap_widths,
    ink_mask,
    insert_spaces,
    space_line,
    text_height,
)

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

    def test_short_texts(self) -> None:
        """Empty and one-character texts need no gaps."""
        assert insert_spaces("", [], 1) == ""
        assert insert_spaces("A", [], 1) == "A"
        assert insert_spaces(" A ", [], 1) == " A "

    def test_gaps_that_do_not_fit_are_an_error(self) -> None:
        """One gap per neighbouring pair, else ValueError."""
        with pytest.raises(ValueError, match="2 gaps for 2 characters"):
            insert_spaces("A B", [1, 2], 5)


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
    """ink_mask, text_height and char_centres on synthetic crops."""

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
        """A blank crop has no ink and no height."""
        mask = ink_mask(np.full((20, 30), 250, dtype=np.uint8))
        assert not mask.any()
        assert text_height(mask) == 0.0

    def test_text_height_leaves_out_a_neighbours_tips(self) -> None:
        """Rows with a sliver of a neighbouring line's ink are not print height."""
        crop = glyph_line([(10, 60), (70, 120)], ink=(10, 30))
        crop[0:3, 15:17] = 0  # the descender of the line above
        assert text_height(ink_mask(crop)) == 20.0

    def test_char_centres_scale_steps_to_pixels(self) -> None:
        """Step k of n over a w-pixel crop is centred at (k + 0.5) * w / n."""
        assert char_centres([0, 3, 9], 10, 200) == [10.0, 70.0, 190.0]
        assert char_centres([1], 0, 200) == [0.0]


class TestSpaceLine:
    """space_line: crop, columns and text together."""

    # Three "glyphs" 12 px wide, print 20 px high: gaps of 4 px, then 14 px.
    CROP = glyph_line([(0, 12), (16, 28), (42, 54)])
    # 64 px over 16 steps: 4 px a step, step k centred at 4k + 2.
    COLUMNS = (1, 5, 12)

    def test_space_only_in_the_wide_gap(self) -> None:
        """At 0.45 x 20 px = 9 px, the 14 px gap is a space and the 4 px one is not."""
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.45) == "AB C"

    def test_threshold_scales_with_print_height(self) -> None:
        """A higher space_gap adds nothing, a lower one spaces both gaps."""
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.8) == "ABC"
        assert space_line("ABC", self.COLUMNS, 16, self.CROP, 0.1) == "A B C"

    def test_unchanged_when_columns_do_not_fit(self) -> None:
        """Columns for the wrong number of characters, or a blank crop, change nothing."""
        assert space_line("ABCD", self.COLUMNS, 16, self.CROP, 0.45) == "ABCD"
        blank = np.full_like(self.CROP, 255)
        assert space_line("ABC", self.COLUMNS, 16, blank, 0.45) == "ABC"
        assert space_line("A", [1], 16, self.CROP, 0.45) == "A"
