"""
Who issued a receipt: the company name, read from the header rows.

The SROIE ground truth writes it in upper case, without the registration number. The
name is the first header row with a legal suffix, joined with the row or two before it
when the name wraps; else the first row with a business word; else the first row that
is not a code or a label (`find_company`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._header import (
    ADDRESS_STOP,
    ADDRESS_WORD,
    BUSINESS_WORD,
    LEGAL_END,
    LEGAL_SUFFIX,
    NAME_TAIL,
    NOT_COMPANY,
    PRAISE_ROW,
    REGISTRATION,
    SPACED_INITIALS,
    clean_row,
    has_postcode,
    header_block,
    is_noise,
    is_registration,
    letter_count,
    opens_address,
)
from ._kinds import (
    NAME_OPENING_ONLY,
    OPENS_WITH_COMPANY,
    OPENS_WITH_KIND,
    ends_in_trade,
    is_trade_word,
    trade_words_only,
)
from ._vocabulary import clean_header_text

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["find_company"]

# "INTERNATIONAL.SDN BHD": a dot glued between a name and its legal suffix is a space.
_DOT_BEFORE_SDN = re.compile(r"(?<=[A-Z])[.\u00b7](?=SDN\b)")

# "OPERATED BY: X SDN BHD", "BY X SDN BHD", "A FRANCHISE OF X SDN BHD", "A DIVISION OF X
# BHD": the operator's name is what follows (a franchisee's, a parent's or a group's is
# not: "A MEMBER OF X BHD" is no company row at all, `NOT_COMPANY`).
_OPERATED_BY = re.compile(
    r"^[\s*=~-]*(?:"
    r"(?:(?:OPERATED|MANAGED|OWNED|MILIK)\s*)?(?:BY|OLEH)\b\s*:?\s*|DEALER\s*:\s*"
    r"|(?:A\s+)?(?:FRANCHISE|DIVISION)\s+[O0]F\b\s*:?\s*)"
)

# A word of a name that holds look-alike digits: 0 or 1 among letters ("S0N", "0NE",
# "AUT0"; `letters_for_digits` has read those between letters in longer words, and 5 and
# 8 among letters).
_NAME_WORD = re.compile(r"(?<![\w.-])[A-Z01]{3,}(?![\w-])")
_NAME_DIGITS = str.maketrans("01", "OI")


# A row that ends in a price, as an item's row does: no shop's name.
_PRICED = re.compile(r"(?<![\d.,])\d{1,6}[.,]\d{2}$")


def _name_word(match: re.Match[str]) -> str:
    """A name's word with its look-alike digits read as letters, when it is a word: two
    letters or more, and no leading 1 (``1STOP`` is a name as printed)."""
    word = match.group(0)
    if word[0] == "1" or letter_count(word) < 2 or word.isalpha():
        return word
    return word.translate(_NAME_DIGITS)


# A 5 or an 8 before a letter in a word of a name, with two letters or more and no other
# digit, is an S or a B: "5IN NAM", "BE5I", "8AK KUT TEH" (not "5TH"; a code ends with
# its digit: "PJU5").
_FIVE_IN_NAME = re.compile(
    r"(?<![\w.-])(?![58]TH\b)(?=(?:[A-Z58]*[A-Z]){2})[A-Z]*[58](?=[A-Z])[A-Z]*(?![\w-])"
)
_AS_LETTERS = str.maketrans("58", "SB")
# A 6 ending a word of two or three letters in a name is a G ("EN6 HIN"), and "C0." a
# company's "CO.".
_G_ENDING_NAME = re.compile(r"(?<=\b[A-Z]{2})6\b|(?<=\b[A-Z]{3})6\b")
_CO_WITH_ZERO = re.compile(r"\bC0(?=\.|$)")
# "0N KEE": an O read as a zero opening a word of two letters.
_ZERO_OPENING_PAIR = re.compile(r"(?<![\w.-])0(?=[A-Z](?![\w-]))")


def _clean_company(row: str) -> str:
    row = _DOT_BEFORE_SDN.sub(" ", clean_header_text(row))
    row = SPACED_INITIALS.sub(r"\1.", row)
    row = REGISTRATION.sub(" ", row)
    row = _NAME_WORD.sub(_name_word, row)
    row = _OPERATED_BY.sub("", row.lstrip())  # after the digits: "0PERATED BY"
    row = _FIVE_IN_NAME.sub(lambda m: m.group(0).translate(_AS_LETTERS), row)
    row = _CO_WITH_ZERO.sub("CO", _G_ENDING_NAME.sub("G", _ZERO_OPENING_PAIR.sub("O", row)))
    row = re.sub(r"[|_]", " ", row)
    row = re.sub(r"\(\s*\)", " ", row)
    row = re.sub(r"\s+", " ", row).strip(" ,:;-*=~#")  # a name boxed in stars or dashes
    # A bracket left open by a registration number cut away: "SDN BHD (" -> "SDN BHD".
    row = row[:-1].strip() if row.endswith("(") else row
    return _cut_after_legal_end(row)


def _cut_after_legal_end(name: str) -> str:
    """
    Drop what follows ``SDN BHD``/``BHD``/``BERHAD``/``S/B``/``PLT`` on the name's row
    when it is a garbled registration number or residue (a digit, or under 3 letters).
    """
    ends = list(LEGAL_END.finditer(name))
    if not ends:
        return name
    end = ends[-1].end()
    tail = name[end:]
    if re.search(r"\d", tail) or letter_count(tail) < 3:
        kept = name[:end].strip(" ,")
        if kept.count("(") > kept.count(")") and tail.lstrip().startswith(")"):
            kept += ")"  # "TEALIVE (LOOB HOLDING SDN BHD)": the bracket it opened
        return kept
    return name


# A name ending in "& CO" has ended: "SIN HUAT & CO" / "HARDWARE & BUILDING MATERIALS".
_ENDS_WITH_CO = re.compile(r"\bCO\b\.?$")
# "& SONS" on a row of its own: a family's or partners' name ends so, with the comma or
# full stop it is printed with at times.
_FAMILY_ROW = re.compile(
    r"& ?(?:SONS?|BROS\.?|BROTHERS|DAUGHTERS|CO\.?|PARTNERS|ASSOCIATES|ANAK-ANAK)[.,]?"
)
# A row ending in "&", "AND" or the Malay "DAN": the name goes on onto the next row.
_NAME_GOES_ON = re.compile(r"(?:&|\bAND|\bDAN)$")


def company_rows(rows: Sequence[str]) -> tuple[int, int] | None:
    """``(first, last)`` row indexes of the company name in the header, or ``None``."""
    header = header_block(rows)
    span = _name_rows(header)
    if span is None:
        return None
    first, last = span
    # "HARDWARE &" / "ELECTRICAL": a name ending in "&" or "AND" goes on to the next row.
    while (
        first > 0
        and _NAME_GOES_ON.search(header[first - 1])
        and not is_noise(header[first - 1])
        and not NOT_COMPANY.search(header[first - 1])
    ):
        first -= 1
    while (
        last + 1 < len(header)
        and _NAME_GOES_ON.search(header[last])
        and not is_noise(header[last + 1])
        and not re.search(r"\d", header[last + 1])
        and not ADDRESS_STOP.search(header[last + 1])
    ):
        last += 1
    # "SOON HUAT MACHINERY" / "ENTERPRISE": a name's ending alone on the row under a
    # name that has none is its last row, wrapped. An ending is a word that ends names
    # (ENTERPRISE, TRADING, SDN BHD ...) or one trade word ("SUPPLIES"); more trade words
    # describe the trade ("HARDWARE & BUILDING MATERIALS"), and so do any under a Malay
    # shop's name ("KEDAI PERABOT LEE" / "FURNITURE"). But a name that opens with the
    # word "company" goes on with any ("SYARIKAT PERNIAGAAN KAMAL" / "ALAT TULIS"), as
    # `_continues` reads it when the trade words are the business row.
    below = header[last + 1] if last + 1 < len(header) else ""
    below_words = below.split()
    ending = len(below_words) == 1 or (below_words and NAME_TAIL.search(below_words[-1]))
    if (
        below_words
        and not NAME_TAIL.search(header[last])
        and not _ENDS_WITH_CO.search(header[last])
        and _names_more(below)
        and trade_words_only(below)
        and (
            OPENS_WITH_COMPANY.match(header[first])
            or (ending and not OPENS_WITH_KIND.match(header[first]))
        )
    ):
        last += 1
    return first, last


def _name_rows(header: list[str]) -> tuple[int, int] | None:
    """The company name's rows in ``header`` before a trailing ``&`` is followed."""
    suffix = next(
        (
            i
            for i, row in enumerate(header)
            if LEGAL_SUFFIX.search(row) and not NOT_COMPANY.search(row)
        ),
        None,
    )
    business = _business_row(header)
    if suffix is not None:
        # A name printed over two or three rows: "AIK HUAT HARDWARE / ENTERPRISE(SETIA /
        # ALAM) SDN BHD". Earlier rows join when they are close, name-like and free of
        # address or label words.
        first = suffix
        if business is not None and business < suffix - 2:
            return business, business  # the earlier name is the seller's
        while first > 0 and first > suffix - 2 and _continues(header[first - 1], header[first]):
            first -= 1
        if first == suffix and suffix > 0 and _owner_in_brackets(header[suffix]):
            # "DIN TAI FUNG" / "(BBTR SDN BHD)": the name printed is the shop's, the
            # company in brackets under it is its owner.
            top = suffix - 1
            if _names_more(header[top]) or BUSINESS_WORD.search(header[top]):
                while top > 0 and _continues(header[top - 1], header[top]):
                    top -= 1
                return top, suffix - 1
        if first == suffix and business == suffix - 1 and _one_word_before_suffix(header[suffix]):
            # "RESTORAN MAMAK" / "CORNER SDN BHD": one word is a name cut short.
            first = business
        return first, suffix
    if business is not None:
        if business > 0 and (
            _continues(header[business - 1], header[business])
            or (trade_words_only(header[business]) and _names_more(header[business - 1]))
        ):
            # "SWEETIE CAKE HOUSE" / "ENTERPRISE": the row above starts the name; so it
            # does above trade words alone ("TEO HENG" / "STATIONERY & BOOKS").
            return business - 1, business
        below = header[business + 1] if business + 1 < len(header) else ""
        opening_only = NAME_OPENING_ONLY.match(header[business]) is not None
        if opening_only and _repeats(header[business], below):
            return business + 1, business + 1  # a logo's words over the name repeating them
        if opening_only and _names_more(REGISTRATION.sub(" ", below), place_inside=True):
            # "KEDAI MAKANAN DAN MINUMAN" / "AH FOOK": the name is on the row below, and
            # so is all of a company's ("PERNIAGAAN BINAAN" / "ALI MAJU ENTERPRISE"). A
            # shop's kind and trade over a name whole on its own ("KEDAI BUKU" / "ABC
            # ENTERPRISE") is a logo's row, and over its trade again ("KEDAI BUNGA" /
            # "FLORIST") the name.
            if OPENS_WITH_COMPANY.match(header[business] + " "):
                return business, business + 1
            if trade_words_only(below):
                return business, business
            if ends_in_trade(REGISTRATION.sub(" ", below)) or NAME_TAIL.search(below):
                return business + 1, business + 1
            return business, business + 1
        if _registered_below(header, business):
            return business + 1, business + 1
        if _wrapped_under_kind(header, business) or _ampersand_below(header, business):
            return business, business + 1
        return business, business
    for i, row in enumerate(header):
        if (
            not is_noise(row)
            and not _PRICED.search(row)  # an item's row: "SSD 480GB 189.00"
            and not NOT_COMPANY.search(row)
            and not ADDRESS_STOP.search(row)
            and not has_postcode(row)  # an address printed above the name
            and not opens_address(header[i:])
        ):
            # "SPIN CITY LAUNDRY" / "SPIN CITY VENTURES" / "(202203045678)": a brand's
            # row over the name its registration number follows, one that ends as names
            # do (not "SELF SERVICE LAUNDRY", the trade's).
            words = header[i + 1].split() if i + 1 < len(header) else []
            registered = (
                len(words) > 1
                and NAME_TAIL.fullmatch(words[-1]) is not None
                and not NAME_TAIL.search(row)
                and _registered_below(header, i)
            )
            # "PET PARADISE" / "PET PARADISE AQUARIUM & PET SUPPLIES" / (number): a
            # logo's words over the registered name that repeats them and goes on.
            over_number = _name_over_number(header, i)
            if registered or (over_number is not None and _names_its_trade(row, over_number)):
                return i + 1, i + 1
            if _wraps_its_trade(header, i):
                return i + 1, i + 2  # ... and so over a name wrapped onto two rows
            wrapped = _wrapped_under_kind(header, i) or _ampersand_below(header, i)
            return (i, i + 1) if wrapped else (i, i)
    return None


def _business_row(header: list[str]) -> int | None:
    """
    The first header row with a business word, above the address: a row of the address
    ("INANAM BUSINESS CENTRE,") is no name, and a brand of one word above another name
    ("PETRONAS" / "AZ JAYA ENTERPRISE") is the brand.
    """
    rows = []
    for index, row in enumerate(header):
        if opens_address(header[index:]) or has_postcode(row):
            break
        if (
            BUSINESS_WORD.search(row)
            and not NOT_COMPANY.search(row)
            and not is_noise(row)
            and not is_registration(row)  # "CO. NO. 1123009-T": its CO is no company's
        ):
            rows.append(index)
    if len(rows) > 1 and rows[1] == rows[0] + 1 and len(header[rows[0]].split()) == 1:
        return rows[1]
    return rows[0] if rows else None


def _owner_in_brackets(row: str) -> bool:
    """Whether ``row`` is a company in brackets: ``(OWNED BY LT F&B SDN BHD)``, not a
    branch in brackets before the suffix (``(SETIA ALAM) SDN BHD``)."""
    suffix = LEGAL_SUFFIX.search(row)
    if not row.startswith("(") or suffix is None:
        return False
    depth = 0
    for index, char in enumerate(row):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index > suffix.start()  # the first bracket closes after the suffix
    return True  # never closed (OCR lost it)


def _registered_below(header: list[str], business: int) -> bool:
    """
    Whether the name is the row under the business row ``business``, the one its
    registration number follows: "AUTO CARE WORKSHOP" / "BENGKEL KERETA MAJU JAYA" /
    "(IP0289913-H)", a brand's row over the name. Not a trade's description ("KEDAI
    PERABOT LEE" / "FURNITURE & HOME DECO"), nor a second name under a Malay shop's
    own, unless that one is registered so ("KEDAI SUKAN JUARA" / "JUARA SPORTS
    TRADING"), nor a line under a name that ends as one ("LIM HARDWARE TRADING" /
    "DEALER IN BUILDING MATERIALS").
    """
    below = _name_over_number(header, business)
    if below is None or trade_words_only(below) or below.startswith("&"):
        return False  # "& SONS" goes on the name above it
    if NAME_TAIL.search(header[business]) and not NAME_TAIL.search(below):
        return False  # "LIM HARDWARE TRADING" / "DEALER IN BUILDING MATERIALS"
    return not OPENS_WITH_KIND.match(header[business]) or NAME_TAIL.search(below) is not None


def _name_over_number(header: list[str], index: int) -> str | None:
    """The row under ``header[index]`` when it could go on a name (words, no digit or
    label, not a note in brackets) and the registration number is the row under it."""
    if index + 2 >= len(header) or not is_registration(header[index + 2]):
        return None
    below = header[index + 1]
    slogan = PRAISE_ROW.match(below) is not None
    return below if _names_more(below) and not _bracketed(below) and not slogan else None


def _ampersand_below(header: list[str], index: int) -> bool:
    """Whether the row under ``header[index]`` is ``&`` and a family's or partners' word
    (``LIM HARDWARE`` / ``& SONS``), the end of the name above. Not a slogan or a trade
    (``& MANY MORE``, ``& BUILDING MATERIALS``)."""
    below = header[index + 1] if index + 1 < len(header) else ""
    return _FAMILY_ROW.fullmatch(below.strip()) is not None and _continues(header[index], below)


def _wrapped_under_kind(header: list[str], index: int) -> bool:
    """
    Whether the row under ``header[index]``, a Malay shop's kind and trade with no name
    ending (``KEDAI ALAT GANTI MOTOR``), is its own name wrapped onto the next row
    (``SENG KEONG``): a few words that could go on a name and are no name of their own
    (no business word, ending or trade) nor a trade again, with the registration number
    under them. Without the number, such a row is as often a town, a label, a slogan or
    the owner's name (``PEKAN LUKUT``, ``BIL TUNAI``, ``HALAL``, ``TAN AH KOW``).
    """
    if not OPENS_WITH_KIND.match(header[index]):
        return False
    if NAME_TAIL.search(header[index]) or _ENDS_WITH_CO.search(header[index]):
        return False
    below = _name_over_number(header, index)
    if below is None:
        return False
    words = clean_header_text(below).split()
    return (
        0 < len(words) <= 4
        and not below.rstrip().endswith(",")  # an address's first row
        and words[0] not in ("CAWANGAN", "BRANCH", "OUTLET")
        and not BUSINESS_WORD.search(below)
        and not NAME_TAIL.search(below)
        and not any(map(is_trade_word, words))
    )


def _bracketed(row: str) -> bool:
    """Whether ``row`` is all in one pair of brackets: a note to the name above
    (``(CHERAS BRANCH)``), not a name."""
    return row.startswith("(") and row.endswith(")") and row.count("(") == 1


def _names_its_trade(logo: str, row: str) -> bool:
    """Whether ``row`` repeats the ``logo`` row's words and goes on with its trade
    (``PET ABC`` / ``PET ABC AQUARIUM & PET SUPPLIES``): not a branch, a mall or a slogan
    (``SUSHI ZEN CHERAS``, ``UNIQLO IOI CITY MALL``, ``SEDAP SAMPAI KE TULANG``)."""
    if not _repeats(logo, row):
        return False
    more = row.split()[len(logo.split()) :]
    return any(map(is_trade_word, more)) or NAME_TAIL.search(" ".join(more)) is not None


def _wraps_its_trade(header: list[str], logo: int) -> bool:
    """Whether the name under the ``logo`` row names its trade over two rows, the first
    ending in ``&``, ``AND`` or ``DAN``, over the registration number (``PET ABC`` /
    ``PET ABC AQUARIUM &`` / ``PET SUPPLIES`` / number)."""
    if logo + 1 >= len(header) or not _NAME_GOES_ON.search(header[logo + 1]):
        return False
    rest = _name_over_number(header, logo + 1)
    first = header[logo + 1]
    return (
        rest is not None
        and _names_more(first)
        and _names_its_trade(header[logo], f"{first} {rest}")
    )


def _repeats(opening: str, row: str) -> bool:
    """Whether ``row`` opens with the words of ``opening`` and goes on."""
    words = opening.split()
    return row.split()[: len(words)] == words and len(row.split()) > len(words)


def _one_word_before_suffix(row: str) -> bool:
    """Whether ``row`` holds one word before its legal suffix (``CORNER SDN BHD``)."""
    suffix = LEGAL_SUFFIX.search(row)
    return suffix is not None and len(row[: suffix.start()].split()) == 1


def _names_more(row: str, *, place_inside: bool = False) -> bool:
    """
    Whether ``row`` can go on with a name: words, no digit, no label, no address word;
    with ``place_inside``, a place word after the first word of a row without a comma
    is a name's ("RESTORAN" / "SELERA KAMPUNG"; "TAMAN MELATI" or "PASAR BESAR," is an
    address's).
    """
    place = ADDRESS_WORD.search(row)
    if place_inside and place and place.start() > 0 and "," not in row:
        place = None
    return not (
        is_noise(row)
        or re.search(r"\d", row)
        or ADDRESS_STOP.search(row)
        or NOT_COMPANY.search(row)
        or place
    )


def _continues(previous: str, row: str) -> bool:
    """Whether ``row`` continues a name that started on ``previous``."""
    if _owner_in_brackets(row):
        return False
    suffix = LEGAL_SUFFIX.search(row)
    if NAME_OPENING_ONLY.match(previous):
        # Not onto a name of its own: one that repeats the row ("KEDAI KOPI" / "KEDAI
        # KOPI & MAKANAN NAM FONG", a logo's words), or, under a shop's kind, has its
        # own business word ("RESTORAN" / "YEE HING SEAFOOD RESTAURANT SDN BHD"; but
        # "SYARIKAT PERNIAGAAN" / "KIM LEONG HARDWARE SDN BHD" is one name).
        before_suffix = row[: suffix.start()] if suffix else row
        own_word = BUSINESS_WORD.search(before_suffix) or ends_in_trade(before_suffix)
        company = OPENS_WITH_COMPANY.match(previous + " ") is not None  # "SYARIKAT" alone too
        return not _repeats(previous, row) and (company or not own_word)
    opens_with_company = OPENS_WITH_COMPANY.match(previous) is not None
    # Trade words alone (before the suffix, if any): "RESTAURANT SDN. BHD.", "BUILDING
    # MATERIALS SDN BHD", "HARDWARE & BUILDING MATERIALS". Read only where they decide.
    trade_only = (suffix is not None or opens_with_company) and trade_words_only(
        row[: suffix.start()] if suffix else row
    )
    if opens_with_company and (suffix or trade_only):
        # "SYARIKAT BAHAN BINAAN" / "TEIK LEONG SDN. BHD.", "SYARIKAT HIN LOONG" /
        # "HARDWARE & BUILDING MATERIALS": a name that opens with the word "company" and
        # has no suffix goes on onto the row below.
        return not LEGAL_SUFFIX.search(previous) and not NOT_COMPANY.search(previous)
    opened = previous.count("(") > previous.count(")")
    # A name does not start with "ENTERPRISE" or "(SETIA ALAM)": the row above starts it;
    # nor with trade words alone before its suffix.
    continued = row.startswith(("(", "&")) or NAME_TAIL.match(row) is not None
    continued |= suffix is not None and trade_only
    # Digits read for letters in its words ("SWEET CRUM8S") leave a row name-like, and
    # so do a name's own, joined by a sign ("FARMASI 1-CARE", "PASARAYA BESAR 1+1"),
    # where nothing else says number: no address word, postcode or registration (not
    # "OUTLET 23").
    digits = re.search(r"\d", _FIVE_IN_NAME.sub("", previous))
    own_digits = re.search(r"\d[-+]|[-+]\d", previous) is not None and not (
        ADDRESS_WORD.search(previous) or has_postcode(previous) or is_registration(previous)
    )
    # A suffix alone on its row ("SDN BHD") ends the name above, whatever it holds.
    bare_suffix = suffix is not None and not row[: suffix.start()].strip(" .,")
    name_like = not is_noise(previous) and (not digits or own_digits or bare_suffix)
    return (opened or continued) and name_like and not NOT_COMPANY.search(previous)


def find_company(rows: Sequence[str]) -> str | None:
    """
    The company name from a receipt header, upper case, without its registration number.

    The name is the first header row with a legal suffix (``SDN BHD``, ``BHD``, ``S/B``,
    ``PLT`` ...), joined with the row or two before it when the name wraps; else the
    first row with a business word (``ENTERPRISE``, ``TRADING``, ``RESTORAN``,
    ``HARDWARE`` ...); else the first header row that is not a code or a label.

    Args:
        rows: the receipt text, one visual row per item.

    Returns:
        The company name, or ``None``.
    """
    span = company_rows(rows)
    if span is None:
        return None
    first, last = span
    name = _clean_company(" ".join(clean_row(row) for row in rows[first : last + 1]))
    return name or None
