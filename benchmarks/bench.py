"""
The document pipeline benchmark harness (the `docbench` package beside this file).

    .venv/bin/python benchmarks/bench.py --quick          # receipts from $ASYNCPIPE_SROIE
    .venv/bin/python benchmarks/bench.py --quick 'receipts/*.jpg' --out results/

See `docbench` for what it measures; ``--help`` for the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docbench import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
