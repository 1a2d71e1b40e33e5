"""
Who issued a receipt: the company name and its address, read from the header rows.

Malaysian receipts open with the seller: an optional logo text or stamp, the company
name (usually with ``SDN BHD``, ``S/B``, ``ENTERPRISE`` ...), its registration number,
the address ending with a five-digit postcode and state, then ``TEL``/``GST``/``TAX
INVOICE`` lines. The SROIE ground truth writes both fields in upper case without the
registration number.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._vocabulary import TRADE_WORDS, clean_header_text, letters_for_digits

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["find_address", "find_company"]

#: How many rows from the top count as the header (a guess; headers are 3-10 rows).
HEADER_ROWS = 12

_LEGAL_SUFFIX = re.compile(
    r"\bSDN\.? ?[BD8][HN]?[DNO0]\b|\bBHD\b|\bBERHAD\b|\bS/B\b|\bPLT\b|\bLTD\b|\bLIMITED\b|\bINC\b"
)
_BUSINESS_WORD = re.compile(
    r"ENTERPRISE|TRADING|TRADERS?\b|RESTAURANTS?|RESTORAN|\bSTORES?\b|\bMART\b|MARKET|"
    r"HARDWARE|\bSHOP\b|\bCAFE\b|KEDAI|PERNIAGAAN|STATIONERY|\bBOOKS?\b|GALLERY|MOTOR|"
    r"MACHINERY|\bCO\b\.?|HOLDINGS|INDUSTRIES|PHARMACY|FARMASI|BAKERY|ELECTRICAL|\bDECO\b|"
    r"SUPERMARKET|HYPERMARKET|PETRO|\bCENTRE\b|\bCENTER\b|\bFOOD|BISTRO|KITCHEN|HOTEL|"
    r"AGENCY|SERVICES|\bGIFT|\bMINI\b|BOUTIQUE|\bOPTICAL|\bAUTO\b|\bSTATION\b|CORPORATION"
)
# Words that end a company name, never start one.
_NAME_TAIL = re.compile(
    r"(?:ENTERPRISE|TRADING|TRADERS|SDN|BHD|BERHAD|S/B|HOLDINGS|INDUSTRIES|CORPORATION)\b"
)
# "GST", and the OCR's "GSTID", "GSTNO" for "GST ID", "GST NO".
_GST = r"\bGST(?:\b|ID|NO|REG)"
_NOT_COMPANY = re.compile(
    rf"FORMERLY|LICEN[SC]EE|TAX INVOICE|\bINVOICE\b|RECEIPT|WELCOME|THANK|\bTEL\b|{_GST}|"
    r"\bSINCE\b|\bESTABLISHED\b|\bEST\. ?\d"
)
# A registration number: "(CO.REG :933109-X)", "519537-X)", "Reg No: 1203194-W",
# "Company No:002643278-A", "(65351-M)".
# OCR reads REG as REF or RFG, and after such a label a digit of the number as O, Q, I
# or L ("(CO.RFG : 86Q671-D)", "(Co. No. 2213l9-D)"; without a label, "2OO Q" in a name
# is not a number).
_REGISTRATION_LABEL = r"CO(?:MPANY)?\.? ?(?:R[EF][GF]\w*|NO)\.?|R[EF][GF]\w*\.? ?NO\.?|ROC"
_REGISTRATION = re.compile(
    rf"\(?\s*(?:(?:{_REGISTRATION_LABEL})\s*[:.]?\s*\b\d[\dOQIL]{{2,}}"
    rf"|(?:{_REGISTRATION_LABEL})?\s*[:.]?\s*\b\d{{3,}})[- ]?[A-Z]\b\s*\)?"
    # A business name's, with its state's letters: "(SA0345678-P)", "(JM0512345-X)"
    # ("(5A0122874-H)": an S read as 5).
    r"|\(\s*[A-Z5][A-Z]{1,2}\d[\dOQIL]{4,}[- ]?[A-Z]\s*\)"
    # A limited liability partnership's: "(LLP0012345-LGN)".
    r"|\(?\s*\bLLP\d{7}-?[A-Z]{3}\b\s*\)?"
    # The 12 digits given since 2019, starting with the year: "(201901012345)".
    r"|\(?\s*\b(?:19|20)\d{10}\b\s*\)?"
)
# The end of a legal name; what follows it on the row is a number or residue.
_LEGAL_END = re.compile(r"(?:\bSDN\.? ?BHD|\bBHD|\bBERHAD|\bS/B|\bPLT)\b\.?")
_ADDRESS_STOP = re.compile(
    r"\b[T1I][E3]L\b|\bTEL[\s:.]|TELEPHONE|\bPHONE\b|HANDPHONE\s*(?:NO\.?)?\s*:|\bFAX\b|"
    rf"\bH/?P\b|{_GST}|\bSST\b|[IL1]NVOICE|RECEIPT|RESIT|INVOIS|\bDATE\b|\bTARIKH\b|"
    r"E-?MAIL|WWW|HTTP|\w@\w|CASHIER|\bHOURS\b|\bOPEN\b|\bBILL\b|\bREG\b|COMPANY NO|\bTAX\b"
)
_ADDRESS_SKIP = re.compile(rf"FORMERLY|LICEN[SC]EE|{_GST}|\bSST\b|\bREG\b|COMPANY NO|\bTAX\b")
_FORMERLY = re.compile(r"FORMERLY|PREVIOUSLY|\bEX\b")
# Five digits, not a lot's number ("PT 12345, JALAN ...", "LOT 10234,", "PTD 12345,").
_POSTCODE = re.compile(
    r"(?<!\d)(?<!LOT )(?<!LOT)(?<!PT )(?<!PT)(?<!PTD )(?<!PTD)(?<!PT\. )(?<!P\.T\. )(?<!P\.T\.)"
    r"\d{5}(?!\d)"
)
# A postcode with an O read for a zero ("3O01O", "58OOO"): five of 0-9 and O, starting
# with a digit, two digits or more.
_POSTCODE_WITH_O = re.compile(
    r"\b(?=\d)(?=(?:O*\d){2})(?=[\dO]*O)[\dO]{5}\b"
    # Or with one digit before its town: "8OOOO JOHOR BAHRU".
    r"|\b\dO{4}(?= [A-Z]{3})"
    # Or its first 0 read as O: "O5000 ALOR SETAR".
    r"|\bO(?=\d{4} [A-Z])"
)
# An O between a digit and a digit, a slash or a comma: "JALAN 1O/2", "NO. 3O,".
_O_IN_NUMBER = re.compile(r"(?<=\d)O(?=[\d/,])|(?<=[\dA-Z][/-])O(?=\d)")
# "P.0. BOX": a post office box's O read as a zero.
_PO_BOX = re.compile(r"(?<=\bP\.)( ?)0(?=\. ?BOX\b)")
# An S read for a 5 after a digit in a house number or a postcode: "NO. 1S2,", "33 & 3S,",
# "2S300 KUANTAN".
_S_IN_NUMBER = re.compile(r"(?<=\b\d)S(?=\d*,)|(?<=\b\d\d)S(?=\d*,)|(?<=\b\d)S(?=\d{3} [A-Z])")
# Streets and places: what names a place, not a unit in it.
_PLACES = (
    r"JALAN|JLN|JL|LORONG|LRG|LEBUH|LEBUHRAYA|PERSIARAN|ROAD|STREET|TAMAN|TMN|BANDAR|"
    r"KAMPUNG|KAMPONG|KG|KAWASAN|WISMA|MENARA|KOMPLEKS|PLAZA|BANGUNAN|SEKSYEN|PUSAT"
)
_PLACE = re.compile(rf"\b(?:{_PLACES})\b")
# Words only an address holds (with a postcode, what tells an address from other rows).
_ADDRESS_WORD = re.compile(
    rf"\b(?:{_PLACES}|LOT|NO|BLOK|BLOCK|TINGKAT|LEVEL|FLOOR|SECTION|BATU|MUKIM)\b"
)
# The first row of an address may hold few letters: "NO 43-45-47G,", "LOT 12,".
_ADDRESS_OPENING = re.compile(
    # A unit may open with its floor's or block's letters: "LOT G-15", "UNIT F1-08".
    r"^(?:NO|LOT|UNIT|BLO?C?K|PT|P\.T)\b\.?\s*[:.]?\s*(?:\d|[A-Z]{1,2}\d{0,2}-\d)"
    # Or house numbers before a street word: "12 & 14, JLN 2/3,", "5-1, LORONG 4,",
    # "G-12, JALAN PRIMA 3,".
    r"|^(?:[A-Z]{1,2}\d{0,2}-)?\d+[A-Z]?(?:\s*[&,/-]\s*\d+[A-Z]?)*\s*,?\s*"
    r"(?:JALAN|JLN|JL|LORONG|LRG|LEBUH|PERSIARAN)\b"
)
# "10T 1851-A": LOT with its letters read as digits, before a lot number.
_LOT = re.compile(r"^[1LI][0O]T(?=\s*(?:\d|P\.?T\b|[A-Z]{1,2}-?\d))")
# A full stop after a word and before the postcode and its town is a comma misread:
# addresses print "TAMAN X, 81200 JOHOR BAHRU". An abbreviation before a number ("NO. ",
# "LOT. ", "PTD. ") is under four letters, and a lot number is not followed by a town.
_STOP_BEFORE_POSTCODE = re.compile(r"(?<=[A-Z]{4})\.(?= \d{5} [A-Z])")
# So is one after the postcode's town, before the state: "41050 KLANG. SELANGOR".
_STOP_BEFORE_STATE = re.compile(
    r"(\d{5} [A-Z][A-Z ]{2,29})\.(?= (?:SELANGOR|JOHOR|KEDAH|KELANTAN|MELAKA|NEGERI|PAHANG|"
    r"PERAK|PERLIS|PULAU PINANG|SABAH|SARAWAK|TERENGGANU)\b)"
)
# A stray mark beside a comma: "TAMAN X,, 43000", "BANGSAR BARU,. 59100".
_STRAY_STOP = re.compile(r",[.,]+|\.,")
# "INTERNATIONAL.SDN BHD": a dot glued between a name and its legal suffix is a space.
_DOT_BEFORE_SDN = re.compile(r"(?<=[A-Z])[.\u00b7](?=SDN\b)")
# Initials print tight ("SELANGOR D.E", "LOT P.T. 2811", "MR D.I.Y."); OCR often reads a
# space after each dot ("D. E"). A space after a lone letter's dot, before another lone
# letter, is dropped.
_SPACED_INITIALS = re.compile(r"(?<![A-Z0-9])([A-Z])\. (?=[A-Z](?![A-Z0-9]))")
_CODE_ONLY = re.compile(r"^[\W\d_]*[A-Z]?[\W\d_]*$|^\W*[A-Z]{0,3}\d{3,}(?:-? ?[A-Z])?\W*$")


# A lower-case l between capitals, or ending a word of capitals, is a capital I misread:
# "PARKlNG", "KUCHAl" (they look alike).
_LOWER_L = re.compile(r"(?<=[A-Z])l(?=[A-Z])|(?<=[A-Z]{2})l(?![A-Za-z0-9])")
# A lower-case l standing alone is a 1: "LEVEL l," (a word of one lower-case letter is
# not printed in a header of capitals).
_LONE_L = re.compile(r"(?<![A-Za-z0-9])l(?![A-Za-z0-9'])")


# In a word of small letters, a capital I or a 1 is an l, and a 0 an o: "MendaIing",
# "Chang1un", "Sembi1an", "Retai1".
_L_IN_SMALL = re.compile(r"(?<=[a-z])[I1](?=[a-z])|(?<=[a-z]{2})1\b")
_O_IN_SMALL = re.compile(r"(?<=[a-z])0(?=[a-z])")
# A small l opening a word before a small consonant or two capitals is a capital I:
# "Jalan lbrahim", "JALAN TUN lSMAIL".
_L_FOR_I = re.compile(
    r"(?<![A-Za-z0-9])l(?=[bcdfghjkmnpqrstvwxz][a-z])(?!td\b)|(?<![A-Za-z0-9])l(?=[A-Z]{2})"
)
# ... and before one capital and no more letters, a 1: "JALAN PJU lA/41".
_L_FOR_ONE = re.compile(r"(?<![A-Za-z0-9])l(?=[A-Z](?![A-Za-z0-9]))")
# A small l in a number is a 1: "No. l80", "10l", "30ll".
_L_IN_NUMBER = re.compile(r"(?<![A-Za-z])(?=[\dl]*\d)[\dl]*l[\dl]*(?![A-Za-z])")


def _upper(row: str) -> str:
    """A header row upper case, its spaces single, letters read as digits put right."""
    row = _L_IN_NUMBER.sub(lambda m: m.group(0).replace("l", "1"), row)
    row = _O_IN_SMALL.sub("o", _L_IN_SMALL.sub("l", _L_FOR_I.sub("I", row)))
    row = _L_FOR_ONE.sub("1", row)
    row = _LONE_L.sub("1", _LOWER_L.sub("I", row))
    return letters_for_digits(re.sub(r"\s+", " ", row.upper()).strip())


def _letters(row: str) -> int:
    return sum(char.isalpha() for char in row)


def _is_noise(row: str) -> bool:
    """Logo residue, serial codes, a stray word: fewer than 4 letters or a lone code."""
    return _letters(row) < 4 or bool(_CODE_ONLY.match(row))


# "OPERATED BY: X SDN BHD", "BY X SDN BHD": the operator's name is what follows.
_OPERATED_BY = re.compile(r"^(?:(?:OPERATED|MANAGED|OWNED|MILIK)\s*)?(?:BY|OLEH)\b\s*:?\s*")


# A word of a name that holds look-alike digits: 0 or 1 among letters ("S0N", "0NE",
# "AUT0"; `letters_for_digits` has read those between letters in longer words, and 5 and
# 8 among letters).
_NAME_WORD = re.compile(r"(?<![\w.-])[A-Z01]{3,}(?![\w-])")
_NAME_DIGITS = str.maketrans("01", "OI")


def _name_word(match: re.Match[str]) -> str:
    """A name's word with its look-alike digits read as letters, when it is a word: two
    letters or more, and no leading 1 (``1STOP`` is a name as printed)."""
    word = match.group(0)
    if word[0] == "1" or _letters(word) < 2 or word.isalpha():
        return word
    return word.translate(_NAME_DIGITS)


# A 5 or an 8 before a letter in a word of a name, with two letters or more and no other
# digit, is an S or a B: "5IN NAM", "BE5I", "8AK KUT TEH" (not "5TH"; a code ends with
# its digit: "PJU5").
_FIVE_IN_NAME = re.compile(
    r"(?<![\w.-])(?![58]TH\b)(?=(?:[A-Z58]*[A-Z]){2})[A-Z]*[58](?=[A-Z])[A-Z]*(?![\w-])"
)
_AS_LETTERS = str.maketrans("58", "SB")
# A 6 ending a word of a name is a G ("EN6 HIN"), and "C0." a company's "CO.".
_G_ENDING_NAME = re.compile(r"(?<=\b[A-Z]{2})6\b|(?<=\b[A-Z]{3})6\b")
_CO_WITH_ZERO = re.compile(r"\bC0(?=\.|$)")


def _clean_company(row: str) -> str:
    row = _OPERATED_BY.sub("", row)
    row = _DOT_BEFORE_SDN.sub(" ", clean_header_text(row))
    row = _SPACED_INITIALS.sub(r"\1.", row)
    row = _REGISTRATION.sub(" ", row)
    row = _NAME_WORD.sub(_name_word, row)
    row = _FIVE_IN_NAME.sub(lambda m: m.group(0).translate(_AS_LETTERS), row)
    row = _CO_WITH_ZERO.sub("CO", _G_ENDING_NAME.sub("G", row))
    row = re.sub(r"[|_]", " ", row)
    row = re.sub(r"\(\s*\)", " ", row)
    row = re.sub(r"\s+", " ", row).strip(" ,:;-")
    # A bracket left open by a registration number cut away: "SDN BHD (" -> "SDN BHD".
    row = row[:-1].strip() if row.endswith("(") else row
    return _cut_after_legal_end(row)


def _cut_after_legal_end(name: str) -> str:
    """
    Drop what follows ``SDN BHD``/``BHD``/``BERHAD``/``S/B``/``PLT`` on the name's row
    when it is a garbled registration number or residue (a digit, or under 3 letters).
    """
    ends = list(_LEGAL_END.finditer(name))
    if not ends:
        return name
    end = ends[-1].end()
    tail = name[end:]
    if re.search(r"\d", tail) or _letters(tail) < 3:
        kept = name[:end].strip(" ,")
        if kept.count("(") > kept.count(")") and tail.lstrip().startswith(")"):
            kept += ")"  # "TEALIVE (LOOB HOLDING SDN BHD)": the bracket it opened
        return kept
    return name


# "BRANCH: NO. 12, JALAN ...": the branch's label before its address.
_BRANCH_LABEL = re.compile(r"^(?:BRANCH|OUTLET|CAWANGAN|STORE|KEDAI)\s*:\s*")


def _clean_address(address: str) -> str:
    """
    OCR clean-up of an address: accents, vocabulary, ``10T`` for ``LOT``, an O in a
    number (``58OOO``, ``1O/2``), a stray mark beside a comma (``,,``), a comma read as
    a full stop before the postcode (``TAMAN SRI PUTRA. 81200``) or the state (``41050
    KLANG. SELANGOR``), a last comma.
    """
    address = _POSTCODE_WITH_O.sub(lambda m: m.group(0).replace("O", "0"), address)
    address = _S_IN_NUMBER.sub("5", _O_IN_NUMBER.sub("0", address))
    address = _PO_BOX.sub(r"\1O", address)
    address = _LOT.sub("LOT", clean_header_text(_BRANCH_LABEL.sub("", address)))
    address = _SPACED_INITIALS.sub(r"\1.", address)
    address = _STRAY_STOP.sub(",", address)
    address = _STOP_BEFORE_STATE.sub(r"\1,", address)
    return _STOP_BEFORE_POSTCODE.sub(",", address).rstrip(" ,")


def _opens_address(rows: Sequence[str]) -> bool:
    """
    Whether ``rows[0]`` opens an address although it reads like a code: it starts with a
    house or lot number (``NO 43-45-47G,``, ``10T 12``, ``NO.113G & 115G,``), holds no
    five-digit number (a postcode, or a code such as ``NO 88123``), and a postcode row
    follows within three rows, before any ``TEL``/``INVOICE``/``DATE`` row.
    """
    if not _ADDRESS_OPENING.match(_LOT.sub("LOT", rows[0])) or _POSTCODE.search(rows[0]):
        return False
    for row in rows[1:4]:
        if _ADDRESS_STOP.search(row):
            return False
        if _POSTCODE.search(row):
            return True
    return False


def _has_postcode(row: str) -> bool:
    """Whether ``row`` holds a postcode outside a registration number."""
    return bool(_POSTCODE.search(_REGISTRATION.sub(" ", row)))


def _names_company(row: str) -> bool:
    """Whether ``row`` holds a registration number in brackets: a company's row."""
    match = _REGISTRATION.search(row)
    return match is not None and match.group(0).lstrip().startswith("(")


def _is_registration(row: str) -> bool:
    """A row that is (mostly) a registration number: ``BR NO.: 0195932-X``."""
    match = _REGISTRATION.search(row)
    return match is not None and _letters(_REGISTRATION.sub(" ", row)) < 6


def _header(rows: Sequence[str]) -> list[str]:
    """
    The seller block: the rows before the first TEL/GST/INVOICE/DATE row.

    Anything below (a supplier named on an item line, a "SOLD BY" footer) is not the
    seller. When that block has no usable row, the first :data:`HEADER_ROWS` rows.
    """
    header = [_upper(row) for row in rows[:HEADER_ROWS]]
    for index, row in enumerate(header):
        stop = _ADDRESS_STOP.search(row)
        if stop and not _is_registration(row) and not _named_before(row, stop.start()):
            if any(not _is_noise(previous) for previous in header[:index]):
                return header[:index]
            break
    return header


def _named_before(row: str, end: int) -> bool:
    """Whether ``row`` holds a legal name before ``end``: "X RETAIL SDN. BHD. (CO. REG.
    NO. 350912-P)" is the name with its number, not a label row."""
    suffix = _LEGAL_SUFFIX.search(row[:end])
    return suffix is not None and _letters(row[: suffix.start()]) >= 4


# A row ending in "&", "AND" or the Malay "DAN": the name goes on onto the next row.
_NAME_GOES_ON = re.compile(r"(?:&|\bAND|\bDAN)$")


def _company_rows(rows: Sequence[str]) -> tuple[int, int] | None:
    """``(first, last)`` row indexes of the company name in the header, or ``None``."""
    span = _name_rows(rows)
    if span is None:
        return None
    first, last = span
    header = _header(rows)
    # "HARDWARE &" / "ELECTRICAL": a name ending in "&" or "AND" goes on to the next row.
    while (
        first > 0
        and _NAME_GOES_ON.search(header[first - 1])
        and not _is_noise(header[first - 1])
        and not _NOT_COMPANY.search(header[first - 1])
    ):
        first -= 1
    while (
        last + 1 < len(header)
        and _NAME_GOES_ON.search(header[last])
        and not _is_noise(header[last + 1])
        and not re.search(r"\d", header[last + 1])
        and not _ADDRESS_STOP.search(header[last + 1])
    ):
        last += 1
    return first, last


def _name_rows(rows: Sequence[str]) -> tuple[int, int] | None:
    """The company name's rows before a trailing ``&`` is followed."""
    header = _header(rows)
    suffix = next(
        (
            i
            for i, row in enumerate(header)
            if _LEGAL_SUFFIX.search(row) and not _NOT_COMPANY.search(row)
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
            if _names_more(header[top]) or _BUSINESS_WORD.search(header[top]):
                while top > 0 and _continues(header[top - 1], header[top]):
                    top -= 1
                return top, suffix - 1
        if first == suffix and business == suffix - 1 and _one_word_before_suffix(header[suffix]):
            # "RESTORAN MAMAK" / "CORNER SDN BHD": one word is a name cut short.
            first = business
        return first, suffix
    if business is not None:
        if business > 0 and _continues(header[business - 1], header[business]):
            # "SWEETIE CAKE HOUSE" / "ENTERPRISE": the row above starts the name.
            return business - 1, business
        if (
            _NAME_OPENING_ONLY.match(header[business])
            and business + 1 < len(header)
            and _names_more(_REGISTRATION.sub(" ", header[business + 1]))
        ):
            # "KEDAI MAKANAN DAN MINUMAN" / "AH FOOK": the name is on the row below.
            return business, business + 1
        return business, business
    for i, row in enumerate(header):
        if (
            not _is_noise(row)
            and not _NOT_COMPANY.search(row)
            and not _ADDRESS_STOP.search(row)
            and not _has_postcode(row)  # an address printed above the name
            and not _opens_address(header[i:])
        ):
            return i, i
    return None


def _business_row(header: list[str]) -> int | None:
    """
    The first header row with a business word, above the address: a row of the address
    ("INANAM BUSINESS CENTRE,") is no name, and a brand of one word above another name
    ("PETRONAS" / "AZ JAYA ENTERPRISE") is the brand.
    """
    rows = []
    for index, row in enumerate(header):
        if _opens_address(header[index:]) or _has_postcode(row):
            break
        if _BUSINESS_WORD.search(row) and not _NOT_COMPANY.search(row) and not _is_noise(row):
            rows.append(index)
    if len(rows) > 1 and rows[1] == rows[0] + 1 and len(header[rows[0]].split()) == 1:
        return rows[1]
    return rows[0] if rows else None


# A row of Malay words that open a name and cannot end one: "SYARIKAT PERNIAGAAN" /
# "GUAN HOE SDN BHD".
_NAME_OPENING_ONLY = re.compile(
    r"^(?:(?:SYARIKAT|PERNIAGAAN|PERUSAHAAN|KEDAI|RESTORAN|KILANG|PASARAYA|PUSAT|"
    r"MAKAN|MAKANAN|MINUMAN|UBAT|RUNCIT|KOPI|BEKALAN|BAHAN|BINAAN|ALAT|TULIS|PERKAKAS|"
    r"LAUT|DAN|&)\s*)+$"
)


# A name opening with the Malay for "company" or "business".
_OPENS_WITH_COMPANY = re.compile(r"^(?:SYARIKAT|SYKT\.?|PERNIAGAAN)\s")


def _owner_in_brackets(row: str) -> bool:
    """Whether ``row`` is a company in brackets: ``(OWNED BY LT F&B SDN BHD)``, not a
    branch in brackets before the suffix (``(SETIA ALAM) SDN BHD``)."""
    suffix = _LEGAL_SUFFIX.search(row)
    if not row.startswith("(") or suffix is None:
        return False
    depth = 0
    for index, char in enumerate(row):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index > suffix.start()  # the first bracket closes after the suffix
    return True  # never closed (OCR lost it)


def _one_word_before_suffix(row: str) -> bool:
    """Whether ``row`` holds one word before its legal suffix (``CORNER SDN BHD``)."""
    suffix = _LEGAL_SUFFIX.search(row)
    return suffix is not None and len(row[: suffix.start()].split()) == 1


def _names_more(row: str) -> bool:
    """Whether ``row`` can go on with a name: words, no digit, no label."""
    return not (
        _is_noise(row)
        or re.search(r"\d", row)
        or _ADDRESS_STOP.search(row)
        or _NOT_COMPANY.search(row)
        or _ADDRESS_WORD.search(row)
    )


def _is_trade_word(word: str) -> bool:
    """A business word or a domain word of the trade: ``RESTAURANT``, ``MATERIALS``."""
    return bool(_BUSINESS_WORD.fullmatch(word)) or word in TRADE_WORDS


def _continues(previous: str, row: str) -> bool:
    """Whether ``row`` continues a name that started on ``previous``."""
    if _owner_in_brackets(row):
        return False
    if _NAME_OPENING_ONLY.match(previous):
        return True
    suffix = _LEGAL_SUFFIX.search(row)
    # Trade words alone (before the suffix, if any): "RESTAURANT SDN. BHD.", "BUILDING
    # MATERIALS SDN BHD", "HARDWARE & BUILDING MATERIALS".
    words = clean_header_text(row[: suffix.start()] if suffix else row).split()
    words = [word for word in words if word not in ("&", "DAN", "AND")]
    trade_only = bool(words) and all(map(_is_trade_word, words))
    if _OPENS_WITH_COMPANY.match(previous) and (suffix or trade_only):
        # "SYARIKAT BAHAN BINAAN" / "TEIK LEONG SDN. BHD.", "SYARIKAT HIN LOONG" /
        # "HARDWARE & BUILDING MATERIALS": a name that opens with the word "company" and
        # has no suffix goes on onto the row below.
        return not _LEGAL_SUFFIX.search(previous) and not _NOT_COMPANY.search(previous)
    opened = previous.count("(") > previous.count(")")
    # A name does not start with "ENTERPRISE" or "(SETIA ALAM)": the row above starts it;
    # nor with trade words alone before its suffix.
    continued = row.startswith(("(", "&")) or _NAME_TAIL.match(row) is not None
    continued |= suffix is not None and trade_only
    # Digits read for letters in its words ("SWEET CRUM8S") leave a row name-like.
    name_like = not _is_noise(previous) and not re.search(r"\d", _FIVE_IN_NAME.sub("", previous))
    return (opened or continued) and name_like and not _NOT_COMPANY.search(previous)


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
    span = _company_rows(rows)
    if span is None:
        return None
    first, last = span
    name = _clean_company(" ".join(_upper(row) for row in rows[first : last + 1]))
    return name or None


def _holds_address(rows: Sequence[str]) -> bool:
    """Whether some row holds a postcode or a word only addresses hold."""
    return any(_POSTCODE.search(row) or _ADDRESS_WORD.search(row) for row in rows)


def _may_be_address(row: str) -> bool:
    """Whether ``row`` holds a digit or a word only addresses hold."""
    return bool(re.search(r"\d", row) or _ADDRESS_WORD.search(row))


def _from_opening(rows: list[str]) -> list[str]:
    """
    ``rows`` from the row that opens the address (``NO 12A, JALAN ...``) when the rows
    before it are no part of it: they hold neither a digit nor a word of an address (a
    doctor's name, a branch under the name), or neither a comma nor a postcode (an
    outlet's name: ``GIANT SHAH ALAM 2``, ``SHELL STESEN JALAN MATANG``). The parts of
    an address are printed with commas (``LEVEL 6, BANGUNAN TH,``).
    """
    for index, row in enumerate(rows[1:], start=1):
        if _ADDRESS_OPENING.match(_LOT.sub("LOT", row)):
            before = rows[:index]
            if not any(map(_may_be_address, before)) or not any(
                "," in r or _POSTCODE.search(r) for r in before
            ):
                return rows[index:]
            break
    return rows


# A document's title and nothing else: "TAX INVOICE", "RESIT PARKIR / PARKING RECEIPT".
_TITLE = re.compile(
    r"^(?:(?:TAX|CASH|SIMPLIFIED|OFFICIAL|PARKING|PARKIR|RESIT|BILL|SALES?|RECEIPT|"
    r"INVOICE|INVOIS|CUKAI|JUALAN|[/&-])\s*)+$"
)


def _is_title(row: str) -> bool:
    return bool(_TITLE.match(row))


def _address_follows(rows: Sequence[str]) -> bool:
    """Whether ``rows`` open with an address: a street or a place in the first two rows,
    and the first row opens it or holds a postcode or the place."""
    if not rows or _ADDRESS_STOP.search(rows[0]) or not any(map(_PLACE.search, rows[:2])):
        return False
    return _opens_address(rows) or bool(_POSTCODE.search(rows[0]) or _PLACE.search(rows[0]))


# A document's number, alone or before a label: "NO: 12033", "No: SI-0098 DATE: ...";
# "INV N0. CF-27731" (a label word before its NO.); not a house number ("NO: 28, JALAN").
_DOCUMENT_NUMBER = re.compile(
    r"^(?:(?:[A-Z]+\.? )?N[O0] ?[:#]|[A-Z]+\.? N[O0]\.) ?(?=[A-Z\d/-]*(?:\d{4}|[A-Z]-?\d))"
    r"[A-Z\d/-]+(?:\s|$)"
)


def _until_stop(row: str) -> tuple[str, bool]:
    """
    ``(row, False)``, or the part of ``row`` before a ``TEL``/``FAX``/... label that
    follows a postcode on it, and ``True``: "34000 TAIPING, PERAK. TEL: 05-807 1234"
    ends the address with its first part.
    """
    stop = _ADDRESS_STOP.search(row)
    if stop is not None and stop.start() > 0 and _POSTCODE.search(row[: stop.start()]):
        return row[: stop.start()].rstrip(), True
    return row, False


def find_address(rows: Sequence[str]) -> str | None:
    """
    The seller's address: the header rows after the company name, upper case.

    Registration numbers and "formerly known as" rows between the name and the address
    are skipped. The address ends before a ``TEL``/``GST``/``INVOICE``/``DATE`` row, or
    at most two short rows after the row with the five-digit postcode (the state or a
    branch name often follows it; a row with a phone-length number does not count).
    When the rows after the name hold no address, the first block elsewhere that opens
    like one (``NO. 45, JALAN ...`` over a postcode row) is the address: some shops
    print it above their name or at the foot of the receipt.

    Args:
        rows: the receipt text, one visual row per item.

    Returns:
        The address rows joined with a space, or ``None``.
    """
    span = _company_rows(rows)
    start = span[1] + 1 if span else 0
    block = [_upper(row) for row in rows[start : start + HEADER_ROWS]]
    found = _address_in(_without_head_office(block))
    if found is not None:
        return found
    upper = [_upper(row) for row in rows]  # the rest of the receipt, only when needed
    for index in range(len(upper)):
        if span and span[0] <= index <= span[1]:
            continue
        if _opens_address(upper[index:]) or _one_row_address(upper[index]):
            end = span[0] if span and index < span[0] else index + HEADER_ROWS
            found = _address_in(upper[index:end])
            # An item's code over a barcode opens like an address, but names no place.
            return found if found is not None and _PLACE.search(found) else None
    return None


# A head office's or registered office's label before its address.
_HEAD_OFFICE = re.compile(
    r"^(?:HEAD OFFICE|HQ|H\.Q\.?|REGISTERED OFFICE|REG(?:D|\.)? OFFICE|IBU PEJABAT|"
    r"PEJABAT (?:UTAMA|BERDAFTAR))\s*[:-]?\s*"
)


def _without_head_office(block: list[str]) -> list[str]:
    """
    ``block`` without its head office's address when the branch's follows it (the sale
    was made at the branch: "HEAD OFFICE: ..., 41050 KLANG" / "OUTLET: ..." / "NO. 23,
    ..., 41200 KLANG"), or with the label cut off when the head office's is the only
    address printed.
    """
    for index, row in enumerate(block):
        label = _HEAD_OFFICE.match(row)
        if label is None:
            continue
        end = next((j for j in range(index, len(block)) if _POSTCODE.search(block[j])), None)
        if end is not None and any(map(_POSTCODE.search, block[end + 1 :])):
            return block[:index] + block[end + 1 :]
        return [*block[:index], row[label.end() :], *block[index + 1 :]]
    return block


def _one_row_address(row: str) -> bool:
    """A whole address on one row: a street or place and a postcode, no label."""
    return bool(_POSTCODE.search(row) and _PLACE.search(row) and not _ADDRESS_STOP.search(row))


def _address_in(block: list[str]) -> str | None:
    """The address in ``block``, the upper-cased rows after the company name."""
    picked: list[str] = []
    after_postcode = 0
    skip_next = False
    for index, whole in enumerate(block):
        row, last = _until_stop(whole)
        stop = _ADDRESS_STOP.search(row) or _DOCUMENT_NUMBER.match(whole) or _is_title(row)
        if not picked:
            if skip_next or _FORMERLY.search(row):
                # "formerly known as / OLD NAME SDN BHD": the old name is not the address;
                # a row that holds the old name too ends the skip.
                skip_next = bool(_FORMERLY.search(row)) and not _LEGAL_END.search(row)
                continue
            opening = _opens_address(block[index:])
            if not opening and (
                _is_noise(row)
                or _ADDRESS_SKIP.search(row)
                or _is_registration(row)
                or _names_company(row)
                or _LEGAL_SUFFIX.search(row)
            ):
                continue
            if stop:
                if _is_title(row) and _address_follows(block[index + 1 :]):
                    continue  # "PARKING RECEIPT" between the name and its address
                return None
        elif _names_company(row) and not after_postcode and not _POSTCODE.search(row):
            # "MF TELECOMMUNICATION (SA0456712-K)": the legal name under a brand, with
            # its number; the address starts below it.
            picked, after_postcode = [], 0
            continue
        elif stop or (_is_noise(row) and not _POSTCODE.search(row)):
            if stop or _holds_address(picked):
                break
            # The rows so far were no address (a name's last row, a shop's name above
            # its registration number): look on past this row.
            picked, after_postcode = [], 0
            continue
        if after_postcode:
            # The state, a district or a branch name may follow the postcode row; a
            # phone number (many digits), a long row or a label ("MESIN NO: 12") does
            # not belong to the address.
            digits = sum(char.isdigit() for char in row)
            if digits > 4 or len(row) > 40 or ":" in row or after_postcode > 2:
                break
            after_postcode += 1
        elif _POSTCODE.search(row):
            after_postcode = 1
        picked.append(row)
        if last:
            break
    picked = _from_opening(picked)
    if not _holds_address(picked):
        return None  # an order number, a car park's times: no address at all
    address = re.sub(r"\s+", " ", " ".join(picked).replace("|", " ")).strip()
    return _clean_address(address) or None
