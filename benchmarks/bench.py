"""
The document pipeline benchmark; the same as ``python -m asyncpipe bench``.

    .venv/bin/python benchmarks/bench.py --quick

See `stages.bench` for what it measures; ``--help`` for the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.bench import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
