"""
Receipt date extraction: find every date-like string, score it, return it as printed.

The SROIE ground truth keeps the date as printed (``25/12/2018``, ``12-01-19``,
``05 MAR 2018``) without the time, in upper case; this module follows that convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._vocabulary import LOOK_ALIKES

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["find_date", "find_dates"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: The Malay names that differ (Mac, Mei, Ogos, Oktober, Disember), by their first three
#: letters: Malaysian receipts print dates in either language.
_MALAY = {"MAC": 3, "MEI": 5, "OGO": 8, "OKT": 10, "DIS": 12}
_MONTH = (
    r"(?P<mon>(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|OCT|NOV|DEC)[A-Z]*"
    # Whole words only: "1 DISC 10.00" is a discount, not 1 December 2010.
    r"|(?:MAC|MEI|OGOS|OGO|OKT|OKTOBER|DIS|DISEMBER)(?![A-Z]))\.?"
)

# Numeric dates: both separators must be equal ("25/12/2018", "12-01-19", "06.03.2018"),
# OCR may put a space around a separator. The year ends at a non-digit, or right before
# a time printed without a space ("02-04-201815:14:07", "23/06/1812:46:33 PM") or after
# a hyphen ("05/12/2019-20:43").
_GLUED_TIME = r"(?=-?\d{1,2} ?: ?\d{2})"
_DMY = re.compile(
    r"(?<![\d/.-])(?P<a>\d{1,2}) ?(?P<sep>[/.-]) ?(?P<b>\d{1,2}) ?(?P=sep) ?"
    rf"(?P<y>(?:199|20[0-3])\d|\d{{2}})(?:(?![\d/-])|{_GLUED_TIME})"
)
# A comma read for one full stop of a dotted date: "14,09.2017", "14.09,2017".
_COMMA_IN_DATE = re.compile(
    r"(?:(?<=\b\d)|(?<=\b\d\d)),(?=\d{1,2}\.(?:19|20)\d\d\b)"
    r"|(?<=\b\d\d\.\d\d),(?=(?:19|20)\d\d\b)"
)
# A space read inside a date's middle number: "04/1 1/2017".
_SPLIT_FIELD = re.compile(r"(?<![\d/.-])(\d{1,2}([/.-])\d) (?=\d\2(?:19|20)?\d\d(?![\d/.-]))")
# A doubled separator is an OCR or printer stutter: "26-05--2018" is "26-05-2018".
_DOUBLED_SEPARATOR = re.compile(r"(?<=\d)([/.-]) ?\1(?=\d)")
_YMD = re.compile(
    r"(?<![\d/.-])(?P<y>\d{4}) ?(?P<sep>[/.-]) ?(?P<a>\d{1,2}) ?(?P=sep) ?(?P<b>\d{1,2})"
    rf"(?:(?![\d/.-])|{_GLUED_TIME})"
)
# A year of four digits is a receipt's (1990-2039), so "26-JAN-1919:02" is a two-digit
# year and a glued hour, and "15 MAR 2019: 10:30" keeps its year.
_D_MON_Y = re.compile(
    rf"(?<![\dA-Z])(?P<d>\d{{1,2}})(?:ST|ND|RD|TH|HB)?[ /.-]?{_MONTH}[ /.,-]{{0,2}}"
    rf"(?P<y>(?:199|20[0-3])\d|\d{{2}})(?:(?!\d)|{_GLUED_TIME})"
)
_MON_D_Y = re.compile(
    rf"(?<![A-Z]){_MONTH} ?(?P<d>\d{{1,2}})(?:ST|ND|RD|TH)?,? ?(?P<y>\d{{4}})"
    rf"(?:(?!\d)|{_GLUED_TIME})"
)
# "06JUN 2016": a day glued to its month's name, which a space parts from the year, lost
# its space to OCR (a date is printed spaced throughout or not at all).
_GLUED_DAY = re.compile(r"^(\d{1,2})(?=[A-Z]{3,}\.? \d)")
_LABEL = re.compile(r"DATE|TARIKH|\bDT\b")
_NEGATIVE_LABEL = re.compile(
    r"EXP|VALID|EXPIRY|DUE|BEFORE|PRINT|BIRTH|MFG|BEST|COLLECT|NEXT|WARRANT|APPOINT"
)
# A delivery or ready date right before the date ("DELIVERY DATE: ...", "READY BY"); not
# a "DELIVERY ORDER" number elsewhere on the row, nor "ALREADY".
_FUTURE_LABEL = re.compile(r"\b(?:DELIVER(?:Y|ED)?|READY)\b\W*(?:(?:DATE|TARIKH|ON|BY|AT)\b\W*)?$")
_TIME = re.compile(r"\d{1,2} ?: ?\d{2}")
# A month's name with a zero read for its O, or an N for its M: "23 0CT 2018", "N0V",
# "12-NAR-18".
_ZERO_IN_MONTH = re.compile(r"(?<![A-Z0-9])(?:0CT|N0V|0KT|0GOS|0CTOBER|N0VEMBER)(?![A-Z0-9])")
_N_IN_MONTH = re.compile(r"(?<=[\d /.-])N(?=A[RY]\b|AC\b|ARCH\b)")
# Digits that OCR reads as letters; fixed only between digits/separators of a date.
_DIGIT_LOOKALIKES = str.maketrans(
    {"O": "0", "D": "0", "I": "1", "L": "1", "|": "1", "S": "5", "B": "8", "Z": "2"}
)
_LOOKALIKE_RUN = re.compile(
    r"(?<=[\d/.-])[ODILSBZ|](?=[\d/.-])|(?<=\d)[ODILSBZ|](?=\d)"
    # A day's digit of a year-first date: "2017-12-Z4", "2018-01-2O", "2019/03/1l".
    r"|(?<=\d{4}[/.-]\d\d[/.-])[ODILSBZ|](?=\d\b)"
    r"|(?<=\d{4}[/.-]\d\d[/.-]\d)[ODILSBZ|](?![\w])"
    # A four-digit year's last digit, or its last two after 20 ("14/02/20ZI"; not a
    # two-digit year before a table's bars, "15/01/19||"), or its last three after a 2
    # whose next is an O ("14/02/2OZI"), or after a day and month glued on ("09JUL20ZI").
    r"|(?<=[/.-](?:19|20)\d)[ODILSBZ|](?![\w])|(?<=[A-Z]{3} (?:19|20)\d)[ODILSBZ|](?![\w])"
    r"|(?<=[/.-]20)[ODILSBZ]{2}(?![\w|])|(?<=[A-Z]{3} 20)[ODILSBZ]{2}(?![\w|])"
    r"|(?<=\d[A-Z]{3}20)[ODILSBZ]{2}(?![\w|])|(?<=[/.-]2)[OD][ODILSBZ]{2}(?![\w|])"
    # Two in a row inside a year: "2Ol8" (an O and an l).
    r"|(?<=[/.-]\d)[ODILS|]{2}(?=\d\b)|(?<=\b2)[ODILS|]{2}(?=\d\b)"
    # A day or month read whole as letters, between separators: "09/LL/2018".
    r"|(?<=\d[/.-])[ODIL|]{2}(?=[/.-]\d)|(?<![A-Z\d])[ODIL|]{2}(?=[/.-]\d{2}[/.-]\d)"
    # A date's first digit, before a digit and a separator or a month: "O5/03/2018",
    # "O5 OCT 2017".
    r"|(?<![A-Z\d])[ODILZ|](?=\d ?[/.-] ?\d)"
    r"|(?<![A-Z\d])[ODIL|](?=\d[ /.-]?(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
    r"|MAC|MEI|OGO|OKT|DIS))"
    # Or its second digit: "1O JAN 2016".
    r"|(?<=\b\d)[ODIL|](?=[ /.-]?(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
    r"|MAC|MEI|OGO|OKT|DIS))"
)
# A month's three letters between a day and a year, one of them read as its look-alike:
# "15 MAV 2018", "03-DEC-17" read "03-DEG-17". Fixed only when one month is that close.
_MONTH_TOKEN = re.compile(r"(?<=\d[ /.-])[A-Z0-9]{3}(?=[ /.-]?\d{2})")
# The look-alikes domain words are fixed through, and those a month's name shows more:
# "MAV", "DE6", "0EC", "AUQ".
_MONTH_PAIRS = LOOK_ALIKES | {frozenset("VY"), frozenset("G6"), frozenset("D0"), frozenset("GQ")}

#: Plausible years for a receipt. Wide on purpose: the rule is "a calendar year", not
#: "the years of the sample".
MIN_YEAR, MAX_YEAR = 1990, 2039


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str
    line: int
    score: float


def _year(raw: str) -> int:
    value = int(raw)
    return value + 2000 if len(raw) == 2 else value


def _valid(day: int, month: int, year: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12 and MIN_YEAR <= year <= MAX_YEAR


def _month(name: str) -> int:
    """1-12 for the first letters of a month's English or Malay name."""
    return _MALAY.get(name[:3]) or _MONTHS.index(name[:3]) + 1


# A date's label right before it: "DATE:", "Tarikh :", "TKH".
_LABELLED = re.compile(r"\b(?:DATE|TARIKH|TKH)\s*[:.]?\s*$", re.IGNORECASE)


def _numeric_ok(a: int, b: int, year: int) -> bool:
    """Day-first or, failing that, month-first (``12/28/2017`` is printed too)."""
    return _valid(a, b, year) or _valid(b, a, year)


def _matches(line: str) -> list[tuple[int, str, float]]:
    """``(start, printed text, format bonus)`` for each date-like string in a line."""
    found: list[tuple[int, str, float]] = []
    for match in _DMY.finditer(line):
        # "1.20.30" is a version or a price, not a date: a dotted date with a one-digit
        # day or month has a four-digit year ("8.6.2018"), or follows a date's label
        # ("Tarikh: 5.3.18").
        dotted_short = (
            match["sep"] == "."
            and min(len(match["a"]), len(match["b"])) < 2
            and len(match["y"]) < 4
            and not _LABELLED.search(line[: match.start()])
        )
        if not dotted_short and _numeric_ok(int(match["a"]), int(match["b"]), _year(match["y"])):
            printed = re.sub(r" ?([/.-]) ?", r"\1", match.group(0))
            found.append((match.start(), printed, 0.5 if len(match["y"]) == 4 else 0.0))
    for match in _YMD.finditer(line):
        if _valid(int(match["b"]), int(match["a"]), _year(match["y"])):
            printed = re.sub(r" ?([/.-]) ?", r"\1", match.group(0))
            found.append((match.start(), printed, 0.0))
    for pattern in (_D_MON_Y, _MON_D_Y):
        for match in pattern.finditer(line):
            if _valid(int(match["d"]), _month(match["mon"]), _year(match["y"])):
                printed = _GLUED_DAY.sub(r"\1 ", match.group(0).strip(" ,"))
                found.append((match.start(), printed, 0.5))
    return found


_MONTH_NAMES = (*_MONTHS, *_MALAY)


def _month_for(token: str) -> str:
    """The month name ``token`` was read for, one look-alike away, or ``token``."""
    if token in _MONTH_NAMES:
        return token
    close = [
        name
        for name in _MONTH_NAMES
        if sum(a != b for a, b in zip(token, name, strict=True)) == 1
        and all(
            frozenset((a, b)) in _MONTH_PAIRS for a, b in zip(token, name, strict=True) if a != b
        )
    ]
    return close[0] if len(close) == 1 else token


def _clean(line: str) -> str:
    line = _COMMA_IN_DATE.sub(".", _SPLIT_FIELD.sub(r"\1", line.upper()))
    line = _DOUBLED_SEPARATOR.sub(r"\1", line)
    # A month's name is known only once its year's digits are ("O9 JU1 2O22") ...
    line = _digits_for_lookalikes(line)
    line = _MONTH_TOKEN.sub(lambda m: _month_for(m.group(0)), line)
    line = _ZERO_IN_MONTH.sub(lambda m: m.group(0).replace("0", "O"), line)
    line = _N_IN_MONTH.sub("M", line)
    # ... and a run like "2O1O" has overlapping look-alikes: two passes more.
    return _digits_for_lookalikes(_digits_for_lookalikes(line))


def _digits_for_lookalikes(line: str) -> str:
    """``line`` with the letters read for a date's digits read as digits (one pass)."""
    return _LOOKALIKE_RUN.sub(lambda m: m.group(0).translate(_DIGIT_LOOKALIKES), line)


def find_dates(lines: Sequence[str]) -> list[tuple[str, float]]:
    """
    Every date on a receipt with its score, best first.

    Scoring (the weights are judgement, not fitted): a ``DATE``/``TARIKH`` label on the
    same line +3, on the line before +2; a time right after the date +1; a four-digit
    year or a month name +0.5; an ``EXPIRY``/``VALID``/``PRINT`` label -2, and then no
    bonus for the ``DATE`` beside it; earlier lines win ties (the transaction date is
    printed in the header).

    Args:
        lines: the receipt text, one row per item.

    Returns:
        ``(date as printed, score)`` pairs, upper case.
    """
    candidates: list[_Candidate] = []
    cleaned = [_clean(line) for line in lines]
    for index, line in enumerate(cleaned):
        for start, printed, bonus in _matches(line):
            score = bonus
            before = line[:start]
            if _NEGATIVE_LABEL.search(before) or _FUTURE_LABEL.search(before):
                score -= 2  # "EXPIRY DATE": its DATE is no bonus
            elif _LABEL.search(before):
                score += 3
            elif index > 0 and _LABEL.search(cleaned[index - 1]):
                score += 2
            if _TIME.match(line[start + len(printed) :].lstrip(" ,")):
                score += 1
            candidates.append(_Candidate(printed, index, score))
    candidates.sort(key=lambda c: (-c.score, c.line))
    return [(c.text, c.score) for c in candidates]


def find_date(lines: Sequence[str]) -> str | None:
    """
    The most likely transaction date of a receipt, as printed, or ``None``.

    Args:
        lines: the receipt text, one row per item.

    Returns:
        The date string as printed (separators and digit order kept, spaces around the
        separators removed, upper case), without the time.
    """
    dates = find_dates(lines)
    return dates[0][0] if dates else None
