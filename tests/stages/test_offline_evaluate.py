"""Scoring output records the SROIE way: exact fields, similarity beside them, one pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stages._page import Line
from stages.evaluate import Truth, evaluate
from stages.offline import MISS_CLASSES, exact_match, miss_class, score_receipt


def _truth() -> dict[tuple[str, int], Truth]:
    fields = {
        "company": "PUNCAK PAINT & ELECTRICAL",
        "date": "09-10-2019",
        "address": "NO. 9, JALAN MAWAR 4, 47000 SUNGAI BULOH",
        "total": "12.30",
    }
    return {
        ("a.jpg", 1): Truth("PUNCAK PAINT", fields),
        ("b.jpg", 1): Truth("PUNCAK PAINT", {**fields, "total": ""}),
    }


def _records(consumed: list[str]) -> Iterator[dict[str, Any]]:
    """A stream of records that notes each one as it is read."""
    rows: list[dict[str, Any]] = [
        {
            "source": "in/a.jpg",
            "page": 1,
            "text": "PUNCAK PAINT",
            "corrected": "PUNCAK PAINT",
            "fields": {
                "company": "puncak  paint & electrical",
                "date": "09-10-2019",
                "address": "NO. 9, JALAN MAWAR 4 47000 SUNGAI BULOH",
                "total": "12.30",
            },
        },
        {
            "source": "in/b.jpg",
            "page": 1,
            "text": "PUNCAK PAIN",
            "corrected": "PUNCAK PAINT",
            "fields": {"company": "PUNCAK PAINT &", "date": None, "address": None},
        },
        {"source": "in/unknown.jpg", "page": 1, "text": "X", "fields": {}},
    ]
    for row in rows:
        consumed.append(row["source"])
        yield row


class TestEvaluate:
    """`evaluate` on a stream of records."""

    def test_exact_match_with_similarity_beside_it(self) -> None:
        """Fields count only when whole; similarity is reported apart."""
        accuracy = evaluate(_records([]), _truth())
        assert accuracy.pages == 2
        assert accuracy.fields["company"] == (1, 2)  # case and spaces forgiven, a cut name not
        assert accuracy.fields["address"] == (0, 2)  # one comma missing is a miss
        assert accuracy.fields["date"] == (1, 2)
        assert accuracy.fields["total"] == (1, 1)  # an empty true value is not scored
        assert 0.5 < accuracy.mean_similarity("company") < 1.0
        assert 0.4 < accuracy.mean_similarity("address") < 0.5  # one near miss, one None
        report = "\n".join(accuracy.lines())
        assert "company  exact 1/2 = 0.500" in report and "mean similarity" in report
        assert accuracy.cer_corrected == 0.0 < accuracy.cer_text

    def test_misses_are_counted_by_kind(self) -> None:
        """A dropped comma, a cut name and a missing value are told apart in the report."""
        accuracy = evaluate(_records([]), _truth())
        assert accuracy.misses["address"] == {"spaces/punctuation only": 1, "missing": 1}
        assert accuracy.misses["company"] == {"block too short": 1}
        assert accuracy.misses["date"] == {"missing": 1}
        assert "total" not in accuracy.misses  # every scored total matched
        report = "\n".join(accuracy.lines())
        assert "misses: missing 1, spaces/punctuation only 1" in report

    def test_a_page_cut_into_receipts_counts_as_missed(self) -> None:
        """A page the truth holds whole, cut into two receipt records: scored once, every
        field missed, and the report says so (it is not left out of the figures)."""
        fields = {"company": "PUNCAK PAINT & ELECTRICAL", "date": "", "address": "", "total": ""}
        parts = [
            {
                "source": "in/a.jpg",
                "page": 1,
                "text": "PUNCAK",
                "fields": {"company": "PUNCAK PAINT & ELECTRICAL"},
                "receipt": {"index": index, "of": 2, "region": [0, 0, 10, 10]},
            }
            for index in (1, 2)
        ]
        accuracy = evaluate(iter(parts), {("a.jpg", 1): Truth("PUNCAK", fields)})
        assert accuracy.pages == 1 and accuracy.split == 1
        assert accuracy.fields["company"] == (0, 1)
        assert accuracy.misses["company"] == {"split": 1}
        assert "1 cut into receipts: their fields missed" in "\n".join(accuracy.lines())

    def test_an_error_record_is_scored_on_the_fields_it_keeps(self) -> None:
        """A page whose LLM stage failed keeps the offline rules' fields, which the CSV
        writes: the score judges them too, and says how many pages were error records."""
        fields = {"company": "PUNCAK PAINT", "date": "09-10-2019", "address": "", "total": ""}
        failed = {
            "source": "in/a.jpg",
            "page": 1,
            "status": "error",
            "text": "PUNCAK PAINT",
            "fields": None,
            "fallback_fields": {"company": "PUNCAK PAINT", "date": "09-10-2019"},
            "error": {"stage": "structure", "type": "LlmOutputError", "message": "invalid"},
        }
        bare = {**failed, "source": "in/b.jpg"}
        del bare["fallback_fields"]
        truth = {(name, 1): Truth("PUNCAK PAINT", fields) for name in ("a.jpg", "b.jpg")}
        accuracy = evaluate(iter([failed, bare]), truth)
        assert accuracy.fields["company"] == (1, 2)
        assert accuracy.fields["date"] == (1, 2)
        assert accuracy.misses["company"] == {"missing": 1}
        assert (accuracy.errors, accuracy.fallback) == (2, 1)
        assert accuracy.lines()[0] == (
            "accuracy over 2 pages with ground truth (2 error record(s), 1 of them scored on "
            "the offline fields kept in the record and the CSV):"
        )

    def test_pages_with_truth_but_no_record_are_counted_and_named(self) -> None:
        """Truth of pages the output lacks: the report counts them and names the first
        five, in the truth's order (they were dropped without a word)."""
        truth = _truth()
        extra = Truth("X", {})
        truth[("a.jpg", 2)] = extra
        for n in range(7):
            truth[(f"nothere{n}.jpg", 1)] = extra
        accuracy = evaluate(_records([]), truth)
        assert accuracy.pages == 2 and accuracy.truth == 10
        assert accuracy.missing[:2] == ["'a.jpg' page 2", "'nothere0.jpg' page 1"]
        assert accuracy.lines()[-1] == (
            "8 of the 10 pages with ground truth have no page in the output (not scored): "
            "'a.jpg' page 2, 'nothere0.jpg' page 1, 'nothere1.jpg' page 1, 'nothere2.jpg' "
            "page 1, 'nothere3.jpg' page 1, and 3 more"
        )

    def test_every_page_with_truth_matched_says_nothing_more(self) -> None:
        """With a record for each page of the truth, no such line."""
        accuracy = evaluate(_records([]), _truth())
        assert accuracy.missing == []
        assert not any("no page in the output" in line for line in accuracy.lines())

    def test_consumes_any_iterable_once(self) -> None:
        """A generator is read once, in order, to its end."""
        consumed: list[str] = []
        evaluate(_records(consumed), _truth())
        assert consumed == ["in/a.jpg", "in/b.jpg", "in/unknown.jpg"]


class TestMissClass:
    """`miss_class` names each kind of field miss, counted without reading the receipts."""

    @pytest.mark.parametrize(
        ("expected", "predicted", "kind"),
        [
            ("NO. 9, JALAN MAWAR 4", "no. 9,  jalan mawar 4", "exact"),
            ("NO. 9, JALAN MAWAR 4", None, "missing"),
            ("NO. 9, JALAN MAWAR 4", "NO.9,JALAN MAWAR 4", "spaces only"),
            ("NO. 9, JALAN MAWAR 4", "NO 9. JALAN MAWAR 4", "spaces/punctuation only"),
            ("NO. 9, JALAN MAWAR 4", "(CO.REG 123-X) NO. 9, JALAN MAWAR 4", "block too long"),
            ("NO. 9, JALAN MAWAR 4, 47000 SUNGAI BULOH", "JALAN MAWAR 4", "block too short"),
            ("NO. 9, JALAN MAWAR 4", "NO. 8, JALAN MAVAR 4", "1-2 characters misread"),
            ("NO. 9, JALAN MAWAR 4", "PUNCAK PAINT", "other"),
        ],
    )
    def test_each_kind(self, expected: str, predicted: str | None, kind: str) -> None:
        """One example per class, tried in the documented order."""
        assert miss_class(expected, predicted) == kind
        assert kind in MISS_CLASSES

    def test_an_exact_match_is_never_a_miss_class(self) -> None:
        """`exact` agrees with `exact_match`; a space inside a word is a miss."""
        assert exact_match("SDN BHD", "sdn  bhd") and miss_class("SDN BHD", "sdn  bhd") == "exact"
        assert not exact_match("SDN BHD", "SDNBHD")
        assert miss_class("SDN BHD", "SDNBHD") == "spaces only"


class TestScoreReceipt:
    """`score_receipt` keeps the spacing diagnostic apart from the character score."""

    def test_spacing_counts_in_the_score_not_in_the_diagnostic(self) -> None:
        """Spaces moved around commas cost edits, and none once spaces are removed."""
        truth = [Line("NO.53, JALAN SAGU", [0.0, 0.0, 200.0, 20.0], 1.0)]
        ocr = [Line("NO. 53,JALAN SAGU", [0.0, 0.0, 200.0, 20.0], 0.9)]
        score = score_receipt(ocr, truth, {"address": "NO.53, JALAN SAGU"})
        assert score.edits["raw"] == 2
        assert score.nospace == (0, len("NO.53,JALANSAGU"))
        # A lone row is taken for the company; scored as SROIE does, spaces count.
        assert score.predicted["company"] == "NO. 53,JALAN SAGU"
        assert not exact_match("NO.53, JALAN SAGU", score.predicted["company"])
        assert miss_class("NO.53, JALAN SAGU", score.predicted["company"]) == "spaces only"
