from __future__ import annotations

import json
from dataclasses import replace

import pytest

from stages._page import Line, Page, PageRef
from stages._rows import MIN_BEND, row_heights
from stages.ocr import polygon_to_box, reading_order
from stages.offline._geometry import rows

__all__: list[str] = []

WIDTH = 1000.0
#: Print height and row pitch of the synthetic receipt, in pixels.
HEIGHT, PITCH = 24.0, 45.0


def _lift(x: float, depth: float) -> float:
    """How much higher a curled row sits at ``x``: a parabola, ``depth`` at the middle."""
    return depth * (1 - (2 * x / WIDTH - 1) ** 2)


def _bowed(text: str, x0: float, x1: float, y: float, depth: float) -> Line:
    """A line from ``x0`` to ``x1`` of the row printed at ``y`` on a page curled ``depth``:
    its quad runs along the chord of the bow, and its box encloses the quad."""
    left, right = y - _lift(x0, depth), y - _lift(x1, depth)
    half = HEIGHT / 2
    quad = [[x0, left - half], [x1, right - half], [x1, right + half], [x0, left + half]]
    return Line(text, polygon_to_box(quad), 1.0, quad)


def _receipt(depth: float) -> list[list[Line]]:
    """Ten printed rows of three parts each, a name on the left, a count in the middle,
    an amount at the right end: the rows as printed."""
    return [
        [
            _bowed(f"name{k}", 40, 250, 150 + PITCH * k, depth),
            _bowed(f"count{k}", 420, 580, 150 + PITCH * k, depth),
            _bowed(f"amount{k}", 880, 960, 150 + PITCH * k, depth),
        ]
        for k in range(10)
    ]


#: A line's quad in a checkpoint.
QUAD = [[1.0, 2.0], [41.5, 3.0], [41.5, 15.0], [1.0, 14.0]]


def _texts(grouped: list[list[Line]]) -> list[list[str]]:
    return [[line.text for line in row] for row in grouped]


def _boxes_only(lines: list[Line]) -> list[Line]:
    return [replace(line, quad=None) for line in lines]


class TestCurledRows:
    """Rows of a curled page, grouped by the lines' quads."""

    def test_reading_order_keeps_each_bowed_row(self) -> None:
        """A curl of 8 % of the width: each printed row comes out whole, in order."""
        printed = _receipt(0.08 * WIDTH)
        shuffled = [line for row in reversed(printed) for line in reversed(row)]
        assert reading_order(shuffled) == [line for row in printed for line in row]

    def test_boxes_alone_mix_the_rows(self) -> None:
        """The same lines by their boxes alone (before quads were kept): the middle part
        of a row sits as high as the ends of the row above, and the rows mix."""
        printed = _receipt(0.08 * WIDTH)
        lines = [line for row in printed for line in row]
        assert reading_order(_boxes_only(lines)) != _boxes_only(lines)

    def test_the_field_rules_rows_follow_the_bow(self) -> None:
        """`rows` (the field rules' and the score's grouping) finds the printed rows;
        by boxes alone it does not."""
        printed = _receipt(0.08 * WIDTH)
        lines = [line for row in printed for line in row]
        assert _texts(rows(lines[::-1])) == _texts(printed)
        assert _texts(rows(_boxes_only(lines))) != _texts(printed)

    def test_a_tilted_page_is_levelled_too(self) -> None:
        """A straight tilt the engine left (under `stages.ocr._level.MIN_TILT` or a
        mixed page) is a bend without curvature: the rows still come out whole."""
        slope = 0.05
        printed = [
            [
                Line(
                    text,
                    polygon_to_box(quad := _slanted(x0, x1, 150 + PITCH * k, slope)),
                    1.0,
                    quad,
                )
                for text, x0, x1 in ((f"a{k}", 40, 400), (f"b{k}", 700, 960))
            ]
            for k in range(8)
        ]
        lines = [line for row in printed for line in row]
        assert _texts(rows(lines[::-1])) == _texts(printed)


def _slanted(x0: float, x1: float, y: float, slope: float) -> list[list[float]]:
    half = HEIGHT / 2
    return [
        [x0, y + slope * x0 - half],
        [x1, y + slope * x1 - half],
        [x1, y + slope * x1 + half],
        [x0, y + slope * x0 + half],
    ]


class TestSlightBend:
    def test_a_slight_bend_is_left_alone(self) -> None:
        """A bend that moves lines less than `MIN_BEND` print heights against each other
        leaves the quads' centres as they are: a flat scan groups as it did."""
        slope = 0.005  # 3 pixels between the two columns' middles, an eighth of a line
        lines = [
            Line(text, polygon_to_box(quad := _slanted(x0, x1, 150 + PITCH * k, slope)), 1.0, quad)
            for k in range(8)
            for text, x0, x1 in ((f"a{k}", 40, 400), (f"b{k}", 700, 960))
        ]
        centres = [sum(y for _, y in line.quad or []) / 4 for line in lines]
        assert [centre for centre, _, _ in row_heights(lines)] == pytest.approx(centres)
        assert MIN_BEND * HEIGHT > 3 * 0.005 * 660


class TestFallback:
    """Lines without quads are grouped exactly as before."""

    def test_lines_without_quads_use_their_boxes(self) -> None:
        """Centre, top and bottom of the box, untouched."""
        lines = [Line("a", [0.0, 10.0, 50.0, 31.0], 1.0), Line("b", [60.0, 5.0, 90.0, 6.0], 1.0)]
        assert row_heights(lines) == [(20.5, 10.0, 31.0), (5.5, 5.0, 6.0)]

    def test_one_line_without_a_quad_uses_boxes_for_all(self) -> None:
        """A PDF's text-layer lines beside lines read from its pictures: boxes for all."""
        printed = _receipt(0.08 * WIDTH)
        lines = [line for row in printed for line in row]
        mixed = [*lines[:-1], replace(lines[-1], quad=None)]
        assert row_heights(mixed) == row_heights(_boxes_only(lines))

    def test_a_flat_page_reads_the_same_with_quads(self) -> None:
        """Upright boxes whose quads are their corners: the same heights either way."""
        printed = _receipt(0.0)
        lines = [line for row in printed for line in row]
        assert row_heights(lines) == row_heights(_boxes_only(lines))


class TestQuadRecord:
    """`Line.quad` in checkpoints and journals."""

    def test_round_trip_with_a_quad(self) -> None:
        line = Line("TOTAL", [1.0, 2.0, 41.5, 15.0], 0.9, QUAD)
        assert Line.from_json(json.loads(json.dumps(line.to_json()))) == line

    def test_round_trip_without_a_quad(self) -> None:
        """No ``quad`` key is written for a line without one: the record is as before."""
        line = Line("TOTAL", [1.0, 2.0, 41.5, 15.0], 0.9)
        assert line.to_json() == {"text": "TOTAL", "box": [1.0, 2.0, 41.5, 15.0], "confidence": 0.9}
        assert Line.from_json(line.to_json()) == line

    def test_an_old_checkpoint_loads(self) -> None:
        """A page written before quads were kept loads, its lines without one."""
        page = Page(PageRef("a.jpg#1@0", "a.jpg", 1, "jpeg"))
        data = page.to_json()
        data["lines"] = [{"text": "TOTAL", "box": [1, 2, 3, 4], "confidence": 1}]
        assert Page.from_json(data).lines == [Line("TOTAL", [1, 2, 3, 4], 1.0)]
        page.lines = [Line("TOTAL", [1.0, 2.0, 41.5, 15.0], 0.9, QUAD)]
        assert Page.from_json(json.loads(json.dumps(page.to_json()))).lines == page.lines
