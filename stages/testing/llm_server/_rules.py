"""
The deterministic "model" behind the test server: what it answers for each task.

The replies are pure functions of the document text, so tests can assert them exactly.

**correct** applies this table of OCR repairs, token by token (a token is a run of letters
and digits, possibly joined by ``.`` or ``,``):

1. A token holding a digit whose only letters are ``O o I l S`` is a number misread:
   ``O``/``o`` → ``0``, ``I``/``l`` → ``1``, ``S`` → ``5``
   (``1O.5O`` → ``10.50``, ``9.OO`` → ``9.00``).
2. In any other token, a run of the digits ``0 1 5 8`` with a letter on both sides is a
   word misread: ``0`` → ``O``, ``1`` → ``I`` (``l`` if the next letter is lower case),
   ``5`` → ``S``, ``8`` → ``B`` (``T0TAL`` → ``TOTAL``, ``B00K`` → ``BOOK``).
3. A whole word in `RN_WORDS` (any case) had ``m`` read as ``rn``
   (``arnount`` → ``amount``, ``TIRNE`` → ``TIME``).

Everything else is left as it is (``10KG``, ``RM9.OO``, ``2018``).

**fix** normalises layout, in this order: drop lines holding no letter or digit; remove
the stray characters in `STRAY_CHARS`; squeeze runs of spaces and tabs; join a line that
ends in ``letter-`` to a next line starting with a lower-case letter, without the hyphen
(``docu-`` + ``ment`` → ``document``); join a line ending in a lower-case letter or a
comma to a next line starting with a lower-case letter, with one space.

**structure** extracts receipt fields:

- ``date``: the first ``D/M/Y`` style date (``/``, ``-`` or ``.`` separators);
- ``total``: the first amount (``123.45``) on a line holding the word TOTAL, after that
  word, or else on the next non-empty line when that line is only an amount;
- ``company``: the first line with a company suffix (``SDN BHD``, ``BHD``, ``LTD``,
  ``INC``, ``LLC``, ``ENTERPRISE``, ``TRADING``), else the first non-empty line;
- ``address``: the lines after the company line up to and including the first line with
  a five-digit postcode (at most five lines), joined with ``", "``; lines that look like
  a registration number (``789417-W``) are skipped;

and a field that is not found is ``null``.
"""

from __future__ import annotations

import re

__all__ = ["RN_WORDS", "STRAY_CHARS", "rule_correct", "rule_fix", "rule_structure"]

RN_WORDS: dict[str, str] = {
    "arnount": "amount",
    "cornpany": "company",
    "custorner": "customer",
    "narne": "name",
    "nurnber": "number",
    "payrnent": "payment",
    "tirne": "time",
}
"""Whole words (matched case-insensitively) where OCR read ``rn`` for ``m``."""

STRAY_CHARS = "|¦`~•"
"""Characters the fix task deletes wherever they appear."""

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.,][A-Za-z0-9]+)*")
_NUMERIC_LETTERS = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "S": "5"})
_LETTER_FOR_DIGIT = {"0": "O", "1": "I", "5": "S", "8": "B"}
_DIGITS_IN_WORD = re.compile(r"(?<=[A-Za-z])[0158]+(?=[A-Za-z])")
_DATE = re.compile(r"\b(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4})\b")
_AMOUNT = re.compile(r"\d+(?:,\d{3})*\.\d{2}\b")
_ONLY_AMOUNT = re.compile(r"^\s*(?:RM|\$)?\s*(\d+(?:,\d{3})*\.\d{2})\s*$")
_TOTAL = re.compile(r"\bTOTAL\b", re.IGNORECASE)
_COMPANY = re.compile(r"\b(?:SDN\.?\s*BHD|BHD|LTD|INC|LLC|ENTERPRISE|TRADING)\b", re.IGNORECASE)
_POSTCODE = re.compile(r"\b\d{5}\b")
_REGISTRATION = re.compile(r"^\(?[0-9A-Z]{4,}-[0-9A-Z]{1,2}\)?$")


def _repair_token(token: str) -> str:
    if not any(c.isdigit() for c in token):
        return _rn_word(token)
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return token
    if all(c in "OoIlS" for c in letters):
        return token.translate(_NUMERIC_LETTERS)
    return _DIGITS_IN_WORD.sub(lambda m: _as_letters(m.group(0), token, m.end()), token)


def _as_letters(digits: str, token: str, end: int) -> str:
    lower = token[end].islower()
    return "".join("l" if c == "1" and lower else _LETTER_FOR_DIGIT[c] for c in digits)


def _rn_word(word: str) -> str:
    fixed = RN_WORDS.get(word.lower())
    if fixed is None:
        return word
    if word.isupper():
        return fixed.upper()
    if word[0].isupper():
        return fixed.capitalize()
    return fixed


def rule_correct(text: str) -> str:
    """
    Apply the OCR correction table of this module to ``text``.

    Args:
        text: OCR output.

    Returns:
        The corrected text; everything outside the table is unchanged.
    """
    return _TOKEN.sub(lambda m: _repair_token(m.group(0)), text)


def rule_fix(text: str) -> str:
    """
    Apply the layout rules of this module to ``text``.

    Args:
        text: corrected text.

    Returns:
        The text with stray lines and characters removed and broken lines joined.
    """
    lines: list[str] = []
    for raw in text.splitlines():
        if not any(c.isalnum() for c in raw):
            continue
        line = re.sub(r"[ \t]+", " ", raw.translate({ord(c): None for c in STRAY_CHARS}))
        line = line.strip()
        if not line:
            continue
        if lines:
            prev = lines[-1]
            if len(prev) >= 2 and prev[-1] == "-" and prev[-2].isalpha() and line[0].islower():
                lines[-1] = prev[:-1] + line
                continue
            if (prev[-1].islower() or prev[-1] == ",") and line[0].islower():
                lines[-1] = prev + " " + line
                continue
        lines.append(line)
    return "\n".join(lines)


def rule_structure(text: str) -> dict[str, str | None]:
    """
    Extract receipt fields from ``text`` by the rules of this module.

    Args:
        text: the document text.

    Returns:
        ``{"company", "date", "address", "total"}``, each a string or ``None``.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    date_match = _DATE.search(text)
    total: str | None = None
    for i, line in enumerate(lines):
        word = _TOTAL.search(line)
        if word is None:
            continue
        amount = _AMOUNT.search(line, word.end())
        if amount is not None:
            total = amount.group(0)
            break
        if i + 1 < len(lines) and (only := _ONLY_AMOUNT.match(lines[i + 1])) is not None:
            total = only.group(1)
            break
    company_at = next((i for i, line in enumerate(lines) if _COMPANY.search(line)), None)
    if company_at is None and lines:
        company_at = 0
    company = lines[company_at] if company_at is not None else None
    address: str | None = None
    if company_at is not None:
        parts: list[str] = []
        for line in lines[company_at + 1 : company_at + 6]:
            if _REGISTRATION.match(line):
                continue
            parts.append(line)
            if _POSTCODE.search(line):
                address = ", ".join(part.rstrip(",") for part in parts)
                break
    return {
        "company": company,
        "date": date_match.group(1) if date_match else None,
        "address": address,
        "total": total,
    }
