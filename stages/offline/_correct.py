"""
The offline "correct" stage: a conservative dictionary spelling corrector for OCR text.

Receipts are full of proper nouns, Malay words, product codes and prices, so the rule is
"first, do no harm": only purely alphabetic tokens that the English dictionary does not
know are candidates, and a candidate is replaced only by the single dictionary word that
is one *substitution* of look-alike letters away (the typical OCR glyph confusion,
``CASHLER`` -> ``CASHIER``).
Insertions and deletions are not applied: for a word the dictionary does not know they
mostly turn a proper noun into a common word (``PERMAS`` -> ``PERMS``).
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import threading
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from symspellpy import SymSpell

    from stages._page import Line

__all__ = ["RECEIPT_VOCABULARY", "SURE", "correct_lines", "correct_text", "load_dictionary"]

_DICTIONARY_FILE = "frequency_dictionary_en_82_765.txt"

_VOCABULARY_TEXT = """
    ayam bahru baki bandar barang batu bayar bhd bukit cukai darul ehsan goreng harga
    jalan jln johor jumlah kampung kawasan kedai kedah kelantan kembangan kg kopi kuala
    labuan lorong lumpur makanan masai mee melaka minuman nasi negeri pahang pelangi
    penang perak perlis perindustrian perniagaan pinang pulau putrajaya resit restoran
    roti sabah sarawak sdn sek seksyen selangor sembilan seri sri taman tarikh teh
    terengganu tmn tunai wilayah persekutuan kl pj jaya baru utara selatan timur barat
    tengah lebuh lebuhraya persiaran pusat plaza tingkat aras lot bangunan rm myr gst sst
    qty amt pcs nos besar kecil lama setia indah permai damai murni mewah bunga emas
    perdana utama raya gedung pasar kilang dagang niaga syarikat enterprise hardware
    kedai runcit gerai bakeri farmasi klinik stesen minyak
    ikan sayur sayuran segar bakar bilis selar sirap pisang ulam buah daging lembu kambing
    udang sotong ketam telur susu gula garam beras tepung kuih kueh nasi lemak sambal
    rojak cendol laksa satay sate tauhu taugeh kicap serbuk rempah santan kelapa manis
    masam pedas panas sejuk air ais limau tebu simen besi kayu kain baju kasut ubat
    alat tulis buku kertas perabot elektrik motor kereta tayar bengkel dobi kedai
    prima selera makmur maju bahagia sentosa sejahtera gemilang cemerlang mesra selesa
    ceria harmoni desa kota kampong wangsa megah sinar cahaya bintang bulan matahari
    mutiara intan delima berlian permata puteri putera saujana seri sinaran suria
    harapan impian idaman baiduri cempaka kenanga melati melur mawar orkid teratai
    tunai baki jumlah bil resit cawangan pembekal pelanggan kaunter juruwang
"""

#: Words that are right although the English dictionary does not know them: Malay words
#: and abbreviations common on Malaysian receipts and addresses. Never corrected.
RECEIPT_VOCABULARY = frozenset(_VOCABULARY_TEXT.split())

# An alphabetic token not glued to digits, underscores or other letters: "SR100" and
# "T0TAL" are left alone (codes, or errors a dictionary cannot judge safely).
_TOKEN = re.compile(r"(?<![\w])[^\W\d_]+(?![\w])")

_LOCK = threading.Lock()

# How much more common the chosen word must be than the runner-up (a guess, not tuned).
_MARGIN = 2


@functools.cache
def _load() -> SymSpell:
    from symspellpy import SymSpell

    # Edit distance 1 only: distance-2 suggestions for an unknown receipt word are
    # nearly always a different word, and the index is four times smaller and faster.
    speller = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
    resource = importlib.resources.files("symspellpy").joinpath(_DICTIONARY_FILE)
    with importlib.resources.as_file(resource) as path:
        if not speller.load_dictionary(path, term_index=0, count_index=1, encoding="utf-8"):
            raise FileNotFoundError(f"symspellpy dictionary {_DICTIONARY_FILE} not found")
    return speller


def load_dictionary() -> SymSpell:
    """
    The English frequency dictionary shipped in the symspellpy wheel, loaded once.

    Safe to call from many worker threads: the first caller loads (about a second) while
    the others wait, instead of each loading its own copy.

    Returns:
        The shared :class:`symspellpy.SymSpell` index (treat it as read-only).
    """
    with _LOCK:
        return _load()


def _apply_case(word: str, pattern: str) -> str | None:
    """``word`` in the case pattern of ``pattern``, or ``None`` for mixed case."""
    if pattern.isupper():
        return word.upper()
    if pattern.islower():
        return word.lower()
    if pattern[0].isupper() and pattern[1:].islower():
        return word.capitalize()
    return None


# Letters that OCR engines confuse on printed receipts, by shape: thin strokes, round
# bowls, arches, and capitals with a stem and bowls or arms (B E F H K P R). A
# substitution across groups (BESAR -> CESAR, JAIAN -> JAPAN) is more likely a word the
# dictionary does not know than a misread glyph.
_CONFUSABLE_GROUPS = ("iljtf", "ouaecdqg", "nmhruvwy", "bepfrkh")


def _confusable(a: str, b: str) -> bool:
    a_plain = unicodedata.normalize("NFKD", a)[0]
    b_plain = unicodedata.normalize("NFKD", b)[0]
    if a_plain == b_plain:  # an accent read into a plain letter: INVOICÉ -> INVOICE
        return True
    return any(a_plain in group and b_plain in group for group in _CONFUSABLE_GROUPS)


def _is_ocr_substitution(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one substitution of look-alike letters."""
    if len(a) != len(b):
        return False
    diffs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(diffs) == 1 and _confusable(*diffs[0])


def _suggest(token: str, speller: SymSpell, min_length: int, min_count: int) -> str | None:
    from symspellpy import Verbosity

    word = token.lower()
    if len(word) < min_length or word in RECEIPT_VOCABULARY or word in speller.words:
        return None
    suggestions = sorted(
        speller.lookup(word, Verbosity.CLOSEST, max_edit_distance=1),
        key=lambda suggestion: suggestion.count,
        reverse=True,
    )
    if not suggestions:
        return None
    best = suggestions[0]
    if not _is_ocr_substitution(word, best.term) or best.count < min_count:
        return None
    # "Clearly better": twice as common as any other word one edit away, otherwise the
    # dictionary cannot decide (BESAR: BEAR or CESAR?) and the token is left alone.
    if any(other.count * _MARGIN > best.count for other in suggestions[1:]):
        return None
    return _apply_case(best.term, token)


#: A line the OCR engine read with at least this confidence is left as read: the
#: corrector changes a word only when the engine was unsure of it. Lines it corrected
#: well on the development receipts were read at 0.89 to 0.986; Malay words read right
#: (SEGAR, SAYUR, PRIMA) were read at about 1.0 and turned into English ones.
SURE = 0.99


def correct_lines(lines: Sequence[Line], **options: int) -> list[str]:
    """
    The texts of OCR ``lines``, each corrected by `correct_text` unless the engine read
    it at `SURE` confidence or more.

    Args:
        lines: OCR lines with their confidence.
        options: `correct_text`'s ``min_length`` and ``min_count``.

    Returns:
        One text per line, in the order of ``lines``.
    """
    return [
        line.text if line.confidence >= SURE else correct_text(line.text, **options)
        for line in lines
    ]


def correct_text(text: str, *, min_length: int = 5, min_count: int = 100_000) -> str:
    """
    Correct OCR misspellings of English words, conservatively.

    A token is corrected only when all of these hold:

    - it is purely alphabetic and not glued to digits (codes, prices, dates and
      punctuation are never touched);
    - it has at least ``min_length`` letters and is neither in the dictionary nor in
      :data:`RECEIPT_VOCABULARY`;
    - the most frequent dictionary word one edit away differs from it by one
      substitution of look-alike letters (``l``/``i``/``t``, ``o``/``u``/``a``, ``B``/``E``,
      an accent), is common (seen at least ``min_count`` times in the corpus: about the
      54,000 most common English words for the default) and at least twice as common as
      any other word one edit away;
    - its case pattern is ``UPPER``, ``lower`` or ``Title`` (kept in the replacement).

    Args:
        text: OCR text.
        min_length: shortest token considered; short words are too ambiguous.
        min_count: the least corpus frequency of an accepted replacement; very rare
            English words are as likely to be a misread proper noun.

    Returns:
        The text with the accepted replacements; everything else byte for byte.

    .. versionadded:: 0.1
    """
    speller = load_dictionary()

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        return _suggest(token, speller, min_length, min_count) or token

    return _TOKEN.sub(replace, text)
