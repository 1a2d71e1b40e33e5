"""
Offline fallbacks for the three LLM document stages, as synchronous pure functions.

- :func:`correct_text` ("correct"): a conservative dictionary spelling corrector.
- :func:`fix_layout` ("fix"): deterministic layout clean-up.
- :func:`extract_fields` ("structure"): receipt fields by rules.

They need no network and no model beyond the dictionary shipped with symspellpy, are
safe to call from worker threads, and are meant to be wrapped in thread stages. The
metrics (:func:`character_error_rate`, :func:`exact_match`, :func:`text_similarity`)
are shared with the benchmarks and the tests.
"""

from __future__ import annotations

from ._address import find_address as find_address
from ._company import find_company as find_company
from ._correct import correct_lines as correct_lines
from ._correct import correct_text as correct_text
from ._correct import load_dictionary as load_dictionary
from ._dates import find_date as find_date
from ._eval import ReceiptScore as ReceiptScore
from ._eval import lines_from_polygons as lines_from_polygons
from ._eval import read_box_file as read_box_file
from ._eval import read_key_file as read_key_file
from ._eval import score_receipt as score_receipt
from ._fields import DEFAULT_FIELDS as DEFAULT_FIELDS
from ._fields import extract_fields as extract_fields
from ._flexible import flexible_character_accuracy as flexible_character_accuracy
from ._flexible import flexible_edits as flexible_edits
from ._geometry import reading_order_text as reading_order_text
from ._geometry import rows as rows
from ._layout import fix_layout as fix_layout
from ._metrics import MISS_CLASSES as MISS_CLASSES
from ._metrics import character_error_rate as character_error_rate
from ._metrics import comparable_text as comparable_text
from ._metrics import edit_distance as edit_distance
from ._metrics import exact_match as exact_match
from ._metrics import field_match as field_match
from ._metrics import miss_class as miss_class
from ._metrics import normalize_text as normalize_text
from ._metrics import text_similarity as text_similarity
from ._total import find_total as find_total

__all__ = [
    "DEFAULT_FIELDS",
    "MISS_CLASSES",
    "ReceiptScore",
    "character_error_rate",
    "comparable_text",
    "correct_lines",
    "correct_text",
    "edit_distance",
    "exact_match",
    "extract_fields",
    "field_match",
    "find_address",
    "find_company",
    "find_date",
    "find_total",
    "fix_layout",
    "flexible_character_accuracy",
    "flexible_edits",
    "lines_from_polygons",
    "load_dictionary",
    "miss_class",
    "normalize_text",
    "read_box_file",
    "read_key_file",
    "reading_order_text",
    "rows",
    "score_receipt",
    "text_similarity",
]
