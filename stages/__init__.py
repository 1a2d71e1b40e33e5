"""
The document stages built on asyncpipe: input, preprocess, OCR, LLM and offline text
stages, and the document pipeline that joins them.
"""

from __future__ import annotations

__all__: list[str] = []
