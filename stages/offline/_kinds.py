"""
What Malay shops' names are made of: the words for a company and for a shop's kind that
open a name (``SYARIKAT``, ``KEDAI``, ``RESTORAN`` ...), the trade's words that go on
from them (``KEDAI BUKU DAN ALAT TULIS``), and whether a row is the trade's words alone
or a name that ends in its trade (``POH KONG JEWELLERS``). `find_company` reads a
header's rows with them.
"""

from __future__ import annotations

import re

from ._header import BUSINESS_WORD
from ._vocabulary import TRADE_WORDS, clean_header_text

__all__ = [
    "NAME_OPENING_ONLY",
    "OPENS_WITH_COMPANY",
    "OPENS_WITH_KIND",
    "ends_in_trade",
    "is_trade_word",
    "trade_words_only",
]

# The Malay words for a company or a business, and for a shop's kind, that open a name.
_COMPANY_WORDS = r"SYARIKAT|SYKT\.?|PERNIAGAAN|PERUSAHAAN"
_KINDS = rf"{_COMPANY_WORDS}|KEDAI|RESTORAN|KILANG|PASARAYA|PUSAT|PERKHIDMATAN"
# Words of a trade that go on from a kind, or open a name on their own ...
_TRADE_OPENING = (
    r"MAKAN|MAKANAN|MINUMAN|UBAT|RUNCIT|KOPI|BEKALAN|BAHAN|BINAAN|ALAT|TULIS|PERKAKAS|LAUT|"
    r"BUKU|FOTOSTAT|PERCETAKAN|PERABOT|DOBI|JAHIT|CERMIN|MATA|KAIN|PAKAIAN|EMAS|KASUT|"
    r"TAYAR|BATERI|BUNGA|KEK|ELEKTRIK|MOTOSIKAL|BASIKAL|KERETA|SUKAN|HADIAH|GUNTING|RAMBUT|"
    r"DAN|&"
)
# ... and a dish or a fuel, only after a kind ("RESTORAN NASI KANDAR"; "NASI KANDAR"
# alone is a logo's row).
_DISHES = r"NASI|KANDAR|MEE|ROTI|MINYAK"

# A row of Malay words that open a name and cannot end one: "SYARIKAT PERNIAGAAN" /
# "GUAN HOE SDN BHD", "RESTORAN NASI KANDAR" / "PELITA SDN BHD".
NAME_OPENING_ONLY = re.compile(
    rf"^(?:(?:{_KINDS}|{_TRADE_OPENING})\s*)+$"
    rf"|^(?:{_KINDS})\s(?:(?:{_KINDS}|{_TRADE_OPENING}|{_DISHES})\s*)+$"
)
# A name opening with the Malay for "company" or "business".
OPENS_WITH_COMPANY = re.compile(rf"^(?:{_COMPANY_WORDS})\s")
# A Malay shop's name opens with its kind: "KEDAI UBAT & RUNCIT LIM".
OPENS_WITH_KIND = re.compile(rf"^(?:{_KINDS})\s")


def is_trade_word(word: str) -> bool:
    """A business word or a domain word of the trade: ``RESTAURANT``, ``MATERIALS``."""
    return bool(BUSINESS_WORD.fullmatch(word)) or word in TRADE_WORDS


def ends_in_trade(text: str) -> bool:
    """Whether ``text`` is a name of its own that ends in its trade (``POH KONG
    JEWELLERS``, ``ABC FLORIST``), not the rest of a kind's words wrapped onto it (``TULIS
    MURNI`` under ``KEDAI BUKU DAN ALAT``)."""
    words = clean_header_text(text).split()
    return (
        len(words) > 1
        and is_trade_word(words[-1])
        and re.fullmatch(_TRADE_OPENING, words[0]) is None
    )


def trade_words_only(text: str) -> bool:
    """Whether ``text`` is trade words alone, joined by ``&`` or ``DAN`` at most."""
    words = [word for word in clean_header_text(text).split() if word not in ("&", "DAN", "AND")]
    return bool(words) and all(map(is_trade_word, words))
