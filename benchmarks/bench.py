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
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from docbench import main

from asyncpipe._restart import restart_with
from stages._malloc import start_environment

__all__: list[str] = []

if __name__ == "__main__":
    restart_with(start_environment())  # as `asyncpipe run` starts (huge pages for malloc)
    sys.exit(main())
