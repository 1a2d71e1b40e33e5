"""
The seller's block at the top of a receipt, as both the company and the address read it.

Malaysian receipts open with the seller: an optional logo text or stamp, the company
name (usually with ``SDN BHD``, ``S/B``, ``ENTERPRISE`` ...), its registration number,
the address ending with a five-digit postcode and state, then ``TEL``/``GST``/``TAX
INVOICE`` lines. This module holds what `._company` and `._address` share: the header's
rows cleaned of OCR look-alikes (`clean_row`), where the header ends (`header_block`),
and the patterns of legal suffixes, registration numbers, labels, postcodes and address
words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ._vocabulary import letters_for_digits, strip_accents

if TYPE_CHECKING:
    from collections.abc import Sequence

# Shared by `._company` and `._address`; the package exports none of it.
__all__ = [
    "ADDRESS_OPENING",
    "ADDRESS_STOP",
    "ADDRESS_WORD",
    "BUSINESS_WORD",
    "GST_LABEL",
    "HEADER_ROWS",
    "LEGAL_END",
    "LEGAL_SUFFIX",
    "LOT_MISREAD",
    "NAME_TAIL",
    "NOT_COMPANY",
    "PLACES",
    "PRAISE_ROW",
    "POSTCODE",
    "REGISTRATION",
    "SPACED_INITIALS",
    "clean_row",
    "has_postcode",
    "header_block",
    "is_noise",
    "is_registration",
    "letter_count",
    "opens_address",
]

#: How many rows from the top count as the header (a guess; headers are 3-10 rows).
HEADER_ROWS = 12

LEGAL_SUFFIX = re.compile(
    r"\bSDN\.? ?[BD8][HN]?[DNO0]\b|\bBHD\b|\bBERHAD\b|\bS/B\b|\bPLT\b|\bLTD\b|\bLIMITED\b|\bINC\b"
)
BUSINESS_WORD = re.compile(
    r"ENTERPRISE|TRADING|TRADERS?\b|RESTAURANTS?|RESTORAN|\bSTORES?\b|\bMART\b|MARKET|"
    r"HARDWARE|\bSHOP\b|\bCAFE\b|KEDAI|PERNIAGAAN|STATIONERY|\bBOOK(?:S|STORES?)?\b|GALLERY|MOTOR|"
    r"MACHINERY|\bCO\b\.?|HOLDINGS|INDUSTRIES|PHARMACY|FARMASI|BAKERY|ELECTRICAL|\bDECO\b|"
    r"SUPERMARKET|HYPERMARKET|PETRO|\bCENTRE\b|\bCENTER\b|\bFOOD|BISTRO|KITCHEN|HOTEL|"
    r"AGENCY|SERVICES|\bGIFT|\bMINI\b|BOUTIQUE|\bOPTICAL|\bAUTO\b|\bSTATION\b|CORPORATION"
)
# Words that end a company name, never start one.
NAME_TAIL = re.compile(
    r"(?:ENTERPRISE|TRADING|TRADERS|SDN|BHD|BERHAD|S/B|HOLDINGS|INDUSTRIES|CORPORATION|"
    r"VENTURES?|RESOURCES|\bSONS|\bBROTHERS|\bANAK-ANAK)\b"
)
# "GST", and the OCR's "GSTID", "GSTNO" for "GST ID", "GST NO".
GST_LABEL = r"\bGST(?:\b|ID|NO|REG)"
# A row that holds no business word or legal suffix, from its start: what a slogan's or a
# sentence's row is, where a name's may hold one ("WE CARE PHARMACY", "U & YOU SDN BHD").
_NO_NAME_WORD = rf"^(?!.*(?:{BUSINESS_WORD.pattern}|\b(?:SDN|BHD|BERHAD|S/B|PLT)\b))"
# A slogan's words: a comma, or three words or more.
_SLOGAN_WORDS = r"[^,]*,|\S+ \S+ \S"
# The words slogans are made of, in English and Malay ("QUALITY GUARANTEED", "MURAH &
# BERSIH", "BEST PRICE, BEST SERVICE"). Names are made of them too ("GOOD VALUE SDN
# BHD", "LOW & LOW ENTERPRISE"): only a row under a name is judged by them.
_PRAISE = (
    r"QUALITY|GUARANTEED?|BEST|CHEAP(?:EST)?|FRESH|TRUSTED|FRIENDLY|AFFORDABLE|PREMIUM|"
    r"GOOD|GREAT|VALUE|LOW|PRICES?|SERVICES?|ALWAYS|EVERYDAY|FAST|RELIABLE|SATISFACTION|"
    r"MURAH|BERSIH|MESRA|SEGAR|TERBAIK|BERKUALITI|PANTAS|JIMAT|HARGA|PUAS|HATI|DIJAMIN"
)
#: A row of two or more praise words and nothing else: under a name, its slogan
#: ("LIM HARDWARE" / "QUALITY GUARANTEED"), not its second row. The separators (signs,
#: AND, DAN) cannot also be read as a word, so a failing match is linear.
PRAISE_ROW = re.compile(rf"^\W*(?:(?:{_PRAISE})\b(?:\W|\b(?:AND|DAN)\b)*){{2,}}$")
# A slogan that lost one double quotation mark has a comma or a praise word ('"MURAH,
# BERSIH DAN MESRA', '\u201cTHE BEST IN TOWN'); a name that lost one has neither
# ('NASI KANDAR PELITA"', printed 'NASI KANDAR "PELITA"').
_ONE_QUOTE_SLOGAN = rf"(?=[^,]*,|(?=.*\b(?:{_PRAISE})\b)\S+ \S+ \S)"
NOT_COMPANY = re.compile(
    rf"FORMERLY|LICEN[SC]EE|TAX INVOICE|\bINVOICE\b|RECEIPT|WELCOME|THANK|\bTEL\b|{GST_LABEL}|"
    # A row of greeting, in Malay ("welcome", "happy shopping", "please come again",
    # "thank you"), or a halal mark: not "SELAMAT DATANG ENTERPRISE".
    r"^\W*(?:SELAMAT DATANG(?: KE\b.*)?|SELAMAT BERBELANJA|SILA DATANG LAGI|TERIMA ?KASIH"
    r"|(?:100 ?% ?)?HALAL)\W*$|"
    # A slogan in quotation marks, a whole row of three words or more, or with a comma,
    # and no business word or legal suffix: '"MURAH, BERSIH DAN MESRA"' (not a name
    # quoted, '"SRI MELAKA"', '"ABC TRADING SDN BHD"'); one double quote lost to the OCR
    # at times.
    rf"{_NO_NAME_WORD}(?:\W*[\"'\u201c\u2018\u201e](?={_SLOGAN_WORDS})"
    r"[^\"'\u201c\u201d\u2018\u2019\u201e]*[\"'\u201d\u2019\u201c]\W*$"
    rf"|\W*[\"\u201c\u201e]{_ONE_QUOTE_SLOGAN}[^\"'\u201c\u201d\u2018\u2019\u201e]*$"
    rf"|\W*(?=\w){_ONE_QUOTE_SLOGAN}[^\"'\u201c\u201d\u2018\u2019\u201e]*[\"\u201d\u201c]\W*$)|"
    r"\bSINCE\b|\bESTABLISHED\b|\bEST\. ?\d"
    # A parent's or a franchisor's row names another company than the seller.
    r"|\b(?:A MEMBER|SUBSIDIARY|FRANCHISEE) OF\b"
    r"|\bCASH (?:SALES?|BILL)\b"
    # A sentence, not a name: an English pronoun, possessive or "is" ("QUALITY IS OUR
    # PRIORITY", "WE CARE FOR YOU") in a row with no business word or legal suffix (a
    # name may hold one: "WE CARE PHARMACY", "U & YOU SDN BHD"); not the Malay KAMI or
    # ANDA, which names hold.
    rf"|{_NO_NAME_WORD}.*\b(?:IS|ARE|OUR|YOUR|WE|YOU)\b"
)
# A registration number: "(CO.REG :933109-X)", "519537-X)", "Reg No: 1203194-W",
# "Company No:002643278-A", "(65351-M)".
# OCR reads REG as REF or RFG, and after such a label a digit of the number as O, Q, I
# or L ("(CO.RFG : 86Q671-D)", "(Co. No. 2213l9-D)"; without a label, "2OO Q" in a name
# is not a number).
_REGISTRATION_LABEL = (
    # "CO. REG. NO.", "CO.REG", "COMPANY NO", "REG NO", "REG", "REGISTRATION NO.",
    # "BUSINESS REG NO", "BR NO", "ROC NO.", "SSM", "SSM NO"; each a word of its own (not
    # "REGENCY", "REFRIGERATION", "GREGORY").
    r"\bC[O0](?:MPANY)?\.? ?(?:R[EF][GF]\w*|N[O0])\.?(?: ?N[O0]\b\.?)?"
    r"|\bR[EF][GF]\w*\.? ?N[O0]\b\.?"
    r"|\b(?:(?:BUSINESS ?)?(?:REG(?:N|ISTRATION)?|RFG)|ROC|SSM)\b\.?(?: ?N[O0]\b\.?)?"
    r"|\bBR\.? ?N[O0]\b\.?"
    # The Malay "nombor pendaftaran" and "nombor syarikat": "NO. PEND.", "NO. SYARIKAT".
    r"|NO\.? ?(?:PEND\w*|SYARIKAT)\.?"
)
_NOT_AFTER_SUFFIX = "".join(
    f"(?<!{suffix})" for suffix in ("SDN", "BHD", "BERHAD", "S/B", "PLT", "CO")
)
REGISTRATION = re.compile(
    rf"\(?\s*(?:(?:{_REGISTRATION_LABEL})\s*[:.]?\s*\b\d[\dOQIL]{{2,}}"
    # (without a label, a full stop after a legal suffix or CO is the suffix's:
    # "BHD. 998712-A"; after another word it goes with the number: "ENTERPRISE. 99871-A")
    rf"|(?:(?:{_REGISTRATION_LABEL})\s*[:.]?|:|{_NOT_AFTER_SUFFIX}\.)?\s*\b\d{{3,}})"
    r"[- ]?[A-Z]\b\s*\)?"
    # A business name's, with its state's letters: "(SA0345678-P)", "(JM0512345-X)"
    # ("(5A0122874-H)": an S read as 5), after its label at times ("(CO NO: JM0512345-X)",
    # "(CO. REG. NO: SA0345678-P)"), a space read after the letters at times.
    rf"|\(\s*(?:(?:{_REGISTRATION_LABEL})\s*[:.]?\s*)?"
    r"[A-Z5][A-Z]{1,2} ?\d[\dOQIL]{4,}[- ]?[A-Z]\s*\)"
    # ... printed without brackets, its letters, seven digits and hyphen whole and
    # unspaced, after its label at times, where a space may follow the letters:
    # "JM0325955-V", "CO. REG. NO: JM 0325955-V" (not "LIM & CO 1203194-W": CO is the
    # name's).
    rf"|(?:(?:{_REGISTRATION_LABEL})\s*[:.]?\s*\b[A-Z]{{2}} ?|\b[A-Z]{{2}})\d{{7}}-[A-Z]\b"
    # A limited liability partnership's: "(LLP0012345-LGN)".
    r"|\(?\s*\bLLP\d{7}-?[A-Z]{3}\b\s*\)?"
    # The 12 digits given since 2019, starting with the year: "(201901012345)"; after
    # its label, with O read for some zeros ("CO. NO. 2O1001O12345").
    r"|\(?\s*\b(?:19|20)\d{10}\b\s*\)?"
    rf"|\(?\s*(?:{_REGISTRATION_LABEL})\s*[:.]?\s*\b(?:19|2[0O])[\dO]{{10}}\b\s*\)?"
    # A licence's in brackets, office and year before it: "(KCH/2009/11203)".
    r"|\(\s*[A-Z]{2,4}\s*/\s*\d{2,4}\s*/\s*\d{3,}\s*\)"
)
# The end of a legal name; what follows it on the row is a number or residue, glued to
# it at times ("SDN BHD234987-U").
LEGAL_END = re.compile(r"(?:\bSDN\.? ?BHD|\bBHD|\bBERHAD|\bS/B|\bPLT)(?![A-Z])\.?")
ADDRESS_STOP = re.compile(
    r"\b[T1I][E3]L\b|\bTEL[\s:.]|TELEPHONE|\bPHONE\b|HANDPHONE\s*(?:NO\.?)?\s*:|\bFAX\b|"
    rf"\bH/?P\b(?!-[A-Z])|{GST_LABEL}|\bSST\b|[IL1]NVOICE|RECEIPT|RESIT|INVOIS|\bDATE\b|"
    r"\bTARIKH\b|E-?MAIL|WWW|HTTP|CASHIER|\bHOURS\b|\bOPEN\b|\bBILL\b|\bREG\b|COMPANY NO|\bTAX\b"
    # An e-mail address, not a mall's name ending in a digit ("gateway@klia2,").
    r"|\w@(?![\w-]*\d(?![\w.-]))\w"
)

# Five digits, not a lot's number ("PT 12345, JALAN ...", "LOT 10234,", "PTD 12345,") nor
# a post office box's ("P.O. BOX 11482,").
POSTCODE = re.compile(
    r"(?<!\d)(?<!LOT )(?<!LOT)(?<!PT )(?<!PT)(?<!PTD )(?<!PTD)(?<!PT\. )(?<!P\.T\. )(?<!P\.T\.)"
    r"(?<!BOX )(?<!BOX)"
    # Not a code's digits after its one letter: "A02045", a number written on the
    # receipt by hand; initials or a town glued on keep their postcode ("KL50000",
    # "W.P50450", "KLANG41050").
    r"(?<!^[A-Z])(?<! [A-Z])"
    r"\d{5}(?!\d)"
)

# Streets and places: what names a place, not a unit in it.
PLACES = (
    r"JALAN|JLN|JL|LORONG|LRG|LEBUH|LEBUHRAYA|PERSIARAN|ROAD|STREET|TAMAN|TMN|BANDAR|"
    r"KAMPUNG|KAMPONG|KG|KAWASAN|WISMA|MENARA|KOMPLEKS|PLAZA|BANGUNAN|SEKSYEN|PUSAT"
)

# Words only an address holds (with a postcode, what tells an address from other rows).
ADDRESS_WORD = re.compile(
    rf"\b(?:{PLACES}|LOT|NO|BLOK|BLOCK|TINGKAT|LEVEL|FLOOR|SECTION|BATU|MUKIM)\b"
)
# The first row of an address may hold few letters: "NO 43-45-47G,", "LOT 12,".
ADDRESS_OPENING = re.compile(
    # A unit may open with its floor's or block's letters: "LOT G-15", "UNIT F1-08".
    r"^(?:NO|LOT|UNIT|BLO?C?K|PTD?|P\.T)\b\.?\s*[:.]?\s*(?:PTD?\s*)?(?:\d|[A-Z]{1,2}\d{0,2}-\d)"
    # Or a unit's code and a comma: "G-12, KOMPLEKS NIAGA", "1-G-3, GURNEY WALK".
    r"|^(?!\d{1,2}-\d{1,2}-\d{2}\s*,)"  # not a date: "12-05-18, SAT"
    r"(?:[A-Z]{1,2}\d{0,2}(?:-[A-Z0-9]{1,2})?-\d{1,3}[A-Z]?|\d{1,3}-[A-Z0-9]{1,2}-\d{1,3}[A-Z]?)"
    r"\s*,\s*[A-Z]"
    # Or a market's stall and a comma before the market's or building's name: "GERAI 3,
    # PASAR BESAR", "TAPAK GERAI 5, PASAR PAYANG" (not the stall's own name, "GERAI 7,
    # WARUNG MAK LIMAH", nor a food court's "STALL 12 - CHICKEN RICE").
    r"|^(?:(?:TAPAK\s+)?GERAI|STALL|KIOSK)\s*(?:NO\.?\s*)?(?:[A-Z]{1,2}-?)?\d+[A-Z]?\s*,\s*"
    r"(?:PASAR|MEDAN|FOOD COURT|LEVEL|ARAS|TINGKAT|MALL|PLAZA|KOMPLEKS|BANGUNAN|WISMA|PUSAT|"
    r"JALAN|JLN|LORONG|TAMAN)\b"
    # Or a milestone: "BATU 2, JALAN KUDAT", "KM 5,".
    r"|^(?:BATU|BT|KM|MILE)\b\.?\s*\d+(?:\s*\d/\d)?\s*,"
    # Or house numbers before a street, block or floor word: "12 & 14, JLN 2/3,", "5-1,
    # LORONG 4,", "G-12, JALAN PRIMA 3,", "G-15, BLOK C,", "G-12, GROUND FLOOR,".
    r"|^(?:[A-Z]{1,2}\d{0,2}-)?\d+[A-Z]?(?:\s*[&,/-]\s*\d+[A-Z]?)*\s*,?\s*"
    r"(?:JALAN|JLN|JL|LORONG|LRG|LEBUH|PERSIARAN|BLOK|BLOCK|BLK|GROUND|LEVEL|TINGKAT|ARAS)\b"
)
# "10T 1851-A": LOT with its letters read as digits, before a lot number.
LOT_MISREAD = re.compile(r"^[1LI][0O]T(?=\s*(?:\d|P\.?T\b|[A-Z]{1,2}-?\d))")

# Initials print tight ("SELANGOR D.E", "LOT P.T. 2811", "MR D.I.Y."); OCR often reads a
# space after each dot ("D. E"). A space after a lone letter's dot, before another lone
# letter, is dropped.
SPACED_INITIALS = re.compile(r"(?<![A-Z0-9])([A-Z])\. (?=[A-Z](?![A-Z0-9]))")
_CODE_ONLY = re.compile(r"^[\W\d_]*[A-Z]?[\W\d_]*$|^\W*[A-Z]{0,3}\d{3,}(?:-? ?[A-Z])?\W*$")

# A lower-case l between capitals, or ending a word of capitals, is a capital I misread:
# "PARKlNG", "KUCHAl" (they look alike).
_LOWER_L = re.compile(r"(?<=[A-Z])l(?=[A-Z])|(?<=[A-Z]{2})l(?![A-Za-z0-9])")
# A lower-case l standing alone is a 1: "LEVEL l," (a word of one lower-case letter is
# not printed in a header of capitals).
_LONE_L = re.compile(r"(?<![A-Za-z0-9])l(?![A-Za-z0-9'])")

# In a word of small letters, a capital I or a 1 is an l, and a 0 an o: "MendaIing",
# "Chang1un", "Sembi1an", "Retai1"; so is a capital I after a word's capital, before
# its small letters: "JIn", "IImu" (sans-serif prints I and l alike).
_L_IN_SMALL = re.compile(r"(?<=[a-z])[I1](?=[a-z])|(?<=[a-z]{2})1\b|(?<=\b[A-Z])I(?=[a-z])")
_O_IN_SMALL = re.compile(r"(?<=[a-z])0(?=[a-z])")
# A small l opening a word before a small consonant or two capitals is a capital I:
# "Jalan lbrahim", "JALAN TUN lSMAIL", "Cahaya llmu" (in a sans-serif print I and l are
# one glyph).
_L_FOR_I = re.compile(
    r"(?<![A-Za-z0-9])l(?=[bcdfghjklmnpqrstvwxz][a-z])(?!td\b)|(?<![A-Za-z0-9])l(?=[A-Z]{2})"
)
# ... and before one capital and no more letters, a 1: "JALAN PJU lA/41".
_L_FOR_ONE = re.compile(r"(?<![A-Za-z0-9])l(?=[A-Z](?![A-Za-z0-9]))")
# A small l in a number is a 1: "No. l80", "10l", "30ll".
_L_IN_NUMBER = re.compile(r"(?<![A-Za-z])(?=[\dl]*\d)[\dl]*l[\dl]*(?![A-Za-z])")


def clean_row(row: str) -> str:
    """A header row upper case, its spaces single, letters read as digits put right."""
    row = _L_IN_NUMBER.sub(lambda m: m.group(0).replace("l", "1"), row)
    row = _O_IN_SMALL.sub("o", _L_IN_SMALL.sub("l", _L_FOR_I.sub("I", row)))
    row = _L_FOR_ONE.sub("1", row)
    row = _LONE_L.sub("1", _LOWER_L.sub("I", row))
    return letters_for_digits(re.sub(r"\s+", " ", row.upper()).strip())


def letter_count(row: str) -> int:
    """How many Latin letters ``row`` holds (a row of Chinese characters is no name the
    keys spell, nor an address)."""
    return sum("A" <= char <= "Z" for char in strip_accents(row).upper())


def is_noise(row: str) -> bool:
    """Logo residue, serial codes, a stray word: fewer than 4 letters or a lone code."""
    return letter_count(row) < 4 or bool(_CODE_ONLY.match(row))


def opens_address(rows: Sequence[str]) -> bool:
    """
    Whether ``rows[0]`` opens an address although it reads like a code: it starts with a
    house or lot number (``NO 43-45-47G,``, ``10T 12``, ``NO.113G & 115G,``), holds no
    five-digit number (a postcode, or a code such as ``NO 88123``), and a postcode row
    follows within four rows (narrow paper spreads an address over more), before any
    ``TEL``/``INVOICE``/``DATE`` row. A unit's number alone on a row before its comma
    (``G-08,`` / ``PLAZA KEMAJUAN,``), as narrow paper wraps it, opens an address with
    the row after it.
    """
    opening = LOT_MISREAD.sub("LOT", rows[0])
    if opening.endswith(",") and len(rows) > 1:
        opening = f"{opening} {rows[1]}"
    if not ADDRESS_OPENING.match(opening) or POSTCODE.search(rows[0]):
        return False
    for row in rows[1:5]:
        if ADDRESS_STOP.search(row):
            return False
        if POSTCODE.search(row):
            return True
    return False


def has_postcode(row: str) -> bool:
    """Whether ``row`` holds a postcode outside a registration number."""
    return bool(POSTCODE.search(REGISTRATION.sub(" ", row)))


def is_registration(row: str) -> bool:
    """A row that is (mostly) a registration number: ``BR NO.: 0195932-X``."""
    match = REGISTRATION.search(row)
    return match is not None and letter_count(REGISTRATION.sub(" ", row)) < 6


def header_block(rows: Sequence[str]) -> list[str]:
    """
    The seller block: the rows before the first TEL/GST/INVOICE/DATE row.

    Anything below (a supplier named on an item line, a "SOLD BY" footer) is not the
    seller. When that block has no usable row, the first :data:`HEADER_ROWS` rows.
    """
    header = [clean_row(row) for row in rows[:HEADER_ROWS]]
    for index, row in enumerate(header):
        stop = ADDRESS_STOP.search(row)
        if stop and not is_registration(row) and not _named_before(row, stop.start()):
            if any(not is_noise(previous) for previous in header[:index]):
                return header[:index]
            break
    return header


def _named_before(row: str, end: int) -> bool:
    """Whether ``row`` holds a legal name before ``end``: "X RETAIL SDN. BHD. (CO. REG.
    NO. 350912-P)" is the name with its number, not a label row."""
    suffix = LEGAL_SUFFIX.search(row[:end])
    return suffix is not None and letter_count(row[: suffix.start()]) >= 4
