from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx


@pytest.fixture
def anyio_backend() -> str:
    """asyncpipe's queues are built on asyncio, so it runs on anyio's asyncio backend."""
    return "asyncio"


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test that makes a blocking call (file I/O, sleep, cv2) on the event loop."""
    with blockbuster_ctx() as bb:
        yield bb
