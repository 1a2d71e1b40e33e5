"""
Build an OCR engine by name (the pipeline calls this once per worker thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asyncpipe import ConfigError

from ._base import OcrEngine
from ._paddle import PaddleOcrEngine
from ._rapid import RapidOcrEngine

__all__ = ["ENGINES", "make_engine"]

#: Engine names and their classes; ``"rapidocr"`` is the default.
ENGINES: dict[str, Callable[..., OcrEngine]] = {
    "rapidocr": RapidOcrEngine,
    "paddle": PaddleOcrEngine,
}


def make_engine(name: str = "rapidocr", **options: Any) -> OcrEngine:
    """
    Build a new engine; call it once per worker thread and close the engine at the end.

    Args:
        name: ``"rapidocr"`` or ``"paddle"``.
        **options: keyword arguments for the engine class.

    Returns:
        A new engine instance owned by the caller.

    Raises:
        ConfigError: unknown name, bad options, or the engine's package is not installed.
    """
    try:
        cls = ENGINES[name]
    except KeyError:
        choices = ", ".join(repr(key) for key in ENGINES)
        raise ConfigError(f"unknown OCR engine {name!r}; choose one of {choices}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for OCR engine {name!r}: {exc}") from exc
