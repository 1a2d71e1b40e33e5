"""``python -m docbench`` (with ``benchmarks/`` on the path): as ``benchmarks/bench.py``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
