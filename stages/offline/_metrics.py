"""
Accuracy metrics shared by the offline benchmark, the demo and the tests.

Character error rate (CER) is the Levenshtein distance between a reference text and a
hypothesis divided by the length of the reference. Fields are scored as SROIE task 3
scores them: :func:`exact_match`, the whole string after whitespace and case
normalisation, for all four fields. :func:`text_similarity` (and the fuzzy
:func:`field_match` built on it) is a diagnostic beside it, never the headline: a
similarity of 0.8 still passes a company name cut in half.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

__all__ = [
    "FUZZY_FIELDS",
    "MISS_CLASSES",
    "FUZZY_THRESHOLD",
    "character_error_rate",
    "comparable_text",
    "edit_distance",
    "exact_match",
    "field_match",
    "miss_class",
    "normalize_text",
    "text_similarity",
]

#: The kinds of miss :func:`miss_class` tells apart, in the order it tries them.
MISS_CLASSES = (
    "exact",
    "missing",
    "spaces only",
    "spaces/punctuation only",
    "block too long",
    "block too short",
    "1-2 characters misread",
    "other",
)

#: Fields compared with :func:`text_similarity` instead of exact equality.
FUZZY_FIELDS = frozenset({"company", "address"})

#: Minimum :func:`text_similarity` for a fuzzy field to count as a match. SROIE papers use
#: exact match for every field; 0.8 tolerates a character or two of OCR noise per ten
#: characters, which is what a human reviewer would still accept.
FUZZY_THRESHOLD = 0.8

_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """
    Normalise text before scoring: NFKC, whitespace runs become one space, ends stripped.

    Line breaks count as spaces, so a hypothesis that splits or joins lines differently
    from the reference is not charged for it; everything else (case, punctuation) counts.

    Args:
        text: any text.

    Returns:
        The normalised text.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def comparable_text(text: str) -> str:
    """
    Text as scored against SROIE-style ground truth: `normalize_text`, upper-cased
    (the annotators upper-cased every transcript, whatever the print).

    Args:
        text: any text.

    Returns:
        The comparable text.
    """
    return normalize_text(text).upper()


def edit_distance(a: str, b: str) -> int:
    """
    The Levenshtein distance (insertions, deletions, substitutions each cost 1).

    Uses the bit-parallel algorithm of Myers (1999) in Hyyrö's formulation on Python
    integers, so whole receipts (thousands of characters) compare in milliseconds.

    Args:
        a: one string.
        b: the other string.

    Returns:
        The number of single-character edits turning ``a`` into ``b``.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, char in enumerate(b):
        peq[char] = peq.get(char, 0) | (1 << i)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for char in a:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def character_error_rate(reference: str, hypothesis: str, *, normalize: bool = True) -> float:
    """
    The character error rate of ``hypothesis`` against ``reference``.

    Args:
        reference: the ground-truth text.
        hypothesis: the recognised text.
        normalize: apply :func:`normalize_text` to both first (the default).

    Returns:
        ``edit_distance(reference, hypothesis) / len(reference)``; it can exceed 1 when the
        hypothesis is much longer. An empty reference gives 0.0 for an empty hypothesis
        and 1.0 otherwise.
    """
    if normalize:
        reference, hypothesis = normalize_text(reference), normalize_text(hypothesis)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(reference, hypothesis) / len(reference)


def text_similarity(a: str, b: str) -> float:
    """
    A similarity in ``[0, 1]`` for fuzzy fields: :class:`difflib.SequenceMatcher` ratio.

    Both sides are normalised with :func:`normalize_text` and upper-cased; spaces next to
    ``,`` ``.`` ``:`` are removed because annotators write ``NO.53,JALAN`` and
    ``NO. 53, JALAN`` for the same print.

    Args:
        a: one text.
        b: the other text.

    Returns:
        ``2 * matches / (len(a) + len(b))``; 1.0 for two empty texts.
    """
    a, b = _fuzzy_key(a), _fuzzy_key(b)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _fuzzy_key(text: str) -> str:
    text = normalize_text(text).upper()
    return re.sub(r"\s*([,.:;])\s*", r"\1", text)


def exact_match(expected: str | None, predicted: str | None) -> bool:
    """
    Whether a field is right the way SROIE task 3 counts it: the whole string.

    Both sides go through :func:`comparable_text` (NFKC, whitespace runs collapsed to one
    space, ends stripped, upper case); nothing else is forgiven, so a dropped comma or a
    registration number left on a company name is a miss. ``None`` and ``""`` both mean
    "no value": they match each other and nothing else.

    Args:
        expected: the ground-truth value.
        predicted: the extracted value.

    Returns:
        ``True`` for a match.
    """
    return comparable_text(expected or "") == comparable_text(predicted or "")


def field_match(
    field: str,
    expected: str | None,
    predicted: str | None,
    *,
    threshold: float = FUZZY_THRESHOLD,
) -> bool:
    """
    Whether an extracted field counts as correct.

    ``company`` and ``address`` match when :func:`text_similarity` is at least
    ``threshold``; every other field must be equal after stripping surrounding spaces.
    ``None`` and ``""`` both mean "no value": they match each other, and nothing else.

    Args:
        field: the field name (``company``, ``date``, ``address``, ``total`` ...).
        expected: the ground-truth value.
        predicted: the extracted value.
        threshold: the fuzzy-match threshold for ``company`` and ``address``.

    Returns:
        ``True`` for a match.
    """
    exp = (expected or "").strip()
    pred = (predicted or "").strip()
    if not exp or not pred:
        return exp == pred
    if field in FUZZY_FIELDS:
        return text_similarity(exp, pred) >= threshold
    return exp == pred


def miss_class(expected: str | None, predicted: str | None) -> str:
    """
    What kind of miss an extracted field is, for a diagnostic count that needs no one to
    read the receipts (the held-out half stays unread).

    Both sides go through :func:`comparable_text` first. The classes, tried in the order
    of :data:`MISS_CLASSES`: ``exact`` (an :func:`exact_match`); ``missing`` (no value);
    ``spaces only`` (equal with every space removed); ``spaces/punctuation only`` (equal
    without spaces, ``,`` ``.`` ``:`` ``;``); ``block too long`` / ``block too short``
    (one contains the other, so the field's rows were cut in the wrong place);
    ``1-2 characters misread`` (an edit distance of 1 or 2 after that); ``other``.

    Args:
        expected: the ground-truth value.
        predicted: the extracted value.

    Returns:
        One of :data:`MISS_CLASSES`.
    """
    truth, got = comparable_text(expected or ""), comparable_text(predicted or "")
    if truth == got:
        return "exact"
    if not got:
        return "missing"
    if re.sub(r"\s", "", truth) == re.sub(r"\s", "", got):
        return "spaces only"
    bare_truth, bare_got = (re.sub(r"[\s,.:;]", "", text) for text in (truth, got))
    if bare_truth == bare_got:
        return "spaces/punctuation only"
    if bare_truth in bare_got:
        return "block too long"
    if bare_got in bare_truth:
        return "block too short"
    if edit_distance(bare_truth, bare_got) <= 2:
        return "1-2 characters misread"
    return "other"
