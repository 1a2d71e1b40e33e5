"""
Input discovery and page loading: files, folders, globs and standard input → page refs →
pixels.

``discover`` finds every page (by content type, never by file name) and gives each a stable
id; ``load_page`` decodes one page into a numpy image (and reads the lines of a PDF page
that draws its own text) or raises :class:`InputError` with a clear reason.  Both are
blocking and meant to run in worker threads.
"""

from __future__ import annotations

from ._discover import DOCUMENT_SUFFIXES as DOCUMENT_SUFFIXES
from ._discover import SkipCallback as SkipCallback
from ._discover import discover as discover
from ._discover import estimate_pages as estimate_pages
from ._drawing import MIN_PICTURE_SIDE as MIN_PICTURE_SIDE
from ._errors import InputError as InputError
from ._load import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS
from ._load import DEFAULT_PDF_DPI as DEFAULT_PDF_DPI
from ._load import MAX_SCAN_DPI as MAX_SCAN_DPI
from ._load import encoded_bytes as encoded_bytes
from ._load import load_page as load_page
from ._load import page_bytes as page_bytes
from ._load import read_page as read_page
from ._sniff import sniff as sniff
from ._stdin import DEFAULT_MAX_STDIN_BYTES as DEFAULT_MAX_STDIN_BYTES
from ._stdin import STDIN as STDIN
from ._stdin import STDIN_SOURCE as STDIN_SOURCE
from ._stdin import StdinError as StdinError
from ._stdin import read_stdin as read_stdin
from ._text_layer import TextLayer as TextLayer
from ._text_layer import text_layer as text_layer

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_STDIN_BYTES",
    "DEFAULT_PDF_DPI",
    "DOCUMENT_SUFFIXES",
    "MAX_SCAN_DPI",
    "MIN_PICTURE_SIDE",
    "STDIN",
    "STDIN_SOURCE",
    "InputError",
    "SkipCallback",
    "StdinError",
    "TextLayer",
    "discover",
    "encoded_bytes",
    "estimate_pages",
    "load_page",
    "page_bytes",
    "read_page",
    "read_stdin",
    "sniff",
    "text_layer",
]
