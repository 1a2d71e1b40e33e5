from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sroie"


def sroie_dir() -> Path:
    """Where the SROIE receipts are: $ASYNCPIPE_SROIE, else ../shared/data/sroie."""
    return Path(os.environ.get("ASYNCPIPE_SROIE", _DEFAULT))


@pytest.fixture(scope="session")
def sroie() -> Path:
    """The SROIE sample folder (img/, box/, key/); a missing folder is an error, not a skip."""
    root = sroie_dir()
    if not (root / "img").is_dir():
        raise RuntimeError(
            f"SROIE receipts not found at {root}: put ../shared/data/sroie beside the project "
            "or set ASYNCPIPE_SROIE to the folder holding img/, box/ and key/"
        )
    return root
