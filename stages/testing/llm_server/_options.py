"""
The test server's options, read from CLI flags, a JSON file or ``$ASYNCPIPE_LLM_SERVER``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENV_VAR", "FAULTS", "ServerOptions", "parse_args"]

ENV_VAR = "ASYNCPIPE_LLM_SERVER"
"""An environment variable holding the options as a JSON object (lowest precedence)."""

FAULTS = (
    "500",
    "429",
    "hang",
    "malformed",
    "invalid_output",
    "hostile_output",
    "invented_output",
    "rewrite",
)
"""
The faults the server can inject:

- ``500``: an OpenAI-style error body with status 500;
- ``429``: status 429 with ``Retry-After`` (whole seconds, rounded up) and
  ``retry-after-ms`` headers taken from ``fault_retry_after``;
- ``hang``: no answer for ``hang_seconds`` (or until the client disconnects);
- ``malformed``: status 200 with a truncated JSON body;
- ``invalid_output``: a well-formed completion whose message content is not JSON matching
  the receipt schema (prose around JSON with wrong types and a missing field);
- ``hostile_output``: a structure reply that tries to do more than fill the fields: the
  fields with path-like, shell-like and huge values, plus extra keys named like the
  output record's own (``id``, ``status``, ``error``...) and like paths (see
  ``HOSTILE_OUTPUT`` in ``_app.py``).  Like ``invalid_output``, it only hits structure.
- ``invented_output``: a structure reply valid against the schema whose fields the text
  does not hold (``INVENTED_OUTPUT`` in ``_app.py``).  It only hits structure.
- ``rewrite``: a correct or fix reply that is not an edit of the text but an unrelated
  paragraph (``REWRITE_OUTPUT`` in ``_app.py``); it only hits correct and fix.
"""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """
    How the test server behaves.

    Attributes:
        model: the model name it reports.
        latency: seconds to wait before each answer (the lower bound if ``latency_max``).
        latency_max: if set, latency is uniform in ``[latency, latency_max]``, drawn from a
            generator seeded with ``seed``.
        seed: the seed of the latency and fault draws.
        rate_limit: admit at most this many requests in any window of ``rate_period``
            seconds and answer the rest 429 (``None``: no limit).
        rate_period: the window of ``rate_limit`` in seconds.
        token_limit: admit a request only if its prompt tokens plus its ``max_tokens`` fit
            in the tokens of the last ``token_period`` seconds, as OpenAI counts a request,
            and answer the rest 429 with the wait until they fit; an admitted request is
            charged its prompt plus the completion it really gets (``None``: no limit).
        token_period: the window of ``token_limit`` in seconds.
        ratelimit_headers: with a request or token limit, send OpenAI's
            ``x-ratelimit-limit-*``, ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*``
            headers on every chat answer.
        faults: fault kind (see `FAULTS`) → probability; one uniform draw per request picks
            at most one fault, so the probabilities must sum to 1 or less.
        fault_limit: inject at most this many faults per (item, task) pair, so retries
            recover deterministically (``None``: no cap).
        fault_retry_after: the wait the ``429`` fault asks for, in seconds.
        hang_seconds: how long the ``hang`` fault stalls.
        down_after: start a down window this many seconds after the first chat request
            (``None``: never down).  It counts from that request, not from process start,
            so slow start-up does not shift it.
        down_for: the length of the down window in seconds; inside it every chat request is
            answered 503 without ``Retry-After``.
        api_key: if set, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
        log_path: append one JSON line per chat request here (``None``: no log).
        response_formats: the ``response_format`` types it accepts; a request asking for
            another is answered 400 naming ``response_format`` (as servers without
            structured outputs do).
    """

    model: str = "asyncpipe-test"
    latency: float = 0.0
    latency_max: float | None = None
    seed: int = 0
    rate_limit: int | None = None
    rate_period: float = 60.0
    token_limit: int | None = None
    token_period: float = 60.0
    ratelimit_headers: bool = True
    faults: dict[str, float] = field(default_factory=dict)
    fault_limit: int | None = None
    fault_retry_after: float = 1.0
    hang_seconds: float = 3600.0
    down_after: float | None = None
    down_for: float = 0.0
    api_key: str | None = field(default=None, repr=False)
    log_path: str | None = None
    response_formats: tuple[str, ...] = ("json_schema", "json_object")

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose from {list(FAULTS)}")
        if sum(self.faults.values()) > 1.0 + 1e-9 or any(p < 0 for p in self.faults.values()):
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")
        if self.rate_limit is not None and (self.rate_limit < 1 or self.rate_period <= 0):
            raise ValueError("rate_limit must be >= 1 and rate_period > 0")
        if self.token_limit is not None and (self.token_limit < 1 or self.token_period <= 0):
            raise ValueError("token_limit must be >= 1 and token_period > 0")
        if self.latency < 0 or (self.latency_max is not None and self.latency_max < self.latency):
            raise ValueError("latency must be >= 0 and latency_max >= latency")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ServerOptions:
        """
        Build options from a JSON object.

        Args:
            data: option name → value.

        Returns:
            The options.

        Raises:
            ValueError: an option is unknown or out of range.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown server options {sorted(unknown)}")
        return cls(**data)

    def to_mapping(self) -> dict[str, Any]:
        """
        Returns:
            The options as a JSON-safe dict (`from_mapping` reads it back).
        """
        return dataclasses.asdict(self)


def _fault(text: str) -> tuple[str, float]:
    kind, _, prob = text.partition("=")
    return kind, float(prob or "1")


def parse_args(argv: list[str] | None = None) -> tuple[ServerOptions, str, int, int | None]:
    """
    Read the command line of ``python -m stages.testing.llm_server``.

    Precedence, lowest first: ``$ASYNCPIPE_LLM_SERVER`` (JSON), ``--config FILE`` (JSON),
    ``--config-json TEXT``, then the individual flags.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        ``(options, host, port, fd)``; ``fd`` is an inherited listening socket or ``None``.

    Raises:
        ValueError: an option is unknown or out of range.
    """
    p = argparse.ArgumentParser(
        prog="python -m stages.testing.llm_server",
        description="A local OpenAI-compatible chat server with scripted latency and faults.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--fd", type=int, default=None, help="serve on this inherited socket")
    p.add_argument("--config", type=Path, help="a JSON file of options")
    p.add_argument("--config-json", help="options as a JSON object")
    p.add_argument("--model")
    p.add_argument("--latency", help="seconds, or MIN-MAX for a uniform draw")
    p.add_argument("--seed", type=int)
    p.add_argument("--rate-limit", help="N/SECONDS, e.g. 10/1")
    p.add_argument("--token-limit", help="TOKENS/SECONDS, e.g. 20000/60")
    p.add_argument("--fault", action="append", type=_fault, help="KIND=PROB (repeatable)")
    p.add_argument("--fault-limit", type=int)
    p.add_argument("--fault-retry-after", type=float)
    p.add_argument("--hang-seconds", type=float)
    p.add_argument("--down", help="AFTER:FOR seconds, counted from the first chat request")
    p.add_argument("--api-key-env", help="require the key held in this environment variable")
    p.add_argument("--log", dest="log_path")
    ns = p.parse_args(argv)

    data: dict[str, Any] = {}
    if env := os.environ.get(ENV_VAR):
        data.update(json.loads(env))
    if ns.config is not None:
        data.update(json.loads(ns.config.read_text(encoding="utf-8")))
    if ns.config_json:
        data.update(json.loads(ns.config_json))
    for name in ("model", "seed", "fault_limit", "fault_retry_after", "hang_seconds", "log_path"):
        if (value := getattr(ns, name)) is not None:
            data[name] = value
    if ns.latency:
        low, _, high = ns.latency.partition("-")
        data["latency"] = float(low)
        data["latency_max"] = float(high) if high else None
    if ns.rate_limit:
        count, _, period = ns.rate_limit.partition("/")
        data["rate_limit"] = int(count)
        data["rate_period"] = float(period or "60")
    if ns.token_limit:
        count, _, period = ns.token_limit.partition("/")
        data["token_limit"] = int(count)
        data["token_period"] = float(period or "60")
    if ns.fault:
        data["faults"] = dict(ns.fault)
    if ns.down:
        after, _, length = ns.down.partition(":")
        data["down_after"] = float(after)
        data["down_for"] = float(length)
    if ns.api_key_env:
        data["api_key"] = os.environ[ns.api_key_env]
    return ServerOptions.from_mapping(data), ns.host, ns.port, ns.fd
