"""The flexible character accuracy: OCR errors counted with reading order ignored."""

from __future__ import annotations

import pytest

from stages._page import Line
from stages.offline import (
    character_error_rate,
    flexible_character_accuracy,
    flexible_edits,
    score_receipt,
)
from stages.offline._flexible import Coefficients

#: The sentence of the paper's figure 4 (Clausner et al. 2020), as its cases cut it.
_FROGS = ("Eight happy frogs scuba dived", "Jenny chick flaps white wings")


class TestFlexibleEdits:
    """`flexible_edits` and `flexible_character_accuracy` on small line lists."""

    def test_swapped_lines_cost_nothing(self) -> None:
        """Two lines in the other order: no error, where the ordered CER counts many."""
        truth, ocr = ["TOTAL 12.30", "CASH 20.00"], ["CASH 20.00", "TOTAL 12.30"]
        assert flexible_edits(truth, ocr) == (0, 21)
        assert flexible_character_accuracy(truth, ocr) == 1.0
        assert 1 - character_error_rate("\n".join(truth), "\n".join(ocr)) < 0.5

    def test_one_substitution_is_one_error(self) -> None:
        """One misread character, with the lines also reordered, counts exactly one."""
        truth = ["GST ID : 001609584640", "TAX INVOICE", "ASIA MART"]
        ocr = ["ASIA MART", "TAX INVOICE", "GST ID : 00160958464O"]
        assert flexible_edits(truth, ocr) == (1, 41)

    def test_missing_line_counts_its_characters(self) -> None:
        """A line the OCR did not read: one deletion per character."""
        truth = ["ASIA MART", "DATE: 22/12/2017", "TAX INVOICE"]
        assert flexible_edits(truth, ["TAX INVOICE", "ASIA MART"]) == (16, 36)

    def test_extra_line_counts_as_insertions(self) -> None:
        """A line the truth does not have: one insertion per character, same denominator."""
        truth = ["ASIA MART", "TAX INVOICE"]
        errors, chars = flexible_edits(truth, ["GA1801", "TAX INVOICE", "ASIA MART"])
        assert (errors, chars) == (6, 20)
        assert flexible_character_accuracy(truth, ["GA1801", *truth]) == pytest.approx(0.7)

    def test_line_split_differently_costs_nothing(self) -> None:
        """One side's line is two on the other: the space at the cut is not an error."""
        assert flexible_edits(["DOC NO: CS02070163"], ["CS02070163", "DOC NO:"]) == (0, 18)
        assert flexible_edits(["DOC NO:", "CS02070163"], ["DOC NO: CS02070163"]) == (0, 17)

    @pytest.mark.parametrize(
        ("ocr", "accuracy"),
        [
            pytest.param([_FROGS[1], _FROGS[0]], 1.0, id="B reordered"),
            pytest.param([_FROGS[0]], 0.5, id="E part missing"),
            pytest.param([], 0.0, id="F all missing"),
        ],
    )
    def test_paper_figure_4(self, ocr: list[str], accuracy: float) -> None:
        """The paper's figure 4 cases that do not cut lines at a space give its figures."""
        assert flexible_character_accuracy(list(_FROGS), ocr) == pytest.approx(accuracy)

    def test_paper_figure_4_added_parts(self) -> None:
        """Figure 4 G: text the truth lacks counts against the truth's length (0.621)."""
        accuracy = flexible_character_accuracy([_FROGS[0]], [_FROGS[0], "Jenny chick"])
        assert accuracy == pytest.approx(1 - 11 / 29)

    def test_empty(self) -> None:
        """Nothing on either side is a perfect page; OCR of an empty truth is all errors."""
        assert flexible_edits([], []) == (0, 0)
        assert flexible_character_accuracy([], []) == 1.0
        assert flexible_character_accuracy(["", " "], ["ABC"]) == pytest.approx(1 - 3 / 1)

    def test_no_coefficients(self) -> None:
        """An empty coefficient grid is refused rather than scored as a perfect page."""
        with pytest.raises(ValueError):
            flexible_edits(["A"], ["A"], coefficients=[])

    def test_one_coefficient_set(self) -> None:
        """A single coefficient set still matches the lines."""
        edits = flexible_edits(
            ["AB", "CD"], ["CD", "AX"], coefficients=[Coefficients(25, 20, 1, 4)]
        )
        assert edits == (1, 4)


class TestScoreReceipt:
    """`score_receipt(flexible=True)` beside the ordered character accuracy."""

    def test_row_grouped_differently(self) -> None:
        """The truth's own row for the date is the OCR's neighbour of DOC NO: no error."""
        truth = [
            Line(text="DOC NO", box=[0, 0, 60, 10], confidence=1.0),
            Line(text=": CS02070163", box=[100, 0, 200, 10], confidence=1.0),
            Line(text="DATE: 22/12/2017", box=[0, 12, 150, 22], confidence=1.0),
        ]
        # A tilted scan: the date sits higher on the right, in the DOC NO row.
        ocr = [
            Line(text="Doc No", box=[0, 12, 60, 22], confidence=1.0),
            Line(text=": CS02070163", box=[100, 20, 200, 30], confidence=1.0),
            Line(text="Date: 22/12/2017", box=[210, 8, 360, 18], confidence=1.0),
        ]
        score = score_receipt(ocr, truth, {}, fields=(), flexible=True)
        assert score.edits["raw"] > 0
        assert score.flexible == (0, 34)

    def test_off_by_default(self) -> None:
        """The flexible figure costs seconds a receipt, so it is computed only on request."""
        line = Line(text="ASIA MART", box=[0, 0, 90, 10], confidence=1.0)
        assert score_receipt([line], [line], {}, fields=()).flexible is None
