"""``python -m stages.bench``: the same as ``asyncpipe bench``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
