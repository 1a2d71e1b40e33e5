"""
Receipt total extraction: amounts next to TOTAL-like labels, ranked by label strength.

The SROIE ground truth writes the total as printed without ``RM``/``MYR`` but keeps a
``$`` printed against the digits (``9.00``, ``1,234.50``, ``$8.20``); so does this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Amount", "find_amounts", "find_total"]

# A money amount with two decimals. OCR noise tolerated: "RM9.00", "RM 9.00", "9,00",
# "9. 00", "1,234.50", "$8.20", and a thousands comma read as a full stop ("2.480.40").
# Negative in the three forms receipts and invoices print: "-0.02" (also "-RM5.00",
# "RM-5.00"), a till's "5.00-" and an accountant's "(5.00)". A sign is glued to its
# amount: a dash with a space after it, or after another dash, a colon or an equals sign,
# is a separator or a leader ("TOTAL - 12.00", "TOTAL ---- 12.00", "TOTAL:-12.00").
_AMOUNT = re.compile(
    r"(?<![\w.,])(?P<open>\()?(?P<cur>RM|MYR|\$)?[ :]?"
    r"(?:(?<![-:=])(?P<neg>-)(?=RM|\$|\d))?(?P<cur2>RM|\$)?[ ]?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d{1,3}(?:\.\d{3})+(?=\.\d{2}(?!\d))|\d{1,7})"
    r"(?:\.|,(?=\d{2}(?!\d))) ?(?P<dec>\d{2})(?![\d%]|\.\d)"
    r"(?(open)\)|(?P<trail>-(?![-\w]))?)"
)
# An O read for a zero in an amount: "46.6O", "21.0O", "9.O0", "11O.00".
_O_IN_AMOUNT = re.compile(
    r"(?<=\d\.)O(?=[\dO]?(?![\w.]))|(?<=\d\.\d)O(?![\w.])|(?<=\d)O(?=\d*\.\d{2}(?!\d))"
)
# An amount with a letter or two read for its digits, three digits still read as such:
# "L83.00" and "2L.50" (an l for a 1, upper-cased), "57.7S", "I05.40".
_LETTERS_IN_AMOUNT = re.compile(r"(?<![\w.,])[\dOIL|S]{1,7}\.[\dOS]{2}(?![\w.])")
_AS_DIGITS = str.maketrans({"O": "0", "I": "1", "L": "1", "|": "1", "S": "5"})


def _amount_digits(match: re.Match[str]) -> str:
    token = match.group(0)
    digits = sum(char.isdigit() for char in token)
    # The full stop and at most two letters: "L83.00", "57.7S".
    return token.translate(_AS_DIGITS) if digits >= 3 and len(token) - digits <= 3 else token


# Four or more single letters, one space apart: a word printed letter-spaced.
_SPACED_WORD = re.compile(r"(?<![A-Z])[A-Z](?: [A-Z]){3,}(?![A-Z])")
# A currency in a label ("RM", "(MYR)"): a row of it and an amount is a bare amount; a
# tax code ("SR 56.00" under "KOD JUMLAH GST") is not.
_CURRENCY_WORD = re.compile(r"\b(?:RM|MYR)\b")
_CURRENCY_ONLY = re.compile(r"^[\s:(]*(RM|MYR|\$)?[\s:)]*$")

# Labels, checked on an upper-cased row where letter look-alike digits are fixed
# ("T0TAL" -> "TOTAL"). Priority 3: the final, rounded or payable total; 2: a total
# with a qualifier that still means "the total"; 1: a bare TOTAL.
_FINAL = re.compile(
    r"ROUND\w*(?: \w{1,2})? ?TOTAL|TOTAL (?:AMT |AMOUNT |SALES )?ROUND|TOTAL AFTER|"
    r"GRAND ?TOTAL|AM(?:OUN)?T DUE|TOTAL DUE|BALANCE DUE|TOTAL PAYABLE|NETT? ?TOTAL|"
    r"NETT? ?AMOUNT|TOTAL[^A-Z]*INCL(?!UDE)|INCLUSIVE|TOTAL[^A-Z]*\(?(?:RM|MYR)\)?|JUMLAH"
)
_QUALIFIED = re.compile(r"TOTAL ?(?:AMOUNT|AMT|SALES|BILL|PRICE|CHARGES?)|AMOUNT ?PAYABLE")
_TOTAL = re.compile(r"TOTAL|TTL|TOTL|TOTAI|\bNETT?\b")
_EXCLUDED = re.compile(
    r"SUB[ -]?TOTAL|SUB[ -]?TTL|JUMLAH KECIL|"
    r"TOTAL ?(?:QTY|QUANTITY|ITEM|PCS|UNIT|DISC|SAVING|TAX|GST|SST|NO|WEIGHT|POINT)|"
    r"TAX ?TOTAL|EXCL|BEFORE|CHANGE|TENDER|PAYMENT|PAID|CARD|VISA|"
    r"MASTER|DISCOUNT|INCLUDES?|INCLUDED|SUMMARY|GST ?@|\bGST\b ?\d|SERVICE|ADJ|DEPOSIT|"
    r"POINTS?|SAVED|YOU SAVE|\bQTY\b|WEIGHT|\bWT\b|\bKG\b"
)
# "GST 6% (INCLUSIVE)": the tax a total includes, not the total.
_TAX_ONLY = re.compile(r"^(?!.*(?:TOTAL|JUMLAH|AMOUNT|AMT|NETT?\b)).*\b(?:GST|SST|TAX)\b")
_CASH = re.compile(r"\bCASH\b|TENDER|PAYMENT|\bPAID\b|\bTUNAI\b")
# "TOTAL PAID 36.70", "AMOUNT PAID": what the customer paid, which is the total unless a
# change is printed (then it was the sum tendered).
_SETTLED = re.compile(r"(?:TOTAL|AMOUNT|AMT|NETT?) ?PAID|PAID ?AMOUNT")
_CHANGE = re.compile(r"CHANGE|\bBAKI\b")
_ROUNDING = re.compile(r"ROUND|PEMBUNDARAN|BUNDAR")
# A single dash that ends a rounding line's label, spaced from the amount or after a
# colon or an equals sign ("ROUNDING - 0.02", "ROUNDING:-0.02"): an adjustment is signed,
# so the dash is its minus, where on a total's line it separates.  A run of dashes is
# still a leader ("ROUNDING ---- 0.02").
_DASH_SIGN = re.compile(r"(?<!-)-\s*$")
# The heading of a tax summary ("GST SUMMARY", "SUMMARY OF TAX", "RINGKASAN GST"), whose
# table sums the bill before tax and the tax, column by column.
_SUMMARY = re.compile(
    r"\b(?:GST|SST|TAX|CUKAI)\b.*\bSUMMARY|\bSUMMARY\b.*\b(?:GST|SST|TAX)\b|RINGKASAN"
)
# Malaysian cash totals are rounded to 5 sen (since 2008).
_FIVE_SEN = Decimal("0.05")
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "5": "S", "4": "A"})


@dataclass(frozen=True, slots=True)
class Amount:
    """
    A money amount found in a row.

    Attributes:
        printed: the normalised printed form: ``[-][$]digits.dd`` (thousands commas
            kept; ``-`` for any of the minus sign's forms).
        value: the numeric value (negative for a printed minus sign).
        start: where it starts in the row text.
    """

    printed: str
    value: Decimal
    start: int


def find_amounts(row: str) -> list[Amount]:
    """
    The money amounts of a row, left to right.

    Args:
        row: one line of receipt text.

    Returns:
        The amounts; an amount glued to letters or followed by ``%`` is not one.
    """
    found: list[Amount] = []
    row = _LETTERS_IN_AMOUNT.sub(_amount_digits, _O_IN_AMOUNT.sub("0", row.upper()))
    for match in _AMOUNT.finditer(row):
        digits = f"{match['int'].replace('.', ',')}.{match['dec']}"
        dollar = "$" if "$" in (match["cur"] or "", match["cur2"] or "") else ""
        value = Decimal(digits.replace(",", ""))
        sign = ""
        if match["neg"] or match["open"] or match["trail"]:
            value, sign = -value, "-"
        found.append(Amount(sign + dollar + digits, value, match.start()))
    return found


def _label_text(row: str) -> str:
    """Upper case, letter look-alike digits inside words fixed, spaces collapsed, a word
    printed letter-spaced joined ("T O T A L"), JUMLAH with an N or RN for its M or an I
    for its L, and KECIL with look-alikes for its IL."""
    row = re.sub(r"[A-Z0-9]*[A-Z][A-Z0-9]*", lambda m: m.group(0).translate(_LOOKALIKES), row)
    row = _SPACED_WORD.sub(lambda m: m.group(0).replace(" ", ""), row)
    row = _KECIL.sub("KECIL", _JUMLAH.sub("JUMLAH", row))
    return re.sub(r"[ .]{2,}", " ", row)


# "JUNLAH", "JURNLAH", "JumIah": the Malay total with its M or L misread; "KECII" its
# "small" (a subtotal's) with its L.
_JUMLAH = re.compile(r"\bJU(?:M|N|RN)[LI1|]AH\b")
_KECIL = re.compile(r"\bKEC[IL1|]{2}\b")


def _priority(label: str) -> int:
    """How strongly a label says "this is the total": 0 (not a total) to 3."""
    if not _TOTAL.search(label) and not _FINAL.search(label):
        return 0
    if _FINAL.search(label):
        # "SUB TOTAL (RM)" and "CHANGE (NETT AMOUNT)" contain a final phrase but are not
        # totals: look at what else the label says.
        return 3 if _final_only(label) and not _TAX_ONLY.search(label) else 0
    if _EXCLUDED.search(label):
        return 0
    return 2 if _QUALIFIED.search(label) else 1


def _final_only(label: str) -> bool:
    """Whether a label with a final-total phrase says nothing that makes it another sum."""
    rest = _FINAL.sub(" ", label)
    return not re.search(
        r"SUB|EXCL|CHANGE|TENDER|CASH|PAID|QTY|TAX|INCLUDE|KECIL|(?<!TERMASUK )CUKAI", rest
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    amount: Amount
    priority: int
    row: int


def _split(row: str) -> tuple[str, list[Amount]]:
    """The label part of a row (text before its first amount) and its amounts."""
    amounts = find_amounts(row)
    label = row[: amounts[0].start] if amounts else row
    return _label_text(label.upper()), amounts


@dataclass(slots=True)
class _Found:
    candidates: list[_Candidate]
    cash: list[tuple[int, Amount]]
    change: list[tuple[int, Amount]]
    rounding: list[tuple[int, Amount]]


def _pairs(rows: Sequence[str]) -> list[tuple[int, str, Amount]]:
    """
    ``(row, label, amount)`` for every labelled amount.

    A row with a label and an amount pairs them. A block of label-only rows followed by
    a block of bare-amount rows (OCR split label and value, or read a column of labels
    then a column of values) pairs the values with the *last* labels of the block, in
    order: a title row above the labels gets nothing. Below a tax summary's heading, a
    bare total with two amounts or more is the table's (``TOTAL : 144.68 8.68``, the sum
    before tax and the tax), not the bill's: it pairs nothing.
    """
    pairs: list[tuple[int, str, Amount]] = []
    labels: list[tuple[int, str]] = []  # the current block of label-only rows
    values: list[Amount] = []  # the bare amounts answering it
    summary = False  # below a tax summary's heading
    for index, row in enumerate(rows):
        label, amounts = _split(row)
        summary = summary or bool(_SUMMARY.search(label))
        bare = bool(amounts) and not _CURRENCY_WORD.sub("", label).strip(" :()$")
        if bare and labels:
            values.append(amounts[0])
            continue
        if values:
            pairs.extend(_answer(labels, values))
            labels, values = [], []
        if amounts:
            labels = []
            table = len(amounts) > 1 and _TOTAL.search(label) and not _FINAL.search(label)
            if not (summary and table):
                pairs.append((index, label, amounts[0]))
        elif _CURRENCY_ONLY.match(row.upper()):
            continue  # a lone "RM" between label and value
        else:
            labels.append((index, label))
    if values:
        pairs.extend(_answer(labels, values))
    return pairs


def _answer(labels: list[tuple[int, str]], values: list[Amount]) -> list[tuple[int, str, Amount]]:
    offset = max(len(labels) - len(values), 0)
    return [
        (row, label, value) for (row, label), value in zip(labels[offset:], values, strict=False)
    ]


def _candidates(rows: Sequence[str]) -> _Found:
    found = _Found([], [], [], [])
    settled: list[_Candidate] = []
    for row_index, label, value in _pairs(rows):
        priority = _priority(label)
        if _ROUNDING.search(label) and abs(value.value) < _FIVE_SEN:
            # An adjustment, even where its label says total ("TOTAL ROUNDING -0.02"):
            # a rounded total is not under 5 sen.
            found.rounding.append((row_index, _signed(value, label)))
        elif priority and value.value:  # "BALANCE DUE 0.00" after payment: not the total
            found.candidates.append(_Candidate(value, priority, row_index))
        elif _CHANGE.search(label):
            found.change.append((row_index, value))
        elif _SETTLED.search(label):
            settled.append(_Candidate(value, 1, row_index))
            found.cash.append((row_index, value))
        elif _CASH.search(label):
            found.cash.append((row_index, value))
    if not found.change:
        # Nothing was given back: an amount the customer paid is a total of the lowest
        # rank ("TOTAL 36.72", "ROUNDING -0.02", "TOTAL PAID 36.70").
        found.candidates += settled
    return found


def _signed(adjustment: Amount, label: str) -> Amount:
    """A rounding adjustment, negative when its label ends in a dash (`_DASH_SIGN`)."""
    if adjustment.value <= 0 or not _DASH_SIGN.search(label):
        return adjustment
    return Amount("-" + adjustment.printed, -adjustment.value, adjustment.start)


def _paid(found: _Found) -> tuple[Decimal, Amount] | None:
    """``CASH - CHANGE``: the sum tendered last before the change, less the change."""
    if not found.cash or not found.change:
        return None
    change_row, change = found.change[0]
    before = [amount for row, amount in found.cash if row <= change_row]
    tendered = before[-1] if before else found.cash[0][1]
    paid = tendered.value - change.value
    return (paid, tendered) if paid > 0 else None


def _printed(value: Decimal, like: str) -> str:
    """``value`` written the way ``like`` was printed (``$`` prefix, thousands commas)."""
    digits = f"{abs(value):,.2f}" if "," in like else f"{abs(value):.2f}"
    return ("-" if value < 0 else "") + ("$" if "$" in like else "") + digits


def _settle(best: _Candidate, found: _Found, paid: Decimal | None) -> str:
    """Apply a rounding adjustment printed after an unrounded total (rule 4)."""
    value = best.amount.value
    if paid is not None and paid == value:
        return best.amount.printed
    later = [c for c in found.candidates if c.row > best.row and c.priority == best.priority]
    if value % _FIVE_SEN and not later:
        for row, adjustment in found.rounding:
            rounded = value + adjustment.value
            if row > best.row and not rounded % _FIVE_SEN and paid in (None, rounded):
                return _printed(rounded, best.amount.printed)
        if paid is not None and not paid % _FIVE_SEN and abs(paid - value) < _FIVE_SEN:
            return _printed(paid, best.amount.printed)
    return best.amount.printed


def find_total(rows: Sequence[str]) -> str | None:
    """
    The total amount of a receipt as printed (``9.00``, ``1,234.50``, ``$8.20``), or ``None``.

    Rules, in order:

    1. Every row whose label says total yields its first amount, or, when the row has
       no amount, the next rows that hold only an amount (OCR often splits label and
       value into separate lines; stacked labels are answered in order).
    2. Labels rank: final (``ROUNDED TOTAL``, ``GRAND TOTAL``, ``NETT TOTAL``,
       ``TOTAL (RM)``, ``AMOUNT DUE``, ``TOTAL ... INCL. GST``) over qualified (``TOTAL
       AMOUNT``) over a bare ``TOTAL``. Sub-totals, quantities, tax, discounts,
       rounding adjustments, cash, change, a total of zero (``BALANCE DUE 0.00``) and
       a tax summary's total (below ``GST SUMMARY``, a bare ``TOTAL`` with two amounts
       or more: the sum before tax and the tax) are not totals. ``TOTAL PAID`` is a bare
       total when no change is printed, and the sum tendered when one is.
    3. If ``CASH - CHANGE`` (the sum tendered last before the change) equals one
       candidate, that candidate wins (the customer paid it), whatever its rank;
       otherwise the best-ranked candidate, the last printed among equals (a total
       adjusted by rounding, a discount or a tax is printed again below: ``TOTAL
       37.57``, ``ROUNDING -0.02``, ``TOTAL 37.55``).
    4. Malaysian cash totals are rounded to 5 sen: a chosen total that is not, followed
       by a ``ROUNDING`` adjustment, is adjusted (``60.31`` and ``-0.01`` give
       ``60.30``; a single dash before the adjustment is its minus, spaced or after a
       colon: ``ROUNDING - 0.01``, ``ROUNDING:-0.01``); failing that, a ``CASH -
       CHANGE`` within 5 sen of it that is rounded is taken (OCR misread the last digit
       of one of them, and paid sums agree).
    5. With no labelled candidate: ``CASH - CHANGE`` when both are printed, else the
       largest amount on the receipt.

    Args:
        rows: the receipt text, one visual row per item.

    Returns:
        The printed total without the ``RM``/``MYR`` currency.
    """
    found = _candidates(rows)
    candidates = found.candidates
    tendered = _paid(found)
    paid = tendered[0] if tendered else None
    if candidates:
        if paid is not None:
            for candidate in candidates:
                if candidate.amount.value == paid:
                    return candidate.amount.printed
        best = max(c.priority for c in candidates)
        top = [c for c in candidates if c.priority == best]
        return _settle(max(top, key=lambda c: c.row), found, paid)
    if tendered is not None:
        return _printed(tendered[0], tendered[1].printed)
    amounts = [amount for row in rows for amount in find_amounts(row) if amount.value > 0]
    return max(amounts, key=lambda a: a.value).printed if amounts else None
