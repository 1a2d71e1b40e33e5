"""The address ceiling `benchmarks/accuracy_offline.py` prints: which key addresses a
receipt's own transcript lines can spell (`spelt`)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from accuracy_offline import spelt  # noqa: E402

LINES = [
    "GOOD SHOP SDN BHD",
    "(123456-A)",
    "NO 1, JALAN SATU,",
    "TAMAN DUA",
    "12345 KOTA",
    "TEL: 03-1234 5678",
]


def test_lines_in_order_joined_by_a_space() -> None:
    """The usual case: the address's rows, one after another, each after a space."""
    assert spelt(LINES, "NO 1, JALAN SATU, TAMAN DUA 12345 KOTA")


def test_each_join_may_differ() -> None:
    """A comma and space added after one row, nothing after another."""
    assert spelt(LINES, "NO 1, JALAN SATU,TAMAN DUA, 12345 KOTA")


def test_a_line_may_be_skipped() -> None:
    """The registration number between the name and the address is left out."""
    assert spelt(LINES, "GOOD SHOP SDN BHD NO 1, JALAN SATU,")


def test_case_and_space_runs_are_forgiven_as_the_scorer_does() -> None:
    assert spelt(LINES, "no 1,  jalan satu, taman dua")


def test_what_the_print_does_not_hold_is_not_spelt() -> None:
    """A key with a letter the print lacks, a comma dropped inside a row, or the rows out
    of order cannot be spelt; nor can an empty key."""
    assert not spelt(LINES, "NO 1, JALAN SATU, TAMAN DUAA 12345 KOTA")
    assert not spelt(LINES, "NO 1 JALAN SATU, TAMAN DUA")
    assert not spelt(LINES, "TAMAN DUA NO 1, JALAN SATU,")
    assert not spelt(LINES, "")


def test_a_value_spans_at_most_the_window() -> None:
    """The first and last line of a value lie within ``window`` consecutive lines."""
    assert spelt(LINES, "GOOD SHOP SDN BHD TEL: 03-1234 5678")
    assert not spelt(LINES, "GOOD SHOP SDN BHD TEL: 03-1234 5678", window=5)
