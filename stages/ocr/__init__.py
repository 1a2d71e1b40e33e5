"""
The OCR stage: the :class:`OcrEngine` protocol, its engines and :func:`ocr_page`.

Engines: ``"rapidocr"`` (default; PP-OCR models as ONNX, shipped in the rapidocr wheel) and
``"paddle"`` (paddleocr 3.x, the optional ``asyncpipe[paddle]`` extra).
"""

from __future__ import annotations

from ._base import OcrEngine as OcrEngine
from ._base import four_corners as four_corners
from ._base import ocr_page as ocr_page
from ._base import polygon_to_box as polygon_to_box
from ._base import reading_order as reading_order
from ._factory import ENGINES as ENGINES
from ._factory import make_engine as make_engine
from ._paddle import PaddleOcrEngine as PaddleOcrEngine
from ._rapid import RAPIDOCR_MAX_SIDE as RAPIDOCR_MAX_SIDE
from ._rapid import RapidOcrEngine as RapidOcrEngine
from ._rapid import rapidocr_max_side as rapidocr_max_side

__all__ = [
    "ENGINES",
    "RAPIDOCR_MAX_SIDE",
    "OcrEngine",
    "PaddleOcrEngine",
    "RapidOcrEngine",
    "four_corners",
    "make_engine",
    "ocr_page",
    "polygon_to_box",
    "rapidocr_max_side",
    "reading_order",
]
