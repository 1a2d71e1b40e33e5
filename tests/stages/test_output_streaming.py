"""
The document app's end-of-run readers take the output as a stream (issue 16): the
``--truth`` scoring, the CSV export and the closing report's count of error records each
stay within a few MiB of Python memory on an output of tens of MiB.  Reading the output
whole (``read_bytes``, ``readlines``, a list of its records) would break the bound, and
the first test shows that it does.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from csv import reader
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncpipe._summary import _count_outcomes
from stages._csv import write_csv
from stages._resumed import read_records
from stages.evaluate import Truth, evaluate

PAGES = 12_000
TEXT = "TOTAL 12.30 PUNCAK PAINT"
FILLER = "PUNCAK PAINT & ELECTRICAL " * 180  # a page's other fields: ~4.7 KB
#: Peak Python memory allowed while reading: the output is about 7 times larger.
BOUND = 8 << 20


def _record(n: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"scan{n}.jpg#1",
        "status": "ok",
        "source": f"in/scan{n}.jpg",
        "page": 1,
        "text": TEXT,
        "corrected": TEXT,
        "extra": FILLER,
        "fields": {"company": "PUNCAK PAINT", "date": "09-10-2019", "total": "12.30"},
    }
    if n % 97 == 0:
        record["status"] = "error"
        record["error"] = {"stage": "ocr", "type": "OcrError", "message": "x", "attempts": 1}
        del record["fields"]
    return record


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "out.jsonl"
    with open(path, "wb") as fh:
        for start in range(0, PAGES, 1000):
            fh.write(b"".join(orjson.dumps(_record(n)) + b"\n" for n in range(start, start + 1000)))
    assert path.stat().st_size > 6 * BOUND
    return path


def _peak(read: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``read``; return its result and the peak of Python memory it took."""
    tracemalloc.start()
    try:
        result = read()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _truth() -> dict[tuple[str, int], Truth]:
    fields = {"company": "PUNCAK PAINT", "date": "09-10-2019", "total": "12.30"}
    return {(f"scan{n}.jpg", 1): Truth(TEXT, fields) for n in range(0, PAGES, 10)}


class TestOutputReadAsAStream:
    def test_the_bound_catches_a_whole_read(self, output: Path) -> None:
        """Reading the output whole, or listing its records, breaks the bound."""
        assert _peak(output.read_bytes)[1] > BOUND
        assert _peak(lambda: list(read_records(output)))[1] > BOUND

    def test_truth_scoring_streams(self, output: Path) -> None:
        """--truth: every page with truth is scored, within the bound."""
        truth = _truth()
        accuracy, peak = _peak(lambda: evaluate(read_records(output), truth))
        assert accuracy.pages == len(truth)
        assert accuracy.fields["total"] == (len(truth) - len(range(0, PAGES, 970)), len(truth))
        assert peak < BOUND

    def test_csv_export_streams(self, output: Path, tmp_path: Path) -> None:
        """--csv: one row a page, within the bound."""
        csv = tmp_path / "fields.csv"
        _, peak = _peak(lambda: write_csv(csv, output, ("company", "date", "total")))
        rows = csv.read_text(encoding="utf-8").splitlines()
        assert len(rows) == PAGES + 1
        assert peak < BOUND

    def test_csv_keeps_the_offline_fields_of_a_failed_llm_stage(self, tmp_path: Path) -> None:
        """A page whose structure call failed for good: its row holds the offline rules'
        fields, and its error cell says whose (round 23's audit: the row was empty)."""
        out, csv = tmp_path / "out.jsonl", tmp_path / "fields.csv"
        error = {"stage": "structure", "type": "LlmStatusError", "message": "HTTP 500"}
        records = [
            {"id": "a", "status": "ok", "fields": {"total": "9.00"}, "warnings": ["w1", "w2"]},
            {
                "id": "b",
                "status": "error",
                "fields": None,
                "error": error,
                "fallback_fields": {"total": "62.30"},
            },
            {"id": "c", "status": "error", "fields": None, "error": error},
        ]
        out.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
        write_csv(csv, out, ("total",))
        rows = csv.read_text(encoding="utf-8").splitlines()[1:]
        assert rows[0] == "a,,,,ok,9.00,,w1; w2"
        assert (
            rows[1]
            == "b,,,,error,62.30,structure: LlmStatusError: HTTP 500 (fields: the offline rules'),"
        )
        assert rows[2] == "c,,,,error,,structure: LlmStatusError: HTTP 500,"

    def test_csv_cells_never_start_a_formula(self, tmp_path: Path) -> None:
        """Text a spreadsheet would run as a formula gets a leading quote; a number does
        not (round 24's audit: ``@SUM(1+1) ENTERPRISE`` went in as it was)."""
        out, csv = tmp_path / "out.jsonl", tmp_path / "fields.csv"
        companies = ["@SUM(1+1) ENTERPRISE", "+60 MART SDN BHD", "=1+1", "-x", "\tA", "A=B"]
        records = [
            {"id": f"k{n}", "status": "ok", "fields": {"company": company, "total": "-5.00"}}
            for n, company in enumerate(companies)
        ]
        records.append({"id": '=HYPERLINK("x")', "status": "ok", "fields": {"total": "+3"}})
        out.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
        write_csv(csv, out, ("company", "total"))
        with csv.open(newline="", encoding="utf-8") as fh:
            rows = list(reader(fh))[1:]
        assert [row[5] for row in rows[:-1]] == [
            "'@SUM(1+1) ENTERPRISE",
            "'+60 MART SDN BHD",
            "'=1+1",
            "'-x",
            "'\tA",
            "A=B",
        ]
        assert {row[6] for row in rows} == {"-5.00", "+3"}
        assert rows[-1][0] == '\'=HYPERLINK("x")'

    def test_closing_report_counts_errors_streaming(self, output: Path) -> None:
        """The closing report's line and error counts, within the bound."""
        (lines, errors), peak = _peak(lambda: _count_outcomes(output))
        assert lines == PAGES
        assert errors[("ocr", "OcrError")] == len(range(0, PAGES, 97))
        assert peak < BOUND
