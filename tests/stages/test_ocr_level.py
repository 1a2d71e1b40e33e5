from __future__ import annotations

import math

import pytest

from stages.ocr._level import MIN_TILT, level_quads, tilt

__all__: list[str] = []


def _quad(x: float, y: float, length: float, height: float, degrees: float) -> list[list[float]]:
    """A line's four corners (top-left first, clockwise), turned ``degrees`` about (x, y)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [(0.0, 0.0), (length, 0.0), (length, height), (0.0, height)]
    return [[x + dx * cos - dy * sin, y + dx * sin + dy * cos] for dx, dy in corners]


class TestTilt:
    def test_the_median_of_the_long_lines(self) -> None:
        quads = [_quad(50, 40 * i, 300, 20, 3.0) for i in range(5)]
        quads.append(_quad(10, 10, 30, 20, -40.0))  # a short box does not count
        assert tilt(quads) == pytest.approx(3.0)

    def test_steep_lines_do_not_count(self) -> None:
        """A page lying sideways is for ``orient``: its lines are not a tilt."""
        assert tilt([_quad(50, 40 * i, 300, 20, 90.0) for i in range(5)]) == 0.0

    def test_no_lines(self) -> None:
        assert tilt([]) == 0.0


class TestLevelQuads:
    def test_a_row_in_two_parts_comes_back_together(self) -> None:
        """TOTAL on the left and its amount on the right, tilted 4 degrees: one row again."""
        degrees = 4.0
        slope = math.tan(math.radians(degrees))
        label = _quad(20, 500, 120, 20, degrees)
        amount = _quad(420, 500 + 400 * slope, 80, 20, degrees)
        others = [_quad(20, 100 + 40 * i, 400, 20, degrees) for i in range(6)]
        levelled = level_quads([label, amount, *others], 600, 900)

        def middle(quad: list[list[float]]) -> float:
            return sum(y for _, y in quad) / 4

        before = abs(middle(label) - middle(amount))
        after = abs(middle(levelled[0]) - middle(levelled[1]))
        assert before > 25
        assert after < 1.0

    def test_a_slight_tilt_is_left_alone(self) -> None:
        quads = [_quad(20, 100 + 40 * i, 400, 20, MIN_TILT / 2) for i in range(4)]
        assert level_quads(quads, 600, 900) == quads

    def test_corners_stay_on_the_page(self) -> None:
        quads = [_quad(0, 5 + 40 * i, 600, 20, 5.0) for i in range(4)]
        for quad in level_quads(quads, 600, 200):
            for x, y in quad:
                assert 0.0 <= x <= 600 and 0.0 <= y <= 200
