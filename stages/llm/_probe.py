"""
The start-up checks of an `LlmClient` (`LlmClient.check`): does a server answer at the
URL, does it take the key, is the URL one ``/v1`` short or long, does it list the model,
and how many requests a llama.cpp server serves at once.  One clear error before a run
instead of an error record per page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpx

from asyncpipe import ConfigError

from ._errors import error_detail

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._types import Limiter

__all__ = ["Found", "Probe", "shown_models"]

logger = logging.getLogger("stages.llm")

# A chat request every server refuses before any inference: it names no messages.
_NO_CHAT = b"{}"


@dataclass(frozen=True, slots=True)
class Found:
    """
    What the checks found out about the server.

    Attributes:
        llama_cpp: the server is llama.cpp's (its ``/models`` says ``owned_by: llamacpp``).
        slots: how many requests the llama.cpp server serves at once, when asked and it
            said; else ``None``.
        models: the models ``/models`` listed, or ``None`` when no list came.
        no_models: ``/models`` was a 404, at ``base_url`` and at every URL it may have
            meant.  Not warned of: some servers have no ``/models``, and when the calls
            are refused too, their error says it with the rest (one line, not two).
    """

    llama_cpp: bool = False
    slots: int | None = None
    models: tuple[str, ...] | None = None
    no_models: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """
    What the checks need of an `LlmClient`: its connection pool, where it points, its rate
    limit (each request counts against it) and how it hides its key.

    Attributes:
        http: the client's connection pool.
        root: the API root without its query, e.g. ``http://127.0.0.1:8000/v1``.
        query: the query given with the root (``api-version=...``), or ``""``.
        model: the model the client asks for.
        limit: the client's rate limit, or ``None``.
        redact: takes the API key out of a message.
        keyed: whether the client sends an API key.
    """

    http: httpx.AsyncClient
    root: str
    query: str
    model: str
    limit: Limiter | None
    redact: Callable[[str], str]
    keyed: bool

    @property
    def base_url(self) -> str:
        """The URL as the user gave it (and as the messages show it)."""
        return self._with_query(self.root)

    async def check(self, *, grace: float, want_slots: bool) -> Found:
        """
        Ask the server for its models (see `LlmClient.check`).

        Args:
            grace: how long a refused connection is tried again, in seconds.
            want_slots: ask a llama.cpp server how many requests it serves at once.

        Returns:
            Whether the server is llama.cpp's, and its slots when asked for and it said.

        Raises:
            ConfigError: nothing answered within ``grace``, the server answered 401, or
                ``base_url`` answered 404 where a likely alternative lists models.
        """
        waited, pause = 0.0, 1.0
        while True:
            if self.limit is not None:
                await self.limit.acquire()
            try:
                response = await self.http.get(self._with_query(f"{self.root}/models"))
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    # Not a server still starting: no wait makes the certificate good.
                    raise ConfigError(
                        f"the LLM server at {self.base_url} showed a TLS certificate that "
                        f"could not be verified ({self.redact(str(exc))}): for a server "
                        "with its own certificate authority, set SSL_CERT_FILE to that "
                        "authority's PEM file"
                    ) from None
                if waited >= grace:
                    what = self.redact(str(exc) or type(exc).__name__)
                    raise ConfigError(
                        f"cannot reach the LLM server at {self.base_url} ({what}, for "
                        f"{waited:g} s): is it running, and is --llm-url right?"
                    ) from None
            except httpx.TransportError as exc:  # reached, but slow or cut off: the calls decide
                logger.warning("the LLM server's model list did not come (%s)", type(exc).__name__)
                return Found()
            await anyio.sleep(pause)
            waited += pause
            pause = min(2 * pause, grace - waited) or 1.0
        if response.status_code == 401:
            why = "refused the API key" if self.keyed else "wants an API key, and none was set"
            raise ConfigError(
                f"the LLM server at {self.base_url} {why} (HTTP 401"
                f"{error_detail(response, self.redact)}): check --llm-key-env and the "
                "variable it names, and --llm-key-header"
            )
        if response.status_code == 404:
            return Found(no_models=await self._suggest_url())
        if response.status_code == 200:
            models = self._check_model(response)
            if _served_by_llama_cpp(response):
                slots = await self._server_slots() if want_slots else None
                return Found(True, slots, models)
            return Found(models=models)
        return Found()

    async def _server_slots(self) -> int | None:
        """
        How many slots the llama.cpp server has, so no more requests than that are sent
        at once.  It queues the rest, and a request's timeout runs while it waits there:
        on 2 slots, 16 requests at once timed out on 9 pages of 10.
        """
        root = self.root.removesuffix("/v1")
        try:
            if self.limit is not None:
                await self.limit.acquire()
            answer = await self.http.get(self._with_query(f"{root}/props"))
            slots = answer.json()["total_slots"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        if not (isinstance(slots, int) and slots >= 1):
            return None
        logger.info(
            "the llama.cpp server has %d slots: at most %d LLM requests at once "
            "(--llm-concurrency changes it)",
            slots,
            slots,
        )
        return slots

    async def _suggest_url(self) -> bool:
        """
        ``base_url`` answered 404 at ``/models``: when a likely alternative lists models
        and ``base_url`` has no chat endpoint either, name the alternative now (else a
        missing or a doubled ``/v1`` is a 404 per page, or a stop after the first call).
        A server that lists models at a parent path but chats at ``base_url`` (an
        Azure-style deployment URL, a gateway's per-model path) is right as given: a
        warning, and the run goes on.  When no alternative lists models, leave it to the
        calls: some OpenAI-compatible servers have no ``/models``.

        Returns:
            Whether no alternative lists models (`Found.no_models`).
        """
        for url in _alternatives(self.root):
            if self.limit is not None:
                await self.limit.acquire()
            try:
                response = await self.http.get(self._with_query(f"{url}/models"))
            except httpx.TransportError:
                break  # the same server: the others would fare no better
            if response.status_code == 200 and _lists_models(response):
                there = self._with_query(url)
                chat = await self._chat_status()
                if chat == 404:
                    raise ConfigError(
                        f"the LLM server has no /models at {self.base_url}, nor "
                        f"/chat/completions (HTTP 404), but has /models at {there}: "
                        f"give --llm-url {there}"
                    )
                logger.warning(
                    "the LLM server has no /models at %s, but has at %s; its "
                    "/chat/completions there answers (%s), so --llm-url is kept as given",
                    self.base_url,
                    there,
                    "no answer" if chat is None else f"HTTP {chat}",
                )
                return False
        logger.debug(
            "the LLM server has no /models at %s (HTTP 404), nor at the URLs it may have "
            "meant: the calls will tell whether --llm-url is right",
            self.base_url,
        )
        return True

    async def _chat_status(self) -> int | None:
        """
        The status of a chat request at ``base_url`` that no server runs (no messages:
        llama.cpp answers 400, vLLM and FastAPI servers 400 or 422, a missing route 404),
        or ``None`` when no answer came.  Nothing is generated, so nothing is paid.
        """
        if self.limit is not None:
            await self.limit.acquire()
        try:
            response = await self.http.post(
                self._with_query(f"{self.root}/chat/completions"),
                content=_NO_CHAT,
                headers={"Content-Type": "application/json"},
            )
        except httpx.TransportError:
            return None
        return response.status_code

    def _check_model(self, response: httpx.Response) -> tuple[str, ...] | None:
        """
        Warn when the server lists several models and ``model`` is not one of them. A
        server of one model is not judged: llama.cpp lists its file and answers under any
        name, so the warning would come on every llama.cpp run.

        Returns:
            The models listed, or ``None`` when the answer is no model list.
        """
        try:
            listed = tuple(str(entry["id"]) for entry in response.json()["data"])
        except (ValueError, KeyError, TypeError):
            return None
        if len(listed) > 1 and self.model not in listed:
            logger.warning(
                "the LLM server does not list the model %r (it lists %s): check --llm-model",
                self.model,
                self.redact(shown_models(listed)),
            )
        return listed

    def _with_query(self, url: str) -> str:
        """``url`` with the query the root was given, as `LlmClient` sends it."""
        return f"{url}?{self.query}" if self.query else url


def shown_models(listed: tuple[str, ...]) -> str:
    """The first five of the models a server lists, for a message."""
    return ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else "")


def _alternatives(base_url: str) -> list[str]:
    """
    The base URLs a 404 at ``base_url/models`` suggests, nearest first: when the path
    has no ``/v1``, another version (``/v2``) made ``/v1``, ``/v1`` added, and for a
    path of one name, ``/v1`` at the root (Ollama's native API is at ``/api``, its
    OpenAI one at ``/v1``); then each parent path (a doubled ``/v1``, or the chat
    endpoint pasted whole: ``.../v1/chat/completions``).  At most four: a longer path is
    not a slip these catch.
    """
    url = httpx.URL(base_url)
    path = url.path.rstrip("/")
    found = []
    if "v1" not in path.split("/"):
        parent, _, last = path.rpartition("/")
        if re.fullmatch(r"v\d+", last):
            found.append(str(url.copy_with(path=f"{parent}/v1")))
        found.append(f"{base_url}/v1")
        if not parent:  # one name, as Ollama's /api: a deeper path has its parents to try
            found.append(str(url.copy_with(path="/v1")))
    while path:
        path = path.rpartition("/")[0]
        found.append(str(url.copy_with(path=path or "/")).rstrip("/"))
    return list(dict.fromkeys(found))[:4]


def _lists_models(response: httpx.Response) -> bool:
    """Whether an answer is an OpenAI model list (not a catch-all page that says 200)."""
    try:
        return isinstance(response.json()["data"], list)
    except (ValueError, KeyError, TypeError):
        return False


def _served_by_llama_cpp(models: httpx.Response) -> bool:
    """Whether a ``/models`` answer comes from llama.cpp's server (``owned_by``)."""
    try:
        return any(entry.get("owned_by") == "llamacpp" for entry in models.json()["data"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
