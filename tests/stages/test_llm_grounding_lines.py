"""
The field guard's lines: a company or an address is whole lines of the page, an address
spans as many lines as the offline rules' does, and a company is not inside the address.
"""

from __future__ import annotations

import pytest

from stages.llm._grounding import ground_fields, lines_spanned

PAGE = (
    "BLUE HERON STATIONERY\n"
    "(0099887-W)\n"
    "UNIT 4, ORCHID LANE 9,\n"
    "HILLVIEW PARK,\n"
    "55123 RIVERTON, WESTLAND.\n"
    "RECEIPT NO: 77\n"
    "DATE: 09/10/2019\n"
    "TOTAL 12.40\n"
)
OFFLINE = {
    "company": "BLUE HERON STATIONERY",
    "address": "UNIT 4, ORCHID LANE 9, HILLVIEW PARK, 55123 RIVERTON, WESTLAND.",
    "date": "09/10/2019",
    "total": "12.40",
}
ADDRESS = "UNIT 4 ORCHID LANE 9 HILLVIEW PARK 55123 RIVERTON WESTLAND"


class TestLinesSpanned:
    """How many whole lines of the page a value is."""

    @pytest.mark.parametrize(
        ("value", "lines"),
        [
            ("BLUE HERON STATIONERY", 1),
            ("Blue Heron Stationery", 1),
            ("BLUE HERON STATIONERY (0099887-W)", 2),
            ("55123 RIVERTON WESTLAND", 1),
            (ADDRESS, 3),
            ("UNIT 4, ORCHID LANE 9, HILLVIEW PARK", 2),
        ],
    )
    def test_whole_lines_are_counted(self, value: str, lines: int) -> None:
        """Case and punctuation do not matter; a run of lines counts each."""
        assert lines_spanned(value, PAGE) == lines

    @pytest.mark.parametrize("value", ["STATIONERY", "RIVERTON", "WESTLAND", "ORCHID LANE"])
    def test_a_piece_of_a_line_is_none(self, value: str) -> None:
        """Words the page holds, cut from a longer line, are not its lines."""
        assert lines_spanned(value, PAGE) is None


class TestGroundFields:
    """The guard replaces a fragment by the offline rules' value, and says why."""

    def test_whole_fields_are_kept(self) -> None:
        fields = {"company": "Blue Heron Stationery", "address": ADDRESS}
        assert ground_fields(fields, PAGE, OFFLINE) == (fields, {})

    @pytest.mark.parametrize("company", ["STATIONERY", "WESTLAND", "RIVERTON, WESTLAND"])
    def test_a_company_cut_from_a_line_is_replaced(self, company: str) -> None:
        """The name's last word, or a town and a state cut from the postcode's line."""
        kept, problems = ground_fields({"company": company}, PAGE, OFFLINE)
        assert kept == {"company": "BLUE HERON STATIONERY"}
        assert problems == {"company": "not whole lines of the text"}

    def test_a_name_printed_beside_its_registration_number_is_kept(self) -> None:
        """The number on the name's line is not the name: the name alone is the whole
        line's name (it was 'not whole lines of the text', and a wrong offline value or
        none took its place)."""
        page = "GOLDEN KETTLE TRADING CO (445566-K)\nLOT 7, MAIN ROAD,\n88100 EASTVALE.\n"
        fields = {"company": "GOLDEN KETTLE TRADING CO"}
        assert ground_fields(fields, page, {"company": None}) == (fields, {})
        _, problems = ground_fields({"company": "KETTLE TRADING"}, page, {"company": None})
        assert problems == {"company": "not whole lines of the text"}  # still a piece

    def test_a_company_within_the_address_lines_is_replaced(self) -> None:
        """A row of the address on a line of its own is not the name."""
        kept, problems = ground_fields({"company": "HILLVIEW PARK"}, PAGE, OFFLINE)
        assert kept == {"company": "BLUE HERON STATIONERY"}
        assert problems == {"company": "within the address"}

    @pytest.mark.parametrize(
        "address", ["55123 RIVERTON, WESTLAND.", "HILLVIEW PARK, 55123 RIVERTON"]
    )
    def test_an_address_of_fewer_lines_than_the_offline_rules_is_replaced(
        self, address: str
    ) -> None:
        """One or two rows of a three-row address."""
        kept, problems = ground_fields({"address": address}, PAGE, OFFLINE)
        assert kept == {"address": OFFLINE["address"]}
        assert problems == {"address": "fewer lines than the address"}

    def test_an_address_cut_from_a_line_is_replaced(self) -> None:
        kept, problems = ground_fields({"address": "ORCHID LANE 9"}, PAGE, OFFLINE)
        assert kept == {"address": OFFLINE["address"]}
        assert problems == {"address": "not whole lines of the text"}

    def test_without_an_offline_address_whole_lines_are_enough(self) -> None:
        """With no address of the rules' to measure against, a row of one is kept."""
        fields = {"company": "HILLVIEW PARK", "address": "55123 RIVERTON, WESTLAND."}
        assert ground_fields(fields, PAGE, {}) == (fields, {})
