from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Imported in the fixtures: the paddle venv (.ci/paddle) runs tests/stages/ without
    # the server extra these need.
    from stages.testing.llama_server import LlamaServer
    from stages.testing.proxy import CountingProxy

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


# -- a real llama.cpp server, and a proxy that counts the calls it gets ----------------------


@pytest.fixture(scope="session")
def real_llm() -> Iterator[LlamaServer]:
    """
    llama.cpp (xllamacpp) serving SmolLM2-135M on 127.0.0.1 for the whole session.

    A missing package is an error with the install line, never a skip: CI must run these.
    """
    from stages.testing.llama_server import llama_server

    with llama_server(n_parallel=2, n_ctx=4096, n_threads=2) as server:
        yield server


@pytest.fixture
def counting_proxy(real_llm: LlamaServer) -> Iterator[CountingProxy]:
    """A fresh counting proxy in front of the session's llama.cpp server."""
    from stages.testing.proxy import CountingProxy

    with CountingProxy(real_llm.url) as proxy:
        yield proxy
