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
  Each must also be whole lines of the text (`lines_spanned`), not a piece of one: a
  name's last word, or a town cut from its postcode's line, is a fragment the page holds
  but not the field.  An address must span at least as many lines as the offline rules'
  address does (one row of a two-row address is not the address), and a company must
  not lie within the lines of the offline rules' address (a town or a state alone is not
  the name).  A company's line may also print its registration number (``(81109-A)``),
  which need not be in it.

An empty value, or one that fails its check, is replaced by the offline rules' value;
the reason is noted in the record.

The other fields of a custom schema are checked too (`unfound_fields`), each by what its
value reads as: a date must be one printed, a number one of the printed amounts or whole
numbers, any other text mostly words of the page.  One that fails is flagged, not
replaced: the offline rules have no value to put instead, and a field may be derived,
not copied (a category, a count), so the value stays and the record says why it was not
found.  A field whose schema lists its values (``enum``, ``const``) is a label chosen
from the schema, not read from the page, and is not checked.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from stages.offline._dates import MAX_YEAR, MIN_YEAR, find_dates
from stages.offline._metrics import comparable_text
from stages.offline._total import find_amounts

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = [
    "FIELD_KINDS",
    "LINE_SHARE",
    "MAX_RUN",
    "MIN_WORD_SHARE",
    "field_problem",
    "ground_fields",
    "lines_spanned",
    "unfound_fields",
]

FIELD_KINDS = {"company": "text", "date": "date", "address": "text", "total": "amount"}
"""The kind of each field the guard checks (the fields the offline rules extract)."""

MIN_WORD_SHARE = 0.6
"""The share of a text field's words that the page's text must hold.

A value copied from the page holds all its words, bar a character the model mended or
a word OCR split; one made up, or read from another document, holds few."""

LINE_SHARE = 0.8
"""The share of a company's or an address's words that the lines it spans must hold, and
of those lines' words that it must hold: a word in five may be mended, split or left
out, while a line of three words is not one of its words, nor two lines one of them."""

MAX_RUN = 6
"""The most lines of the page a company or an address may span: six rows is a longer
address than the offline rules read (I pulled the number out of the air)."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# The Malay names that differ from the English ones by their first three letters.
_MALAY_MONTHS = {"MAC": 3, "MEI": 5, "OGO": 8, "OKT": 10, "DIS": 12}
_NUMERIC_DATE = re.compile(r"^(\d{1,4})\s*([/.-])\s*(\d{1,2})\s*\2\s*(\d{1,4})$")
_WORD = re.compile(r"[A-Z0-9]+")
#: A registration number printed beside a name: a token with a digit and a bracket or a
#: hyphen (``(81109-A)``, ``123456-K``).  A bare number (a postcode) is not one: the town
#: after it is a piece of the address's line, not a name.
_NUMBERED = re.compile(r"\S*(?:\d\S*[(\-)]|[(\-)]\S*\d)\S*")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
# A value that is a number alone: a sign, a currency, thousands' commas, a decimal part.
_NUMBER_ALONE = re.compile(
    r"[(\-+]?\s*(?:RM|MYR|\$)?\s*[(\-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?[)\-]?"
)
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


def _covers(words: list[str], others: set[str]) -> bool:
    return sum(word in others for word in words) >= LINE_SHARE * len(words)


def _span(value: str, text: str, *, numbers: bool = True) -> tuple[int, int] | None:
    """The first and last line (0-based, of the lines with words) of the shortest run of
    consecutive lines of ``text`` that ``value`` is, or ``None``.  Without ``numbers``,
    the registration numbers the run prints need not be in ``value``."""
    words = _words(value)
    if not words:
        return None
    mine = set(words)
    lines = [line for line in text.splitlines() if _words(line)]
    rows = [_words(line) for line in lines]
    kept = rows if numbers else [_words(_NUMBERED.sub(" ", line)) for line in lines]
    for size in range(1, MAX_RUN + 1):
        for start in range(len(rows) - size + 1):
            run = [word for row in rows[start : start + size] for word in row]
            needed = [word for row in kept[start : start + size] for word in row]
            if _covers(words, set(run)) and _covers(needed, mine):
                return start, start + size - 1
    return None


def lines_spanned(value: str, text: str) -> int | None:
    """
    How many consecutive lines of ``text`` ``value`` is, or ``None`` when it is no run of
    whole lines (of at most `MAX_RUN`).

    The value's words must be mostly the run's and the run's mostly the value's (as
    `LINE_SHARE` counts), so a word mended or split still matches, while a word or two
    cut from a longer line does not.  The shortest
    run that matches is counted.

    Args:
        value: a company or an address.
        text: the page's text, one printed line a line.

    Returns:
        The number of lines, or ``None``.
    """
    span = _span(value, text)
    return None if span is None else span[1] - span[0] + 1


def _lines_problem(name: str, value: str, text: str, offline: str | None) -> str | None:
    """Why a company or an address that passed `field_problem` is a fragment of the page,
    or ``None`` (see the module's docstring)."""
    span = _span(value, text, numbers=name != "company")
    if span is None:
        return "not whole lines of the text"
    rules = _span(offline, text) if offline else None
    if rules is None:
        return None
    if name == "address" and span[1] - span[0] < rules[1] - rules[0]:
        return "fewer lines than the address"
    if name == "company" and rules[0] <= span[0] and span[1] <= rules[1]:
        return "within the address"
    return None


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
        elif name in ("company", "address") and (
            fragment := _lines_problem(name, value, text, offline.get("address"))
        ):
            problems[name] = fragment
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


def unfound_fields(
    fields: Mapping[str, str | None],
    text: str,
    *,
    labels: Collection[str] = (),
) -> dict[str, str]:
    """
    The fields of a custom schema whose value the page's text does not hold, with why.

    A field `FIELD_KINDS` names is `ground_fields`' to check, and an empty one, or one in
    ``labels``, is not checked.  Each other value is weighed by what it reads as: a date
    (``2018-04-03``, ``3 APR 2018``) must be one of the dates printed (``"a date not in
    the text"``); a number alone (``42``, ``RM 1,204.50``, ``-3.00``) one of the printed
    amounts or whole numbers (``"a number not in the text"``); any other text must be
    mostly words of the page, as a company is (``"words not in the text"``), and each of
    its words that holds a digit (``INV-20417``'s ``20417``) must be printed (``"a
    number not in the text"``): a name's letter may be mended, an identifier's digits are
    not.  Case, spacing and punctuation do not count, nor OCR's ``O`` for ``0`` and ``I``
    or ``L`` for ``1`` in a word with a digit.

    Args:
        fields: the model's fields.
        text: the page's text, as the model was sent it.
        labels: the fields whose values the schema lists (``enum``, ``const``).

    Returns:
        Per field not found, why; the values themselves are the caller's to keep.
    """
    unfound: dict[str, str] = {}
    for name, value in fields.items():
        if name in FIELD_KINDS or name in labels or value is None or not value.strip():
            continue
        if _days(value):
            problem = field_problem("date", value, text)
        elif _NUMBER_ALONE.fullmatch(value.strip().upper()):
            problem = field_problem("amount", value, text) and "a number not in the text"
        else:
            problem = _text_problem(value, text)
        if problem is not None:
            unfound[name] = problem
    return unfound


_ALIKE = str.maketrans("OIL", "011")


def _alike(word: str) -> str:
    """A word with a digit with OCR's look-alikes of digits read as digits."""
    return word.translate(_ALIKE) if any(c.isdigit() for c in word) else word


def _text_problem(value: str, text: str) -> str | None:
    """Why a custom field's text is not the page's (see `unfound_fields`), or ``None``."""
    words = [_alike(word) for word in _words(value)]
    if not words:
        return "no words"
    page = {_alike(word) for word in _words(text)}
    if sum(word in page for word in words) < MIN_WORD_SHARE * len(words):
        return "words not in the text"
    if any(word not in page for word in words if any(c.isdigit() for c in word)):
        return "a number not in the text"
    return None
