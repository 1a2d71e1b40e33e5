"""
The field guard: the structure stage's fields are read from the page, never invented.

A model may answer with a plausible value the page does not hold (a date in a format it
likes, a name from elsewhere on the page, no total at all).  Each field the offline rules
also extract is checked against the text the model was sent, by what kind of value it is:

- ``date``: a calendar day (any format: ``25/12/2018``, ``2018-12-25``, ``25 DEC 2018``)
  that is one of the dates printed in the text, read by the offline date rules;
- ``total``: an amount whose value is one of the amounts printed in the text;
- ``company`` and ``address``: text whose words are mostly words of the text
  (`MIN_WORD_SHARE`), and not the same as each other (one of the two is misplaced).

An empty value, or one that fails its check, is replaced by the offline rules' value;
the reason is noted in the record.  Other fields of a custom schema are not checked: a
field may be derived, not copied, and the offline rules have no value to put instead.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from stages.offline._dates import MAX_YEAR, MIN_YEAR, find_dates
from stages.offline._metrics import comparable_text
from stages.offline._total import find_amounts

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FIELD_KINDS", "MIN_WORD_SHARE", "field_problem", "ground_fields"]

FIELD_KINDS = {"company": "text", "date": "date", "address": "text", "total": "amount"}
"""The kind of each field the guard checks (the fields the offline rules extract)."""

MIN_WORD_SHARE = 0.6
"""The share of a text field's words that the page's text must hold.

A value copied from the page holds all its words, bar a character the model mended or
a word OCR split; one made up, or read from another document, holds few."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# The Malay names that differ from the English ones by their first three letters.
_MALAY_MONTHS = {"MAC": 3, "MEI": 5, "OGO": 8, "OKT": 10, "DIS": 12}
_NUMERIC_DATE = re.compile(r"^(\d{1,4})\s*([/.-])\s*(\d{1,2})\s*\2\s*(\d{1,4})$")
_WORD = re.compile(r"[A-Z0-9]+")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
# A time after the date ("25/12/2018 10:30 PM"): the day is what is checked.
_TIME = re.compile(r"\s*\d{1,2}:\d{2}(?::\d{2})?\s*(?:AM|PM)?$")


def _year(raw: str) -> int:
    year = int(raw)
    if len(raw) <= 2:
        year += 1900 if year + 1900 >= MIN_YEAR else 2000
    return year


def _month(word: str) -> int | None:
    head = word[:3]
    if head in _MONTHS:
        return _MONTHS.index(head) + 1
    return _MALAY_MONTHS.get(head)


def _days(value: str) -> set[tuple[int, int, int]]:
    """
    The calendar days ``(year, month, day)`` a date may mean: ``03/04/2018`` is either
    3 April or 4 March, so both.  Empty for what is not a date.
    """
    text = _TIME.sub("", comparable_text(value).replace(",", " ")).strip()
    found: set[tuple[int, int, int]] = set()
    numeric = _NUMERIC_DATE.match(text)
    if numeric:
        first, _, middle, last = numeric.groups()
        if len(first) == 4:
            orders = [(first, middle, last)]
        else:
            orders = [(last, middle, first), (last, first, middle)]
        for year, month, day in orders:
            found.add((_year(year), int(month), int(day)))
    else:
        words = re.findall(r"[A-Z]+|\d+", text)
        months = [m for w in words if w.isalpha() and (m := _month(w)) is not None]
        numbers = [w for w in words if w.isdigit()]
        if len(months) == 1 and len(numbers) == 2:
            day, year = sorted(numbers, key=len)
            found.add((_year(year), months[0], int(day)))
    return {
        (year, month, day)
        for year, month, day in found
        if MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12 and 1 <= day <= 31
    }


def _amount(value: str) -> Decimal | None:
    found = find_amounts(value)
    if found:
        return abs(found[0].value)
    bare = re.sub(r"[^\d.\-]", "", value.upper().replace("RM", "").replace("MYR", ""))
    if not _NUMBER.match(bare):
        return None
    try:
        return abs(Decimal(bare))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def _words(text: str) -> list[str]:
    return _WORD.findall(comparable_text(text))


def field_problem(kind: str, value: str, text: str) -> str | None:
    """
    Why a field's value is not read from the page, or ``None`` when it is.

    Args:
        kind: ``"date"``, ``"amount"`` or ``"text"`` (see `FIELD_KINDS`).
        value: the model's value (not empty).
        text: the page's text, as the model was sent it.

    Returns:
        The reason, e.g. ``"a date not in the text"``; ``None`` for a value that passes.
    """
    if kind == "date":
        days = _days(value)
        if not days:
            return "not a date"
        dates = set().union(*(_days(date) for date, _ in find_dates(text.splitlines())))
        return None if days & dates else "a date not in the text"
    if kind == "amount":
        amount = _amount(value)
        if amount is None:
            return "not an amount"
        printed = {abs(a.value) for line in text.splitlines() for a in find_amounts(line)}
        if amount == amount.to_integral_value():
            printed |= {Decimal(number) for number in re.findall(r"(?<![\d.,])\d+(?![\d.,])", text)}
        return None if amount in printed else "an amount not in the text"
    words = _words(value)
    if not words:
        return "no words"
    page = set(_words(text))
    share = sum(word in page for word in words) / len(words)
    return None if share >= MIN_WORD_SHARE else "words not in the text"


def ground_fields(
    fields: Mapping[str, str | None],
    text: str,
    offline: Mapping[str, str | None],
) -> tuple[dict[str, str | None], dict[str, str]]:
    """
    The fields with each checked one that is empty or fails its check replaced by the
    offline rules' value.

    Args:
        fields: the model's fields.
        text: the page's text, as the model was sent it.
        offline: the offline rules' fields of the same page (may lack any).

    Returns:
        ``(fields, problems)``: the fields to keep, and per replaced field why (``"empty"``
        or the check's reason).  An empty field the offline rules leave empty too is not
        a problem: nothing is replaced.
    """
    kept = dict(fields)
    problems: dict[str, str] = {}
    for name, value in fields.items():
        kind = FIELD_KINDS.get(name)
        if kind is None:
            continue
        if value is None or not value.strip():
            if offline.get(name):
                problems[name] = "empty"
        elif (problem := field_problem(kind, value, text)) is not None:
            problems[name] = problem
        elif kind == "text" and (twin := _twin(name, value, fields)) is not None:
            problems[name] = f"the same as {twin}"
        if name in problems:
            kept[name] = offline.get(name)
    return kept, problems


def _twin(name: str, value: str, fields: Mapping[str, str | None]) -> str | None:
    """Another text field with the same value: a name is not an address, nor the reverse,
    so one of the two is misplaced and neither can be trusted."""
    same = comparable_text(value)
    for other, kind in FIELD_KINDS.items():
        if other != name and kind == "text" and comparable_text(fields.get(other) or "") == same:
            return other
    return None
