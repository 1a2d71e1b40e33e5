"""
The Starlette app of the test server: ``POST /v1/chat/completions``, ``GET /v1/models``
and ``GET /health``.

How the server knows the task of a request: the ``X-Asyncpipe-Task`` header
(``correct``, ``fix`` or ``structure``); without it, a request asking for a
``response_format`` of type ``json_object`` or ``json_schema`` is ``structure`` and any
other is ``echo`` (the document text comes back unchanged).  A ``response_format`` type not
in ``response_formats`` is refused with a 400 that names it.  ``max_tokens`` is honoured:
a longer reply is cut to ``max_tokens * 4`` characters with ``finish_reason: "length"``.

Where the document text is: between a ``<<<TEXT`` line and a ``TEXT>>>`` line of the
*first* user message (the shipped prompts put it there), else that whole message.  Using
the first message means a structure *repair* request, which appends the bad answer and an
error note, is answered from the same document.

Usage is counted as ``len(text) // 4 + 1`` tokens per message, a stand-in for a tokenizer.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from typing import IO, TYPE_CHECKING, Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._rules import rule_correct, rule_fix, rule_structure

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._options import ServerOptions

__all__ = [
    "HOSTILE_OUTPUT",
    "INVALID_OUTPUT",
    "INVENTED_OUTPUT",
    "REWRITE_OUTPUT",
    "create_app",
    "document_text",
]

REWRITE_OUTPUT = (
    "The company has recently announced a new initiative to reduce carbon emissions across "
    "all of its stores, and customers are invited to bring their own bags."
)
"""The message content of the ``rewrite`` fault: prose, not an edit of the text."""

INVALID_OUTPUT = 'Here are the fields you asked for:\n{"company": 12, "total": 9.0}'
"""The message content of the ``invalid_output`` fault: prose, wrong types, missing keys."""

HOSTILE_OUTPUT: dict[str, Any] = {
    "company": "../../../../etc/passwd",
    "date": "$(touch /tmp/asyncpipe-pwned); `id`",
    "address": "A" * 1000,  # the schema's maxLength: the longest value it lets through
    "total": "999",
    "id": "../../evil",
    "status": "error",
    "error": {"stage": "load", "type": "Injected", "message": "overwrite the output"},
    "fields": {"total": "0"},
    "source": "/etc/shadow",
    "../../escape.txt": "written?",
    "__class__": "builtins.eval",
    "notes": "B" * 1_000_000,
    "K" * 10_000: "a huge key",
}
"""The message content (as JSON) of the ``hostile_output`` fault."""

INVENTED_OUTPUT: dict[str, Any] = {
    "company": "NORTHWIND TRADERS",
    "date": "2022-01-01",
    "address": "1 INFINITE LOOP, CUPERTINO",
    "total": "",
}
"""The message content (as JSON) of the ``invented_output`` fault: valid fields that no
receipt the tests send holds, and an empty total (what a small model answers)."""

_TASKS = ("correct", "fix", "structure")


def document_text(messages: list[dict[str, Any]]) -> str:
    """
    Find the document text in a chat request, as this module's docstring describes.

    Args:
        messages: the request's ``messages``.

    Returns:
        The text between the markers of the first user message, or that whole message.
    """
    content = next((m.get("content") for m in messages if m.get("role") == "user"), "")
    if not isinstance(content, str):
        return ""
    start = content.find("<<<TEXT\n")
    end = content.rfind("\nTEXT>>>")
    if start >= 0 and end >= start + len("<<<TEXT\n"):
        return content[start + len("<<<TEXT\n") : end]
    return content


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _retry_headers(wait: float) -> dict[str, str]:
    """``Retry-After`` must be whole seconds (RFC 9110); ``retry-after-ms`` carries the rest."""
    return {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}


class _State:
    """
    The server's mutable state. It is only touched on the event loop, so needs no lock.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.fault_rng = random.Random(options.seed)
        self.latency_rng = random.Random(options.seed + 1)
        self.admitted: deque[float] = deque()
        self.token_log: deque[list[float]] = deque()  # [time, tokens] per admission
        self.refused = 0  # requests answered 429 by the request or token limit
        self.heaviest = 0  # the most tokens ever in one window (checked after admission)
        self.faults_by_key: dict[tuple[str, str], int] = {}
        self.count = 0
        self.first_request: float | None = None
        # A synchronous, line-buffered append: one short line per request is far cheaper
        # than a thread hop, and this process only ever serves tests.
        self.log: IO[str] | None = (
            open(options.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            if options.log_path
            else None
        )

    def write_log(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(orjson.dumps(record).decode() + "\n")

    def is_down(self, now: float) -> bool:
        opts = self.options
        if opts.down_after is None or self.first_request is None:
            return False
        start = self.first_request + opts.down_after
        return start <= now < start + opts.down_for

    def rate_limited(self, now: float, tokens: int) -> float | list[float] | None:
        """
        Return the seconds to wait if this request is over the request or the token limit,
        else admit it, charging ``tokens`` (its prompt plus ``max_tokens``), and return its
        token log entry to correct once the completion is known (``None`` without a
        token limit).
        """
        opts = self.options
        waits = []
        if opts.rate_limit is not None:
            while self.admitted and self.admitted[0] <= now - opts.rate_period:
                self.admitted.popleft()
            if len(self.admitted) >= opts.rate_limit:
                waits.append(self.admitted[0] + opts.rate_period - now)
        if opts.token_limit is not None:
            excess: float = self.tokens_in_window(now) + tokens - opts.token_limit
            if excess > 0:
                for entry in self.token_log:  # the wait until enough tokens expire
                    excess -= entry[1]
                    if excess <= 0 or entry is self.token_log[-1]:
                        waits.append(entry[0] + opts.token_period - now)
                        break
                else:
                    waits.append(opts.token_period)  # can never fit: no entry to wait for
        if waits:
            self.refused += 1
            return float(max(waits))
        if opts.rate_limit is not None:
            self.admitted.append(now)
        if opts.token_limit is None:
            return None
        entry = [now, float(tokens)]
        self.token_log.append(entry)
        self.heaviest = max(self.heaviest, self.tokens_in_window(now))
        return entry

    def tokens_in_window(self, now: float) -> int:
        period = self.options.token_period
        while self.token_log and self.token_log[0][0] <= now - period:
            self.token_log.popleft()
        return int(sum(entry[1] for entry in self.token_log))

    def ratelimit_headers(self, now: float) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers: what is left, and when all of it is back."""
        opts = self.options
        if not opts.ratelimit_headers:
            return {}
        headers = {}
        if opts.rate_limit is not None:
            while self.admitted and self.admitted[0] <= now - opts.rate_period:
                self.admitted.popleft()
            reset = self.admitted[-1] + opts.rate_period - now if self.admitted else 0.0
            headers.update(
                {
                    "x-ratelimit-limit-requests": str(opts.rate_limit),
                    "x-ratelimit-remaining-requests": str(
                        max(0, opts.rate_limit - len(self.admitted))
                    ),
                    "x-ratelimit-reset-requests": f"{max(0, math.ceil(reset * 1000))}ms",
                }
            )
        if opts.token_limit is not None:
            used = self.tokens_in_window(now)
            reset = self.token_log[-1][0] + opts.token_period - now if self.token_log else 0.0
            headers.update(
                {
                    "x-ratelimit-limit-tokens": str(opts.token_limit),
                    "x-ratelimit-remaining-tokens": str(max(0, opts.token_limit - used)),
                    "x-ratelimit-reset-tokens": f"{max(0, math.ceil(reset * 1000))}ms",
                }
            )
        return headers

    def pick_fault(self, key: tuple[str, str]) -> str | None:
        """Draw this request's fault; the ``*_output`` faults only apply to structure requests."""
        opts = self.options
        if not opts.faults:
            return None
        # Draw on every request, even past the cap, so the sequence depends only on order.
        draw = self.fault_rng.random()
        if opts.fault_limit is not None and self.faults_by_key.get(key, 0) >= opts.fault_limit:
            return None
        edge = 0.0
        for kind, prob in opts.faults.items():
            edge += prob
            if draw < edge:
                if kind.endswith("_output") and key[1] != "structure":
                    return None
                if kind == "rewrite" and key[1] not in ("correct", "fix"):
                    return None
                self.faults_by_key[key] = self.faults_by_key.get(key, 0) + 1
                return kind
        return None

    def latency(self) -> float:
        opts = self.options
        if opts.latency_max is None:
            return opts.latency
        return self.latency_rng.uniform(opts.latency, opts.latency_max)


def create_app(options: ServerOptions) -> Starlette:
    """
    Build the test server's ASGI app.

    Args:
        options: how it behaves.

    Returns:
        The Starlette app.
    """
    state = _State(options)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "requests": state.count,
                "refused": state.refused,
                "heaviest_tokens": state.heaviest,
            }
        )

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": options.model, "object": "model", "owned_by": "asyncpipe"}],
            }
        )

    async def chat(request: Request) -> Response:
        arrived = time.time()
        now = time.monotonic()
        if state.first_request is None:
            state.first_request = now
        state.count += 1
        request_id = f"req-{state.count:06d}"
        item = request.headers.get("x-asyncpipe-item")
        attempt = request.headers.get("x-asyncpipe-attempt")
        record: dict[str, Any] = {
            "ts": arrived,
            "id": request_id,
            "item": item,
            "attempt": int(attempt) if attempt and attempt.isdigit() else None,
            "task": None,
            "status": None,
            "fault": None,
        }

        def answer(response: Response, fault: str | None = None) -> Response:
            record["status"] = response.status_code
            record["fault"] = fault
            record["ts_end"] = time.time()
            response.headers["x-request-id"] = request_id
            for name, value in state.ratelimit_headers(time.monotonic()).items():
                response.headers[name] = value
            state.write_log(record)
            return response

        try:
            body = orjson.loads(await request.body())
            messages = body["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return answer(_error(400, f"bad request body: {exc}", "invalid_request_error"))

        header_task = request.headers.get("x-asyncpipe-task")
        asked = body.get("response_format") or {}
        asked_type = asked.get("type") if isinstance(asked, dict) else None
        json_mode = asked_type in ("json_object", "json_schema")
        task = header_task if header_task in _TASKS else ("structure" if json_mode else "echo")
        record["task"] = task

        if options.api_key is not None:
            # Only ever compare the header; never copy it into the log or a reply.
            auth = request.headers.get("authorization")
            record["auth"] = "missing" if auth is None else "ok"
            if auth != f"Bearer {options.api_key}":
                if auth is not None:
                    record["auth"] = "wrong"
                return answer(_error(401, "invalid API key", "authentication_error"))

        if asked_type is not None and asked_type not in options.response_formats:
            refused = f"response_format type {asked_type!r} is not supported by this server"
            return answer(_error(400, refused, "invalid_request_error"))

        if state.is_down(now):
            return answer(_error(503, "the server is down for maintenance", "server_error"), "down")

        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in messages)
        max_tokens = body.get("max_tokens")
        reserved = prompt_tokens + (max_tokens if isinstance(max_tokens, int) else 0)
        wait = state.rate_limited(now, reserved)
        entry = wait if isinstance(wait, list) else None
        if isinstance(wait, float):
            limited = _error(429, "rate limit reached", "rate_limit_error", _retry_headers(wait))
            return answer(limited, "rate_limit")

        fault = state.pick_fault((item or "", task))
        if fault == "hang":
            record["status"] = None
            record["fault"] = "hang"
            state.write_log(record)
            with anyio.move_on_after(options.hang_seconds):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
            return Response(status_code=504)

        await anyio.sleep(state.latency())

        if fault == "500":
            return answer(_error(500, "injected server error", "server_error"), fault)
        if fault == "429":
            headers = _retry_headers(options.fault_retry_after)
            return answer(_error(429, "injected rate limit", "rate_limit_error", headers), fault)
        if fault == "malformed":
            response = Response(
                b'{"id": "chatcmpl-x", "choices": [{"mess', media_type="application/json"
            )
            return answer(response, fault)

        text = document_text(messages)
        if fault == "invalid_output":
            content = INVALID_OUTPUT
        elif fault == "hostile_output":
            content = orjson.dumps(HOSTILE_OUTPUT).decode()
        elif fault == "invented_output":
            content = orjson.dumps(INVENTED_OUTPUT).decode()
        elif fault == "rewrite":
            content = REWRITE_OUTPUT
        elif task == "correct":
            content = rule_correct(text)
        elif task == "fix":
            content = rule_fix(text)
        elif task == "structure":
            content = orjson.dumps(rule_structure(text)).decode()
        else:
            content = text
        finish = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and _tokens(content) > limit:
            content = content[: limit * 4]
            finish = "length"
        completion_tokens = _tokens(content)
        if entry is not None:
            entry[1] = prompt_tokens + completion_tokens  # charge what it really used
        reply = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": int(arrived),
            "model": body.get("model") or options.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return answer(JSONResponse(reply), fault)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )
