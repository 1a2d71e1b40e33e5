"""
The project's root on ``sys.path``, for the benchmark scripts.

``python benchmarks/x.py`` puts only ``benchmarks/`` on the path; a script imports this
module first, so it runs from anywhere and imports ``stages`` and ``asyncpipe`` from this
checkout. ``ROOT`` is that folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["ROOT"]

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
