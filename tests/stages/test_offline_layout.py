from __future__ import annotations

from stages.offline import fix_layout


class TestFixLayout:
    """Deterministic layout rules."""

    def test_joins_hyphenated_line_breaks(self) -> None:
        """A word split with a hyphen at the line end is joined."""
        assert fix_layout("TAX INVOI-\nCE NO: 12") == "TAX INVOICE NO: 12"
        assert fix_layout("Thank you for shop-\n ping") == "Thank you for shopping"

    def test_keeps_hyphens_that_are_not_word_breaks(self) -> None:
        """Codes, decorations and rules ending in a hyphen keep their line break."""
        for text in ("SR 100100000060-\n4 VEGE", "-INVOICE-\nCHOPPING BOARD", "-----\nTOTAL"):
            assert fix_layout(text) == text

    def test_collapses_spaces_and_strips(self) -> None:
        """Runs of spaces become one; tabs are spaces; ends are stripped."""
        assert fix_layout("  TOTAL \t  RM    9.00  ") == "TOTAL RM 9.00"

    def test_normalises_unicode_punctuation(self) -> None:
        """Typographic quotes, dashes, full-width forms and no-break spaces become ASCII."""
        text = "\u201cMR D.I.Y.\u201d \u2013 McDonald\u2019s\u00a0\uff1aC1\u22121 35.5\u00d725.5CM"
        assert fix_layout(text) == '"MR D.I.Y." - McDonald\'s :C1-1 35.5x25.5CM'

    def test_strips_invisible_and_garbage_characters(self) -> None:
        """Control, zero-width, private-use and replacement characters are dropped."""
        assert fix_layout("TO\u200bTAL\x07 9.00\ufffd\ue000") == "TOTAL 9.00"

    def test_drops_empty_lines_only(self) -> None:
        """Blank lines go; punctuation-only lines (printed rules, ``%``) stay."""
        assert fix_layout("A\n\n   \n*****\n%\r\nB\n") == "A\n*****\n%\nB"

    def test_one_output_line_per_input_line(self) -> None:
        """Without hyphen breaks or blank lines the line count is unchanged."""
        text = "DATE: 25/12/2018\nTotal :\n9.00\nCASH 10.00"
        assert fix_layout(text).split("\n") == text.split("\n")

    def test_joins_prices_split_at_the_decimal_point(self) -> None:
        """``9 .00`` and ``12. 50`` are one price; lists like ``55, 57`` are not touched."""
        assert fix_layout("RM 9 .00 RM12. 50") == "RM 9.00 RM12.50"
        assert fix_layout("NO.53 55, 57 & 59") == "NO.53 55, 57 & 59"

    def test_is_idempotent(self) -> None:
        """Fixing fixed text changes nothing."""
        text = "TAX INVOI-\nCE\n\n\u201cA\u201d  B\u200b\nRM 9 .00"
        assert fix_layout(fix_layout(text)) == fix_layout(text)
