"""
Header text clean-up for the company and address fields: accents OCR added, look-alike
characters, and misread words that a general Malaysian receipt vocabulary can fix.

The vocabulary is the words Malaysian receipts print in company names and addresses:
legal and business words, street and building words, the states and federal territories
with their honorifics (``DARUL EHSAN``), large towns and districts, the points of the
compass in Malay, the titles streets are named with (``JALAN TUANKU ABDUL RAHMAN``). It
names no shop: it is the domain, not a sample.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "DOMAIN_WORDS",
    "LOOK_ALIKES",
    "TRADE_WORDS",
    "clean_header_text",
    "fix_word",
    "letters_for_digits",
    "strip_accents",
]

_TRADE = """
    SDN BHD BERHAD ENTERPRISE ENTERPRISES TRADING TRADERS TRADER RESTORAN RESTAURANT
    RESTAURANTS HARDWARE ELECTRICAL CONFECTIONERY STATIONERY SUPERMARKET HYPERMARKET
    MINIMARKET PHARMACY FARMASI BAKERY MARKETING INDUSTRIES INDUSTRIAL HOLDINGS
    CORPORATION SERVICES SERVICE KEDAI PERNIAGAAN PERUSAHAAN MAKANAN RUNCIT EMPORIUM
    BOOKSTORE GENERAL SUPPLIES SUPPLY MACHINERY ENGINEERING FURNITURE GROCERY FROZEN
    BEVERAGE PRINTING STORE STORES MARKET CENTRE CENTER GARDEN NURSERY OPTICAL MOTOR
    MOTORS AUTOMOBILE AUTOMOTIVE ELECTRONICS COMPANY LIMITED INTERNATIONAL MANAGEMENT
    DEVELOPMENT CONSTRUCTION BUILDING MATERIAL MATERIALS TRAVEL TRANSPORT LOGISTICS
    PETROLEUM STATION KITCHEN CATERING BOUTIQUE KILANG ROTI KOPI NASI MAKAN SYARIKAT
    KOPITIAM KLINIK PASAR MINI PARKING MEDICAL CLINIC DENTAL PERGIGIAN
    COMMUNICATION TELECOMMUNICATION SEAFOOD LAUNDRY HOSPITALITY EXPRESS DEPARTMENT
    BAKERI STATIONERS STATIONARY CONFECTIONERS RETAIL ALAT TULIS PERKAKAS BINAAN BAHAN
    BENGKEL KERETA MOTOSIKAL ELEKTRIK PERABOT DOBI JAHIT CERMIN KAIN UBAT BEKALAN
    HANDICRAFT HANDICRAFTS MINUMAN CENDERAMATA CAFE PHARMA HEALTHCARE HOME MEE MART STESEN
    MINYAK CONVENIENCE SUPERMARKETS HYPERMARKETS HYPERSTORE FOTOSTAT PERCETAKAN JEWELLERS
    JEWELLERY GOLDSMITH SPORTS SHOES FLORIST TAILOR SALOON SALON TYRE TYRES OPTIK TEXTILE
    TEXTILES FASHION VENTURE VENTURES RESOURCES COFFEE
"""
_PLACES = """
    JALAN LORONG PERSIARAN LEBUH LEBUHRAYA LINGKARAN BANDAR TAMAN KAMPUNG KAWASAN
    PERINDUSTRIAN INDUSTRI BANGUNAN WISMA MENARA KOMPLEKS COMPLEX PLAZA BLOK BLOCK
    TINGKAT LEVEL FLOOR GROUND SEKSYEN SECTION PUSAT PERDAGANGAN NIAGA DAGANG BATU MALL
    SUNGAI BUKIT PULAU PADANG TELUK TANJUNG SIMPANG PEKAN UTAMA BARU TENGAH INDAH MAJU
    JOHOR BAHRU KEDAH KELANTAN MELAKA MALACCA NEGERI SEMBILAN PAHANG PERAK PERLIS PINANG
    PENANG SABAH SARAWAK SELANGOR TERENGGANU KUALA LUMPUR LABUAN PUTRAJAYA WILAYAH
    PERSEKUTUAN MALAYSIA PETALING JAYA SHAH ALAM KLANG SUBANG CHERAS KAJANG AMPANG
    PUCHONG SERDANG SEREMBAN IPOH SETIA DAMANSARA KEPONG RAWANG SELAYANG GOMBAK
    SEMENYIH BANGI NILAI SKUDAI KULAI MUAR BATU PAHAT KLUANG SEGAMAT KUANTAN SEBERANG
    BUTTERWORTH GEORGE TOWN BAYAN LEPAS KOTA BHARU KINABALU KUCHING SANDAKAN TAWAU
    BINTULU ALOR SETAR TAIPING INTAN KAMPAR TEMERLOH BENTONG GENTING KEMAMAN TINGGI
    PONTIAN MERSING BANGSAR BRICKFIELDS SETAPAK WANGSA SENTUL SEGAMBUT CYBERJAYA SEPANG
    BANTING BALAKONG KEMBANGAN PELABUHAN MAHKOTA MERTAJAM PETANI KULIM KANGAR MANJUNG
    GUDANG ISKANDAR PUTERI LAHAD DATU KENINGAU SEMPORNA MIRI SIBU CAMERON HIGHLANDS KRAI
    LIMBANG LAWAS KAPIT MUKAH SARIKEI BETONG SERIAN KUDAT RANAU PAPAR TUARAN BEAUFORT PETI
    MILE PENAMPANG CENTRAL KELANG MEDAN
    DARUL EHSAN TAKZIM RIDZUAN MAKMUR KHUSUS AMAN IMAN NAIM
    PERDANA SUNWAY PUTRA BESAR TIMUR BARAT UTARA SELATAN SENTRAL SEJAHTERA
    TUANKU TUNKU TENGKU SULTAN SULTANAH PERMAISURI RAJA DATO DATUK HAJI ABDUL SRI
    KAMPONG SUNGEI MAIL PENAMBANG NILE
"""
# The last line of each holds spellings printed as they are, next to a domain word one
# letter away: the old KAMPONG and SUNGEI, the Malay BAKERI, STATIONERS and the common
# STATIONARY, MAIL beside MALL, PENAMBANG beside PENAMPANG, NILE beside MILE. Being
# domain words, they are never "fixed" into their neighbours.
#: Words a shop's trade is named with (upper case).
TRADE_WORDS = frozenset(_TRADE.split())
#: Words printed in Malaysian company names and addresses (upper case).
DOMAIN_WORDS = TRADE_WORDS | frozenset(_PLACES.split())
# The personal names streets most often honour. Not domain words: a name is put right
# only from an N or RN read for its M ("AHNAD", "RAHRNAN"), since its other look-alikes
# are names too ("RAHMAH").
_NAMES = frozenset(
    (
        *("AHMAD", "RAHMAN", "ISMAIL", "IBRAHIM", "RAZAK", "HUSSEIN"),
        *("HASSAN", "OSMAN", "YUSOF", "MAHMUD", "HAMID", "ABDULLAH"),
    )
)

#: Pairs of characters OCR confuses; a short word is only fixed through one of these.
LOOK_ALIKES = frozenset(
    frozenset(pair)
    for pair in ("MN", "O0", "OD", "OQ", "DB", "B8", "I1", "IL", "L1", "S5", "EF", "HN", "UV", "CG")
)
# In a longer word, also a letter read with strokes lost: E as L, R as P.
_LONG_CONFUSIONS = LOOK_ALIKES | {frozenset("EL"), frozenset("RP")}
_WORD = re.compile(r"[A-Z]{4,}")
_BY_LENGTH: dict[int, list[str]] = {}
for _word in DOMAIN_WORDS:
    _BY_LENGTH.setdefault(len(_word), []).append(_word)

# "(M)SDN BHD", "BAKERYSDN BHD", "TRADINGSDN. BHD.": a bracket or a word glued to the
# legal suffix after it.
_GLUED_SUFFIX = re.compile(r"\)(?=SDN\b)|(?<=[A-Z]{4})(?=SDN[ .]*[BD8][HN][DO0]\b)")
# "(N) SDN BHD": Malaysia's (M) before a legal suffix, its M read as N.
_M_AS_N = re.compile(r"\((?:N|RN|NN)\)(?= ?(?:SDN|BHD|BERHAD)\b)")
# "SDN DHD", "SDN BND", "SDN 8HD", "SDN.BHD", "SDNBHD": the legal suffix as OCR reads it.
_SDN_BHD = re.compile(r"\b(?:(SDN[ .]+)|SDN)[BD8][HN][DO0]\b")
# "5DN BHD", "SON BHD": its S read as a 5, its D as an O (not "TAN & SON BHD", "TAN &SON").
_SDN_FIVE = re.compile(
    r"\b5DN(?=[ .]*[BD8][HN][DO0]\b)|(?<!&)(?<!& )(?<!AND )\bS[O0]N(?=[ .]*[BD8][HN][DO0]\b)"
)


def strip_accents(text: str) -> str:
    """
    Remove accents from Latin letters (``ÁLAM`` -> ``ALAM``); receipts print none.

    Args:
        text: any text.

    Returns:
        The text with combining marks removed after NFKD decomposition.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(char for char in decomposed if not unicodedata.combining(char))
    )


def fix_word(word: str) -> str:
    """
    A misread domain word put right, or the word unchanged.

    A word of 4-7 letters is fixed only by one substitution of a look-alike pair (``ALAN``
    -> ``ALAM``, ``PARKINC`` -> ``PARKING``; never ``DAYA`` -> ``JAYA``, ``BATERI`` ->
    ``BAKERI``, ``GUNTING`` -> ``GENTING`` nor ``TANDANG`` -> ``TANJUNG``); a longer one
    by up to two substituted letters, one of them any letter and the other a look-alike
    or a letter with strokes lost (``HARIWARL`` -> ``HARDWARE``, ``RESTOPAN`` ->
    ``RESTORAN``; never ``SENAWANG`` -> ``SELAYANG``), the first letter kept or read as
    its look-alike (``NACHINERY`` -> ``MACHINERY``). Letters are never added or dropped
    (``KILANG`` is not ``KLANG``). The fix must be the only domain word at that distance,
    counting look-alike letters before free ones.

    Args:
        word: an upper-case word.

    Returns:
        The domain word it was read for, or ``word``.
    """
    if word in DOMAIN_WORDS or len(word) < 4:
        return word
    if "RN" in word and (joined := word.replace("RN", "M", 1)) in DOMAIN_WORDS:
        return joined  # an M read as RN: "MERTAJARN"
    if len(word) <= 7:
        found = [
            candidate
            for candidate in _BY_LENGTH.get(len(word), [])
            if sum(a != b for a, b in zip(word, candidate, strict=True)) == 1
            and all(
                frozenset((a, b)) in LOOK_ALIKES
                for a, b in zip(word, candidate, strict=True)
                if a != b
            )
        ]
        return found[0] if len(found) == 1 else word
    best: list[tuple[int, int, str]] = []
    # Substitutions only: a dropped letter turns real words into others (KILANG, KLANG).
    for candidate in _BY_LENGTH.get(len(word), []):
        if candidate[0] != word[0] and frozenset((candidate[0], word[0])) not in LOOK_ALIKES:
            continue  # OCR keeps a word's first letter, or reads a look-alike for it
        changed = [frozenset((a, b)) for a, b in zip(word, candidate, strict=True) if a != b]
        # Two at most, one of them free: two free letters make a printed place the
        # vocabulary lacks into one it has (SENAWANG -> SELAYANG).
        free = sum(pair not in _LONG_CONFUSIONS for pair in changed)
        if len(changed) <= 2 and free <= 1:
            best.append((len(changed), free, candidate))
    if not best:
        return word
    # The fewest letters changed, then the fewest free ones: STATIONFRY is STATIONERY (an
    # F for its E), not STATIONARY (an F for its A).
    best.sort()
    if len(best) > 1 and best[1][:2] == best[0][:2]:
        return word  # two domain words as close: do not guess
    return best[0][2]


# A word of letters with a 0 or 1 between two of them: "K0PITIAM", "SELANG0R".
_MIXED_WORD = re.compile(r"\b[A-Z01]*[A-Z][01]+[A-Z][A-Z01]*\b")
_IN_WORD_DIGIT = re.compile(r"(?<=[A-Z])[01]+(?=[A-Z])")
_AS_LETTERS = str.maketrans("01", "OI")
# An 8 or a 5 among letters, with two letters on each side, three after it at a word's
# start or four after its first letter, or ending a word of four letters or more:
# "SU8ANG", "8AHRU", "U5AHAWAN", "PER5IARAN", "RESTAURANT5", "HABA8" (codes such as
# "SS15", "PJU8", "8TH", "U8A" stay).
_B_OR_S = re.compile(
    r"(?<=\b[A-Z]{2})[85](?=[A-Z]{2})|(?<=[A-Z]{3})[85](?=[A-Z]{2})"
    r"|\b[85](?!O+\b)(?=[A-Z]{3,}\b)"  # not a postcode of Os: "8OOOO JOHOR BAHRU"
    r"|(?<=\b[A-Z])[85](?=[A-Z]{4,}\b)"  # after a word's first letter: "U5AHAWAN"
    r"|(?<=[A-Z]{4})[58]\b"
    r"|(?<=\b(?!NO|SS)[A-Z]{2})8(?=[A-Z]\b)"  # in a word of four: "KU8U" (not "NO8A")
    r"|(?<=[A-Z]{4})5(?=[A-Z]\b)"  # before a long word's last letter: "SUARA5A"
)
# A 6 for the G it looks like, opening a word of letters or between them: "6AYA",
# "6UA MUSANG", "ALOR 6AJAH" (not "6TH").
_G_AS_SIX = re.compile(r"\b6(?!TH\b)(?=[A-Z]{2,}\b)|(?<=[A-Z]{2})6(?=[A-Z]{2})")
# A 2 for the Z it looks like, opening a word of four letters or more: "2AINAL".
_Z_AS_TWO = re.compile(r"\b2(?=[A-Z]{3,}\b)")
# "HARDVVARE", "VVANGI": a W read as two Vs (not in "VVIP" nor "SAVVY").
_W_AS_VV = re.compile(r"\bVV(?!IP\b)(?=[A-Z])|(?<=[A-Z])VV(?!Y)")
# Look-alikes put right only where they make a domain word: a 6 ending a word
# ("TRADIN6"; not "LEVEL6"), a 2 between letters ("RID2UAN"; not "EAT2GO").
_SHAPES = ((re.compile(r"6$"), "G"), (re.compile("(?<=[A-Z])2(?=[A-Z])"), "Z"))
_SHAPED_WORD = re.compile(r"\b[A-Z]*(?:[A-Z]6\b|[A-Z]2[A-Z])[A-Z2]*\b")


def _shaped_domain_word(match: re.Match[str]) -> str:
    word = match.group(0)
    for pattern, letter in _SHAPES:
        word = pattern.sub(letter, word)
    return word if word in DOMAIN_WORDS else match.group(0)


# "SENC", "HEONC": a G read as C after a vowel and N at a word's end (no Malay, Chinese
# or English name ends so, but for ZINC).
_NG_AS_NC = re.compile(r"\b(?!ZINC\b)([A-Z]+[AEIOU]N)C\b")
# "JALAN 55 2/64", "JALAN 5S 24/11": a section's SS read with fives.
_SS_AS_FIVES = re.compile(r"(?<=\bJALAN )(?:55|5S|S5)(?= ?\d)")
# "SEKSYEN L4": a section's 1 read as I or L (a lot or unit may be "L2-15", a level's).
_ONE_AS_LETTER = re.compile(r"\b(SEKSYEN|SECTION) [IL](?=\d)")
# An I opening a number of up to four digits after a unit's dash, a bracket, a mile or a
# house number's NO: "G-I2", "(I988)", "BATU I2", "NO. I5" (a lot may be "LOT I3").
_ONE_AS_I = re.compile(r"(?:(?<=[-(])|(?<=\bBATU )|(?<=\bNO )|(?<=\bNO\. ))I(?=\d{1,3}(?![\w]))")
# "DAT0", "SERDANG0": an O read as 0 at the end of a word of three letters or more.
_LAST_ZERO = re.compile(r"(?<=[A-Z]{3})0\b")
# "S3300 KUALA LUMPUR": a postcode's 5 read as S.
_POSTCODE_S = re.compile(r"(?<=, )S(?=\d{4} [A-Z])")
# "N0 12": the house number's NO with its O read as a zero.
_NUMBER_LABEL = re.compile(r"\bN0(?=[ .:]*\d)")
# An & read as the 8 it looks like between a name and SONS ("NG 8 SONS"; not "8
# BROTHERS", a lucky number's name, nor a house's "NO 8"), and a B as 8 in food and
# beverage's "F&B" before a word ("F&8 CORNER"; not a unit's "LOT F&8,").
_AMPERSAND_AS_EIGHT = re.compile(
    r"(?<=[A-Z]{2} )(?<!\bNO )(?<!\bLOT )8(?= SONS?\b)(?! SONS? (?:ROAD|STREET)\b)"
    r"|^8(?= SONS?[.,]?$)"  # a row of its own, under the name
)
_FB_EIGHT = re.compile(r"(?<=\bF&)8(?= [A-Z])|(?<=\bF & )8(?= [A-Z])")


# "ABDU1", "1POH", "SR1", "0ARUL": a 1 or 0 ending or opening a word of letters, read
# for the I, L, O or D of a domain word.
_EDGE_DIGIT = re.compile(r"\b[A-Z]{2,}[01]\b|\b[01][A-Z]{3,}\b")


def _letter_for_edge_digit(match: re.Match[str]) -> str:
    word = match.group(0)
    at = -1 if word[-1].isdigit() else 0
    for letter in "LI" if word[at] == "1" else "OD":
        fixed = word[:-1] + letter if at else letter + word[1:]
        if fixed in DOMAIN_WORDS or fixed in _NAMES:
            return fixed
    return word


def letters_for_digits(text: str) -> str:
    """
    Digits that OCR read for the letters they look like, where a word cannot hold them.

    ``0`` and ``1`` between two letters of a word of 4 characters or more, 3 of them
    letters, are ``O`` and ``I`` (``J0H0R``, ``K0PI``; a unit code such as ``B1G`` or
    ``B1A3`` is left alone), as is a ``0`` in a word of three (``L0W``) or ending a word
    (``DAT0``); a ``1`` or ``0`` ending or opening a word is the ``L``, ``I`` or ``O`` of
    a domain word (``ABDU1``, ``1POH``, ``SR1``; a ``0`` may be its ``D``: ``0ARUL``);
    ``8``, ``5``, ``6`` and ``2`` among letters are ``B``, ``S``, ``G`` and ``Z``
    (``SU8ANG``, ``8AHRU``, ``KU8U``, ``U5AHAWAN``, ``RESTAURANT5``, ``6AYA``,
    ``2AINAL``; not ``6TH``, ``NO8A``); a ``6`` ending a word and a ``2`` inside one are
    a ``G`` and a ``Z`` where that makes a domain word (``TRADIN6``, ``RID2UAN``); ``VV``
    is a ``W`` (``HARDVVARE``); ``N0`` before a number is ``NO``, ``JALAN 55 2/64`` is
    ``SS``, ``SEKSYEN L4`` is 14, an ``I`` opening a unit's or a mile's number a ``1``
    (``G-I2``, ``BATU I2``) and ``S3300`` after a comma a postcode.
    """

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        letters = sum(char.isalpha() for char in word)
        zero_in_three = len(word) == 3 and word[1] == "0" and letters == 2  # "L0W"
        if not zero_in_three and (len(word) < 4 or letters < 3):
            return word
        return _IN_WORD_DIGIT.sub(lambda run: run.group(0).translate(_AS_LETTERS), word)

    text = _EDGE_DIGIT.sub(_letter_for_edge_digit, text)
    text = _B_OR_S.sub(lambda match: "B" if match.group(0) == "8" else "S", text)
    text = _Z_AS_TWO.sub("Z", _G_AS_SIX.sub("G", _W_AS_VV.sub("W", text)))
    text = _SHAPED_WORD.sub(_shaped_domain_word, text)
    text = _SS_AS_FIVES.sub("SS", text)
    text = _ONE_AS_LETTER.sub(r"\1 1", _POSTCODE_S.sub("5", _LAST_ZERO.sub("O", text)))
    text = _ONE_AS_I.sub("1", text)
    text = _FB_EIGHT.sub("B", _AMPERSAND_AS_EIGHT.sub("&", text))
    return _NUMBER_LABEL.sub("NO", _MIXED_WORD.sub(fix, text))


def clean_header_text(text: str) -> str:
    """
    A company or address string cleaned of OCR artefacts.

    Accents are removed, ``0`` and ``1`` inside a word read as ``O`` and ``I``
    (``J0HOR``), ``SDN DHD``-like suffixes (and ``5DN BHD``) read as ``SDN BHD``, a last
    ``NC`` as ``NG`` (``SENC``), a domain word glued to the next split from it
    (``JALANKAPAR``) or split by a space rejoined (``HARDWA RE``), an ``&`` spaced on one
    side spaced on both (``KOPI& MAKANAN``), a bracket glued to ``SDN`` parted from it
    and ``(N)`` before it read ``(M)``, each word of four letters or more that is a near
    miss of exactly one domain word (:data:`DOMAIN_WORDS`) replaced by it, and a name
    streets honour with an N or RN for its M put right (``AHNAD``).

    Args:
        text: an upper-case company or address string.

    Returns:
        The cleaned string.
    """
    text = letters_for_digits(strip_accents(text))
    text = _GLUED_SUFFIX.sub(lambda match: ") " if match.group(0) else " ", text)
    text = _SDN_BHD.sub(
        lambda match: (match.group(1) or "SDN ") + "BHD", _SDN_FIVE.sub("SDN", text)
    )
    text = _M_AS_N.sub("(M)", text)
    text = _NG_AS_NC.sub(r"\1G", _LOPSIDED_AMPERSAND.sub(" & ", text))
    text = _LONG_WORD.sub(lambda match: _unglued(match.group(0)), text)
    text = _SPLIT_WORD.sub(_rejoined, text)
    return _WORD.sub(lambda match: _name_with_m(fix_word(match.group(0))), text)


def _name_with_m(word: str) -> str:
    """``word``, or the one name of :data:`_NAMES` it is with an N or RN read for an M."""
    if word in DOMAIN_WORDS or "N" not in word:
        return word
    found = {word[:i] + "M" + word[i + 1 :] for i, char in enumerate(word) if char == "N"}
    found |= {
        word[:i] + "M" + word[i + 2 :] for i in range(len(word) - 1) if word[i : i + 2] == "RN"
    }
    names = found & _NAMES
    return names.pop() if len(names) == 1 else word


# "KOPI& MAKANAN": an & with a space on one side only lost the other (OCR's spacing;
# printed, it is spaced on both sides or neither, "NO.2&4").
_LOPSIDED_AMPERSAND = re.compile(r"(?<=\w)& (?=\w)|(?<=\w) &(?=\w)")
_LONG_WORD = re.compile(r"\b[A-Z]{9,}\b")
# "HARDWA RE": a domain word OCR split with a space, one part of two letters or less.
_SPLIT_WORD = re.compile(r"\b(?:([A-Z]{4,}) ([A-Z]{1,2})|([A-Z]{1,2}) ([A-Z]{4,}))\b")


def _rejoined(match: re.Match[str]) -> str:
    """The two parts as one domain word, when neither is a word of its own there."""
    first, second = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    joined = first + second
    if joined in DOMAIN_WORDS and first not in DOMAIN_WORDS and second not in DOMAIN_WORDS:
        return joined
    return match.group(0)


# Words that open more words and never end a compound: streets, areas, trades. Not
# towns nor legal words ("GEORGETOWN", "INDAHPURA" and "BERHADAPAN" are printed so),
# nor PHARMA, which brands glue on ("PHARMACARE").
_OPENERS = (
    frozenset(
        (
            *("JALAN", "LORONG", "PERSIARAN", "LEBUH", "TAMAN", "BANDAR", "KAMPUNG"),
            *("KAWASAN", "PERINDUSTRIAN", "WISMA", "MENARA", "KOMPLEKS", "PLAZA"),
            *("BANGUNAN", "SEKSYEN", "NEGERI"),
        )
    )
    | TRADE_WORDS
) - frozenset(("SDN", "BHD", "BERHAD", "LIMITED", "COMPANY", "PHARMA"))


def _unglued(word: str) -> str:
    """``JALANKAPAR`` -> ``JALAN KAPAR``: a street, area or trade word of 5 letters or
    more glued to a word of 4 or more (OCR lost the space between them)."""
    if word in DOMAIN_WORDS:
        return word
    for cut in range(len(word) - 4, 4, -1):
        if word[:cut] in _OPENERS:
            return f"{word[:cut]} {word[cut:]}"
    return word
