from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from corpus import read_text, receipt_bgr

from stages._page import Line, Page, PageRef
from stages.ocr import RapidOcrEngine, ocr_page
from stages.ocr._orient import VOTERS, is_sideways, quarter_turns
from stages.offline import edit_distance
from stages.preprocess import PreprocessOptions, preprocess

__all__: list[str] = []

Crops = list[npt.NDArray[np.uint8]]


def _line(x0: float, y0: float, x1: float, y1: float, text: str = "") -> Line:
    """A line; its text names its box unless given (voters are one per distinct text, and
    hold a letter)."""
    return Line(text=text or f"at {x0} {y0} {x1} {y1}", box=[x0, y0, x1, y1], confidence=0.9)


def _across(count: int = 8) -> list[Line]:
    """Lines 300 wide and 20 high, one under the other."""
    return [_line(10, 10 + 30 * i, 310, 30 + 30 * i) for i in range(count)]


def _down(count: int = 8) -> list[Line]:
    """The same lines on a page turned a quarter: 20 wide and 300 high."""
    return [_line(10 + 30 * i, 10, 30 + 30 * i, 310) for i in range(count)]


class Votes:
    """A stand-in classifier: every crop gets ``label``; the crops are kept."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.seen: Crops = []

    def __call__(self, crops: Crops) -> list[tuple[str, float]]:
        self.seen.extend(crops)
        return [(self.labels[i % len(self.labels)], 0.95) for i in range(len(crops))]


PAGE = np.full((400, 400, 3), 255, dtype=np.uint8)


class TestIsSideways:
    def test_lines_across_the_page(self) -> None:
        assert not is_sideways(_across())

    def test_lines_down_the_page(self) -> None:
        assert is_sideways(_down())

    def test_a_few_tall_boxes_do_not_turn_a_page(self) -> None:
        """Single digits and short codes are taller than wide on an upright page too."""
        assert not is_sideways([*_across(1), *_down(2)])

    def test_the_longer_kind_wins(self) -> None:
        """Three short tall boxes (60 high) weigh less than two long wide ones."""
        tall = [_line(10 + 30 * i, 10, 30 + 30 * i, 70) for i in range(3)]
        assert not is_sideways([*tall, *_across(2)])
        assert is_sideways([*tall, _line(0, 0, 100, 10)])


class TestQuarterTurns:
    def test_upright(self) -> None:
        assert quarter_turns(PAGE, _across(), Votes(["0"])) == 0

    def test_upside_down(self) -> None:
        assert quarter_turns(PAGE, _across(), Votes(["180"])) == 2

    def test_sideways_reading_upwards(self) -> None:
        """Turned a quarter clockwise: one quarter counter-clockwise puts it right."""
        assert quarter_turns(PAGE, _down(), Votes(["0"])) == 1

    def test_sideways_reading_downwards(self) -> None:
        assert quarter_turns(PAGE, _down(), Votes(["180"])) == 3

    def test_a_split_vote_keeps_the_page(self) -> None:
        """Half the lines upside down is not enough to turn a page (60 % is needed)."""
        assert quarter_turns(PAGE, _across(), Votes(["180", "0"])) == 0
        assert quarter_turns(PAGE, _across(), Votes(["180", "180", "0"])) == 2

    def test_no_lines_to_vote(self) -> None:
        """Without a line long enough to vote the page stays as it is."""
        votes = Votes(["180"])
        assert quarter_turns(PAGE, [_line(10, 10, 20, 30)], votes) == 0
        assert votes.seen == []

    def test_lines_of_digits_alone_do_not_vote(self) -> None:
        """0, 6, 8 and 9 read as digits either way up: such lines are no evidence."""
        digits = [
            _line(x0, y0, x1, y1, text=f"{i:03d}.00 -1{i}")
            for i, (x0, y0, x1, y1) in enumerate(line.box for line in _across())
        ]
        votes = Votes(["180"])
        assert quarter_turns(PAGE, digits, votes) == 0
        assert votes.seen == []
        # One line with a letter among them votes alone.
        worded = [*digits, _line(10, 300, 200, 320, text="TOTAL 12.00")]
        assert quarter_turns(PAGE, worded, votes) == 2
        assert len(votes.seen) == 1

    def test_voters_are_the_middles_of_the_widest_lines(self) -> None:
        """At most VOTERS crops, each the line's middle 4:1, turned to run across."""
        lines = [_line(5, 5 + 12 * i, 5 + 20 * (i + 3), 15 + 12 * i) for i in range(20)]
        votes = Votes(["0"])
        quarter_turns(np.full((300, 500, 3), 255, dtype=np.uint8), lines, votes)
        assert len(votes.seen) == VOTERS
        assert all(crop.shape[:2] == (10, 40) for crop in votes.seen)
        sideways = Votes(["0"])
        quarter_turns(PAGE, _down(), sideways)
        assert all(crop.shape[0] < crop.shape[1] for crop in sideways.seen)

    def test_a_line_printed_many_times_votes_once(self) -> None:
        """A long receipt's widest line repeated 15 times (here read upside down) is one
        vote against the other lines', not 15 that outvote them."""
        page = np.full((2000, 500, 3), 255, dtype=np.uint8)
        repeated = [
            _line(5, 100 * i, 405, 100 * i + 12, text=f"14-03-18  21:49 T1 {'' if i % 2 else ' '}")
            for i in range(15)
        ]
        others = [_line(5, 100 * i + 50, 305, 100 * i + 62, text=f"item {i}") for i in range(6)]
        for line in repeated:
            x0, y0, x1, y1 = (int(value) for value in line.box)
            page[y0:y1, x0:x1] = 100  # the stand-in classifier knows this line by its grey

        def votes(crops: Crops) -> list[tuple[str, float]]:
            # The repeated line is misread as upside down; the others read right.
            return [("180" if int(crop.min()) == 100 else "0", 0.95) for crop in crops]

        assert quarter_turns(page, [*repeated, *others], votes) == 0
        # Each copy voting (distinct texts) would turn the page.
        copies = [_line(x0, y0, x1, y1) for x0, y0, x1, y1 in (line.box for line in repeated)]
        assert quarter_turns(page, [*copies, *others], votes) == 2


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidOcrEngine]:
    made = RapidOcrEngine()  # orient=True, the default
    yield made
    made.close()


class TestRealReceipts:
    """A real receipt scanned turned, read with the real models."""

    @pytest.mark.parametrize(("stem", "turned"), [("000", 1), ("000", 2), ("000", 3), ("002", 3)])
    def test_a_turned_receipt_reads_as_the_upright_one(
        self, engine: RapidOcrEngine, sroie: Path, stem: str, turned: int
    ) -> None:
        upright = receipt_bgr(sroie, stem)
        expected = read_text(engine.recognize(upright))
        assert engine.last_turns == 0
        turned_page = np.ascontiguousarray(np.rot90(upright, turned))
        got = read_text(engine.recognize(turned_page))
        assert engine.last_turns == (4 - turned) % 4
        # Turned back exactly, the pixels are the upright page's: the same reading.
        assert edit_distance(expected, got) <= 0.02 * len(expected)

    def test_a_gray_page(self, engine: RapidOcrEngine, sroie: Path) -> None:
        """Gray pixels (a PNG saved in mode L) are turned too: the models take 3 channels."""
        gray = np.asarray(
            cv2.cvtColor(receipt_bgr(sroie, "000"), cv2.COLOR_BGR2GRAY), dtype=np.uint8
        )
        expected = read_text(engine.recognize(gray))
        assert engine.last_turns == 0
        got = read_text(engine.recognize(np.ascontiguousarray(np.rot90(gray, 2))))
        assert engine.last_turns == 2
        assert edit_distance(expected, got) <= 0.02 * len(expected)

    def test_without_orient_a_page_upside_down_is_misread(self, sroie: Path) -> None:
        """The check above can fail: the same page, not turned, reads as something else."""
        plain = RapidOcrEngine(orient=False)
        try:
            upright = receipt_bgr(sroie, "000")
            expected = read_text(plain.recognize(upright))
            got = read_text(plain.recognize(np.ascontiguousarray(np.rot90(upright, 2))))
        finally:
            plain.close()
        assert plain.last_turns == 0
        assert edit_distance(expected, got) > 0.5 * len(expected)

    @pytest.mark.parametrize("number", ["006", "060"])
    def test_a_label_of_digits_is_not_turned(self, engine: RapidOcrEngine, number: str) -> None:
        """A tiny label of digits that read as digits upside down too stays upright."""
        drawn = np.full((20, 60), 255, dtype=np.uint8)
        cv2.putText(drawn, number, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1)
        bgr = np.asarray(cv2.cvtColor(drawn, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
        page = Page(ref=PageRef(id="t", source="t.png", page=1, kind="png"), image=bgr)
        # Cropped to its print, as a run does.
        ocr_page(engine, preprocess(page, PreprocessOptions()))
        assert engine.last_turns == 0
        assert read_text(page.lines) == number

    def test_ocr_page_notes_the_turn(self, engine: RapidOcrEngine, sroie: Path) -> None:
        image = np.ascontiguousarray(np.rot90(receipt_bgr(sroie, "000"), 2))
        page = Page(ref=PageRef(id="t", source="t.jpg", page=1, kind="jpeg"), image=image)
        ocr_page(engine, page)
        assert page.notes["ocr"]["turns"] == 2
        assert page.lines and page.lines[0].text.upper() == "TAN WOON YANN"
