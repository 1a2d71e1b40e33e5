"""
The start-up checks of an `LlmClient` (`LlmClient.check`): does a server answer at the
URL, does it take the key, is the URL one ``/v1`` short or long, does it list the model,
and how many requests a llama.cpp server serves at once, with how large a context each.
One clear error before a run instead of an error record per page.
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

__all__ = ["Found", "Probe", "key_advice", "shown_models", "tell_slots"]

logger = logging.getLogger("stages.llm")

# A chat request every server refuses before any inference: it names no messages.
_NO_CHAT = b"{}"


@dataclass(frozen=True, slots=True)
class Found:
    """
    What the checks found out about the server.

    Attributes:
        llama_cpp: the server is llama.cpp's (its ``/models`` says ``owned_by: llamacpp``).
        slots: how many requests the llama.cpp server serves at once, when it said; else
            ``None``.
        context: the tokens of context each of the llama.cpp server's slots has (its
            ``-c`` divided among its slots), when it said; else ``None``.
        models: the models ``/models`` listed, or ``None`` when no list came.
        no_models: ``/models`` was a 404, at ``base_url`` and at every URL it may have
            meant.  Not warned of: some servers have no ``/models``, and when the calls
            are refused too, their error says it with the rest (one line, not two).
    """

    llama_cpp: bool = False
    slots: int | None = None
    models: tuple[str, ...] | None = None
    no_models: bool = False
    context: int | None = None


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
        key_env: the environment variables the key was looked for in (their names only),
            for the advice after a 401; empty when the key came from elsewhere.
    """

    http: httpx.AsyncClient
    root: str
    query: str
    model: str
    limit: Limiter | None
    redact: Callable[[str], str]
    keyed: bool
    key_env: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        """The URL as the user gave it (and as the messages show it)."""
        return self._with_query(self.root)

    async def check(self, *, grace: float) -> Found:
        """
        Ask the server for its models (see `LlmClient.check`).

        Args:
            grace: how long a refused connection is tried again, in seconds.

        Returns:
            Whether the server is llama.cpp's, and its slots and context when it said.

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
            why, advice = self._key_refused()
            raise ConfigError(
                f"the LLM server at {self.base_url} {why} (HTTP 401"
                f"{error_detail(response, self.redact)}): {advice}"
            )
        if response.status_code == 404:
            return Found(no_models=await self._suggest_url())
        if response.status_code == 200:
            llama_cpp = _served_by_llama_cpp(response)
            models = self._check_model(response, llama_cpp=llama_cpp)
            if llama_cpp:
                slots, context = await self._server_props()
                return Found(True, slots, models, context=context)
            return Found(models=models)
        return Found()

    def _key_refused(self) -> tuple[str, str]:
        """Why a 401 came (the key sent, or none), and what to do: the variables the key
        was looked for in are named, never their values."""
        if self.keyed:
            return "refused the API key", key_advice(self.key_env)
        if not self.key_env:
            return "wants an API key, and none was set", (
                "check --llm-key-env and the variable it names, and --llm-key-header"
            )
        if len(self.key_env) == 1:
            return "wants an API key, and none was set", (
                f"{self.key_env[0]} is unset or empty: set it"
            )
        return "wants an API key, and none was set", (
            f"{' and '.join(self.key_env)} are unset or empty: set one, or name another "
            "variable with --llm-key-env"
        )

    async def _server_props(self) -> tuple[int | None, int | None]:
        """
        How many slots the llama.cpp server has, so no more requests than that are sent
        at once (it queues the rest, and a request's timeout runs while it waits there:
        on 2 slots, 16 requests at once timed out on 9 pages of 10), and the context of
        each slot (``default_generation_settings.n_ctx``: the server's ``-c`` divided
        among its slots), so a reply the context cut is not blamed on ``max_tokens``.

        Returns:
            The slots and the context per slot, each ``None`` when not said.
        """
        root = self.root.removesuffix("/v1")
        try:
            if self.limit is not None:
                await self.limit.acquire()
            answer = await self.http.get(self._with_query(f"{root}/props"))
            props = answer.json()
        except (httpx.HTTPError, ValueError):
            return None, None
        if not isinstance(props, dict):
            return None, None
        settings = props.get("default_generation_settings")
        context = settings.get("n_ctx") if isinstance(settings, dict) else None
        return _count(props.get("total_slots")), _count(context)

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

    def _check_model(self, response: httpx.Response, *, llama_cpp: bool) -> tuple[str, ...] | None:
        """
        Warn when the server lists several models and ``model`` is not one of them: a
        call may be refused.  A llama.cpp server of one model answers under any name, so
        ``model`` not being it is no error, but the run is not what ``--llm-model`` says,
        and the records name the model served: warned of too, once.  Another server of
        one model may refuse the name, and a refusal says what to check.

        Returns:
            The models listed, or ``None`` when the answer is no model list.
        """
        try:
            entries = response.json()["data"]
            listed = tuple(str(entry["id"]) for entry in entries)
        except (ValueError, KeyError, TypeError):
            return None
        if len(listed) > 1 and self.model not in listed:
            logger.warning(
                "the LLM server does not list the model %r (it lists %s): check --llm-model",
                self.model,
                self.redact(shown_models(listed)),
            )
        elif llama_cpp and len(listed) == 1 and not _names(entries[0], self.model):
            logger.warning(
                "the LLM server serves one model, %s, whatever --llm-model says (%r): the "
                "records name the model served",
                self.redact(listed[0]),
                self.model,
            )
        return listed

    def _with_query(self, url: str) -> str:
        """``url`` with the query the root was given, as `LlmClient` sends it."""
        return f"{url}?{self.query}" if self.query else url


def tell_slots(slots: int, given: int | None, timeout: float | None) -> None:
    """
    Say what a llama.cpp server's ``slots`` mean for the run: the cap on requests at
    once when no concurrency was ``given``; a warning when more was given, since the
    server queues the rest and their wait counts against the ``timeout`` of each.
    """
    if given is None:
        logger.info(
            "the llama.cpp server has %s: at most %s at once (--llm-concurrency changes it)",
            _plural(slots, "slot"),
            _plural(slots, "LLM request"),
        )
    elif given > slots:
        logger.warning(
            "--llm-concurrency %d is more than the llama.cpp server's %s: it queues the "
            "other requests, and their wait there counts against --llm-timeout (%gs): give "
            "--llm-concurrency %d (or leave it out: as many at once as the server has "
            "slots), or start the server with more slots (-np/--parallel)",
            given,
            _plural(slots, "slot"),
            timeout,
            slots,
        )


def _plural(count: int, noun: str) -> str:
    """``1 slot``, ``2 slots``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def key_advice(key_env: tuple[str, ...]) -> str:
    """What to check after a 401: where the key was looked for (names, never values)."""
    if not key_env:
        return "check the key: --llm-key-env and the variable it names, and --llm-key-header"
    read = f"variable{'s' if len(key_env) > 1 else ''} read ({', then '.join(key_env)})"
    return f"check the key: --llm-key-env and the {read}, and --llm-key-header"


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


def _count(value: object) -> int | None:
    """A count the server said (at least 1), or ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _names(entry: object, model: str) -> bool:
    """
    Whether a ``/models`` entry answers to ``model``: its id, one of its aliases
    (llama.cpp's ``--alias``), or the file name of an id that is a path.
    """
    if not isinstance(entry, dict):
        return True  # nothing to judge by
    names = {str(entry.get("id")), *map(str, entry.get("aliases") or ())}
    for name in list(names):
        file = name.replace("\\", "/").rpartition("/")[2]
        names |= {file, file.removesuffix(".gguf")}
    return model in names


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
