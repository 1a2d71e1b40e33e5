"""
The offline "fix" stage: deterministic clean-up of OCR text layout.

The rules only touch what OCR engines reliably get wrong about layout and never rewrite
words: one OCR line stays one output line (field extraction relies on it), except that a
word hyphenated across a line break is joined back.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fix_layout"]

# Typographic punctuation that receipts print as plain ASCII and that OCR models
# trained on mixed corpora like to emit.
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",  # left single quote
        "\u2019": "'",  # right single quote
        "\u201a": "'",  # single low-9 quote
        "\u201b": "'",  # single high-reversed-9 quote
        "\u2032": "'",  # prime
        "\u00b4": "'",  # acute accent used as an apostrophe
        "\u0060": "'",  # grave accent used as an apostrophe
        "\u201c": '"',  # left double quote
        "\u201d": '"',  # right double quote
        "\u201e": '"',  # double low-9 quote
        "\u2033": '"',  # double prime
        "\u00ab": '"',  # left guillemet
        "\u00bb": '"',  # right guillemet
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2015": "-",  # horizontal bar
        "\u2212": "-",  # minus sign
        "\u00ad": "",  # soft hyphen: invisible unless at a break
        "\u00d7": "x",  # multiplication sign, as in "2 x 3.50"
        "\u2022": "*",  # bullet
        "\u00b7": ".",  # middle dot read for a decimal point
        "\t": " ",
    }
)

# A word broken across lines: a word of at least two letters that starts after a space
# (or the line start), a hyphen, end of line; the next line starts with a letter.
# "SR 100100000060-" (digits), "-INVOICE-" (decoration) and "----" do not qualify.
_HYPHEN_BREAK = re.compile(
    r"(?:^|(?<=[ \t]))([^\W\d_]{2,})-[ \t]*\n[ \t]*(?=[^\W\d_])", re.MULTILINE
)
# A price split around its decimal point: "9 .00", "12. 50" -> "9.00", "12.50".
# Only the dot: "55, 57" is a list of numbers far more often than a split decimal comma;
# and not after "N0" ("N0. 88, JALAN": the house number's NO with its O read as zero).
_SPLIT_DECIMAL = re.compile(r"(?<=\d)(?<!\b[Nn]0) ?\. ?(?=\d{2}(?!\d))")
_SPACES = re.compile(r" {2,}")


def _is_garbage(char: str) -> bool:
    """Whether a character carries no text: controls, format marks, unassigned, private."""
    if char == "\n":
        return False
    category = unicodedata.category(char)
    return category in {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"} or char == "\ufffd"


def _fix_line(line: str) -> str:
    line = _SPLIT_DECIMAL.sub(".", line)
    return _SPACES.sub(" ", line).strip()


def fix_layout(text: str) -> str:
    """
    Clean the layout of OCR text without changing its words.

    The rules, in order:

    1. Unicode is NFKC-normalised (full-width forms, ligatures, no-break spaces) and
       typographic quotes, dashes, minus signs and bullets become ASCII.
    2. Control, format (zero-width), private-use and replacement characters are dropped;
       tabs and other line separators become spaces or line breaks.
    3. A word hyphenated across a line break is joined: ``INVOI-\\nCE`` -> ``INVOICE``.
    4. Within a line, a price split around its decimal point is joined (``9 .00`` ->
       ``9.00``), runs of spaces collapse to one, and the ends are stripped.
    5. Empty lines are dropped. Lines of only punctuation (``*``, ``%``, ``=``) are kept:
       receipts print them and they are part of the text.

    Otherwise every input line is one output line, so field extraction keeps its rows.

    Args:
        text: OCR text, one recognised line per line.

    Returns:
        The cleaned text, lines joined with ``\\n`` (no trailing newline).

    .. versionadded:: 0.1
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC", text).translate(_PUNCTUATION)
    text = "".join(char for char in text if not _is_garbage(char))
    text = _HYPHEN_BREAK.sub(r"\1", text)
    lines = (_fix_line(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
