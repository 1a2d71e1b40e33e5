from __future__ import annotations

import random
import threading

import pytest

from stages._page import Line
from stages.offline import (
    character_error_rate,
    correct_lines,
    correct_text,
    edit_distance,
    field_match,
    load_dictionary,
    text_similarity,
)


class TestCorrectText:
    """The conservative dictionary corrector."""

    def test_fixes_ocr_glyph_confusions(self) -> None:
        """Look-alike letter substitutions in common words are corrected."""
        assert correct_text("CASHLER") == "CASHIER"
        assert correct_text("Subtotai:") == "Subtotal:"
        assert correct_text("GOODS SOLD ARE NOT REFUNDAELE,") == "GOODS SOLD ARE NOT REFUNDABLE,"

    def test_preserves_case_pattern(self) -> None:
        """UPPER, lower and Title tokens keep their pattern; mixed case is left alone."""
        assert correct_text("Cashler cashler CASHLER") == "Cashier cashier CASHIER"
        assert correct_text("CaShLeR") == "CaShLeR"

    def test_keeps_numbers_codes_prices_dates(self) -> None:
        """Digits, codes glued to digits, prices, dates and punctuation are untouched."""
        text = "SR 100100000060- 4 VEGE $5.50 RM9.00 25/12/2018 8:13:39 PM T0TAL INV0ICE #:OR1803"
        assert correct_text(text) == text

    def test_a_line_read_surely_is_left_as_read(self) -> None:
        """Only lines the engine was unsure of are corrected (round 25's audit: Malay
        words read right at confidence 1.0 became English ones, SEGAR -> SUGAR)."""
        lines = [
            Line("TABUAN CASHLER", [0, 0, 10, 10], 0.999),
            Line("TABUAN CASHLER", [0, 20, 10, 30], 0.95),
        ]
        assert correct_lines(lines) == ["TABUAN CASHLER", "LABUAN CASHIER"]

    def test_common_malay_receipt_words_stay(self) -> None:
        """Everyday Malay words of shop names are in the vocabulary, so even an unsure
        line keeps them (round 25's audit: 11 of 233 were rewritten)."""
        text = "IKAN BAKAR SAYUR SEGAR SIRAP PISANG BILIS PRIMA SELERA"
        assert correct_text(text) == text

    def test_keeps_proper_nouns_and_malay_words(self) -> None:
        """Unknown words without a look-alike fix, and Malay words, stay as printed."""
        text = "NO.53, JALAN BESAR, TAMAN SETIA, 81200 JOHOR BAHRU, TAMPOI, PERMAS JAYA"
        assert correct_text(text) == text

    def test_short_tokens_are_not_corrected(self) -> None:
        """Tokens shorter than ``min_length`` are too ambiguous to correct."""
        assert correct_text("TOTAI") == "TOTAL"
        assert correct_text("TOTAI", min_length=6) == "TOTAI"

    def test_ambiguous_suggestions_are_left(self) -> None:
        """When two words are about as likely, the token stays."""
        assert correct_text("COTIN") == "COTIN"  # COIN or COLIN?

    def test_line_structure_is_kept(self) -> None:
        """Line breaks and spaces are preserved byte for byte."""
        text = "Cashler:  MANIS\n\nTotal :   9.00\n"
        assert correct_text(text) == "Cashier:  MANIS\n\nTotal :   9.00\n"

    def test_dictionary_loads_once_across_threads(self) -> None:
        """Concurrent first calls share one dictionary."""
        seen: list[object] = []
        threads = [
            threading.Thread(target=lambda: seen.append(load_dictionary())) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(item) for item in seen}) == 1


def _reference_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


class TestMetrics:
    """Edit distance, CER and field matching."""

    def test_edit_distance_matches_dynamic_programming(self) -> None:
        """The bit-parallel distance equals the textbook algorithm."""
        rng = random.Random(7)
        for _ in range(500):
            a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 90)))
            b = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 90)))
            assert edit_distance(a, b) == _reference_distance(a, b)

    def test_cer_values(self) -> None:
        """CER is edits over reference length, after whitespace normalisation."""
        assert character_error_rate("TOTAL 9.00", "TOTAL 9.00") == 0.0
        assert character_error_rate("TOTAL 9.00", "T0TAL 9.00") == pytest.approx(0.1)
        assert character_error_rate("TOTAL\n9.00", "TOTAL   9.00") == 0.0
        assert character_error_rate("TOTAL\n9.00", "TOTAL   9.00", normalize=False) > 0
        assert character_error_rate("", "") == 0.0
        assert character_error_rate("", "x") == 1.0

    def test_field_match_exact_and_fuzzy(self) -> None:
        """Date and total match exactly; company and address fuzzily."""
        assert field_match("date", "25/12/2018", "25/12/2018")
        assert not field_match("date", "25/12/2018", "25/12/18")
        assert not field_match("total", "9.00", None)
        assert field_match("total", "", None)
        assert field_match("address", "NO.53, JALAN BESAR", "NO. 53,JALAN BESAR")
        assert field_match(
            "company", "BOOK TA .K (TAMAN DAYA) SDN BHD", "BOOK TA K (TAMAN DAYA) SDN BHD"
        )
        assert not field_match("company", "ABC HO TRADING", "SOON HUAT MACHINERY")
        assert text_similarity("", "") == 1.0
