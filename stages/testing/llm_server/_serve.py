"""
Start uvicorn on a host/port or on an inherited, already bound socket.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from ._app import create_app
from ._options import parse_args

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """
    The entry point of ``python -m stages.testing.llm_server``.

    With ``--fd N`` it serves on the listening socket inherited as file descriptor N (the
    parent bound it to port 0, so there is no race for a free port); otherwise it binds
    ``--host``/``--port``.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    try:
        options, host, port, fd = parse_args(argv)
    except ValueError as exc:
        sys.exit(f"llm_server: {exc}")
    config = uvicorn.Config(
        create_app(options),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # A handler stuck in a "hang" fault must not hold up the exit.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    if fd is None:
        server.run()
    else:
        # socket(fileno=...) detects the family itself, unlike socket.fromfd.
        sock = socket.socket(fileno=fd)
        server.run(sockets=[sock])
