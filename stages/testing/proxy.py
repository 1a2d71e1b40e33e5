"""
A pass-through HTTP proxy that counts the chat calls an LLM server gets, by item and task
(from the ``X-Asyncpipe-*`` headers), for tests that must prove a call was not repeated.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import unquote

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CountingProxy"]


class CountingProxy:
    """
    A pass-through HTTP proxy in front of an LLM server that logs every chat request it
    forwards: ``{"item", "task", "attempt", "status"}`` (status ``None`` while in flight).

    It runs uvicorn in a thread of the test process; the CLI under test runs in a
    subprocess and is pointed at `url`.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        config = uvicorn.Config(
            Starlette(routes=[Route("/v1/{path:path}", self._forward, methods=["GET", "POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _forward(self, request: Request) -> Response:
        record: dict[str, Any] = {
            "item": unquote(request.headers.get("x-asyncpipe-item", "")),
            "task": request.headers.get("x-asyncpipe-task"),
            "attempt": request.headers.get("x-asyncpipe-attempt"),
            "status": None,
        }
        if request.path_params["path"] == "chat/completions":
            # Only the chat calls are logged: the model list asked for at the start is
            # forwarded, not counted.
            with self._lock:
                self.records.append(record)
        body = await request.body()
        async with httpx.AsyncClient(timeout=None) as client:
            upstream = await client.request(
                request.method,
                f"{self.upstream}/{request.path_params['path']}",
                content=body,
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        record["status"] = upstream.status_code
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )

    def calls(self) -> list[dict[str, Any]]:
        """A copy of the records so far."""
        with self._lock:
            return [dict(r) for r in self.records]

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the counting proxy did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        # Do not wait for requests still generating upstream.
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
