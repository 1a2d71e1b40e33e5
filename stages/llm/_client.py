"""
`LlmClient`: one pooled ``httpx.AsyncClient`` for an OpenAI-compatible chat endpoint,
with a shared rate limit, retries, a per-call deadline and usage statistics.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import httpx
import orjson

from asyncpipe._exceptions import ConfigError

from ._errors import LlmDeadlineError, LlmRetriesExhausted, LlmStatusError
from ._types import ChatReply, Usage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from types import TracebackType

    from ._types import Limiter, Message

__all__ = ["DEFAULT_TIMEOUT", "LlmClient", "LlmStatistics", "parse_retry_after"]

logger = logging.getLogger("stages.llm")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
"""60 s to read, write or wait for a pooled connection, 5 s to connect.

openai-python waits 600 s for a read; a pipeline item should not, and ``deadline`` caps a
whole call anyway."""

_RETRY_STATUSES = frozenset({408, 409, 429})
_REDACTED = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class LlmStatistics:
    """
    What one `LlmClient` has done so far.

    Attributes:
        calls: ``chat`` calls started.
        succeeded: calls that returned a reply.
        failed: calls that raised an `LlmError`.
        attempts: HTTP attempts sent (each one acquired the rate limit).
        retries: cause → retries made for it (``"timeout"``, ``"connect"``, ``"network"``,
            ``"malformed"``, or the HTTP status such as ``"429"`` or ``"500"``).
        failures: cause → calls that finally failed with it.
        prompt_tokens: prompt tokens of every completion received.
        completion_tokens: completion tokens of every completion received.
        total_tokens: total tokens of every completion received.
        cost: the price of those tokens, if the client was given ``prices``.
    """

    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    retries: Mapping[str, int] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None

    def summary(self) -> str:
        """
        Returns:
            One line for a run summary.
        """
        retries = " ".join(f"{k}={v}" for k, v in sorted(self.retries.items())) or "none"
        line = (
            f"llm: {self.calls} calls ({self.succeeded} ok, {self.failed} failed), "
            f"{self.attempts} attempts, retries: {retries}, tokens: {self.total_tokens} "
            f"(prompt {self.prompt_tokens} + completion {self.completion_tokens})"
        )
        if self.cost is not None:
            line += f", cost: {self.cost:.4f}"
        return line


@dataclass(slots=True)
class _Failure:
    cause: str
    retryable: bool
    detail: str
    status: int | None = None
    retry_after: float | None = None


def parse_retry_after(headers: httpx.Headers, now: Callable[[], float] = time.time) -> float | None:
    """
    Read the wait a server asked for: ``retry-after-ms`` first, then ``Retry-After`` as
    seconds or as an HTTP-date.

    Args:
        headers: the response headers.
        now: the wall clock, for HTTP-dates.

    Returns:
        Seconds to wait (never negative), or ``None`` if there is no readable hint.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class LlmClient:
    """
    A chat-completions client for OpenAI, vLLM, Ollama, llama.cpp server and the like.

    One ``httpx.AsyncClient`` is shared by every call, so connections are pooled.  Each
    *attempt* of each call first acquires ``rate_limit`` (a retry is a request too, and
    the server counts it), then sends.  Retryable failures are timeouts, connection and
    protocol errors, statuses 408, 409, 429 and 5xx, and a malformed body; a server's
    ``x-should-retry: true/false`` overrides that, as in openai-python.  Between attempts
    it waits what ``retry-after-ms`` or ``Retry-After`` asks (up to ``max_retry_after``),
    else a full-jitter backoff: uniform in ``[0, min(backoff_cap, backoff_base * 2**n)]``.

    ``deadline`` caps a whole call, from the moment its first attempt is admitted by the
    rate limit (time spent queueing for that first slot is the pipeline's backpressure,
    not a fault) to its last byte, including backoff sleeps and later rate-limit waits.  A
    wait that would cross the deadline fails at once rather than sleeping in vain.

    The API key goes into the ``Authorization`` header only; it is redacted from every
    error message and log line, and `repr` hides it.

    Args:
        base_url: the API root, e.g. ``https://api.openai.com/v1`` or
            ``http://127.0.0.1:8000/v1``.
        model: the model name to request.
        api_key: sent as ``Authorization: Bearer``; ``None`` sends no header.
        rate_limit: a limit shared with other clients and stages, or ``None``.
        max_attempts: attempts per call, the first included (default 5, i.e. 4 retries;
            openai-python makes 3).
        timeout: httpx timeouts per attempt (default `DEFAULT_TIMEOUT`).
        deadline: seconds a whole call may take (default 180).
        backoff_base: the first backoff ceiling in seconds (default 0.5).
        backoff_cap: the largest backoff ceiling in seconds (default 8).
        max_retry_after: honour a server's wait hint up to this many seconds (default 60);
            a longer hint falls back to the backoff, as openai-python does.
        temperature: sent as ``temperature`` unless ``None`` (default 0, for repeatability).
        max_tokens: sent as ``max_tokens`` unless ``None``.
        prices: (prompt, completion) price per million tokens, to count ``cost``.
        headers: extra headers for every request.
        limits: httpx pool limits.  The default has no cap on connections: the caller's
            worker count bounds concurrency, and a capped pool would queue requests the
            rate limit had spaced out and then release them in a burst.
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
        sleep: the backoff sleep (tests inject a fake).
        clock: the monotonic clock of the deadline (tests inject a fake).
        rng: the jitter's random generator (default: a fresh ``random.Random()``).

    Raises:
        ConfigError: an argument is out of range.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        rate_limit: Limiter | None = None,
        max_attempts: int = 5,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        deadline: float = 180.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_after: float = 60.0,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        prices: tuple[float, float] | None = None,
        headers: Mapping[str, str] | None = None,
        limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"the LLM base URL must start with http:// or https://, got {base_url!r}"
            )
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {max_attempts}")
        if not deadline > 0 or backoff_base < 0 or backoff_cap < backoff_base:
            raise ConfigError("need deadline > 0 and 0 <= backoff_base <= backoff_cap")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key or None
        self._limit = rate_limit
        self._prices = prices
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        all_headers = {"User-Agent": "asyncpipe-llm/0.1", **(headers or {})}
        if self._api_key is not None:
            all_headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=all_headers,
            timeout=timeout,
            limits=limits or httpx.Limits(max_connections=None, max_keepalive_connections=64),
            transport=transport,
        )
        self._calls = self._succeeded = self._failed = self._attempts = 0
        self._retries: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._usage = [0, 0, 0]

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """
        Close the connection pool.
        """
        await self._http.aclose()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"LlmClient(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    # -- statistics ------------------------------------------------------------------------

    def statistics(self) -> LlmStatistics:
        """
        Returns:
            A snapshot of the counts so far.
        """
        prompt, completion, total = self._usage
        cost = None
        if self._prices is not None:
            cost = (prompt * self._prices[0] + completion * self._prices[1]) / 1e6
        return LlmStatistics(
            calls=self._calls,
            succeeded=self._succeeded,
            failed=self._failed,
            attempts=self._attempts,
            retries=dict(self._retries),
            failures=dict(self._failures),
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            cost=cost,
        )

    # -- the call --------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str,
        item: str | None = None,
        json_mode: bool = False,
    ) -> ChatReply:
        """
        Send one chat completion, retrying as the class describes.

        Args:
            messages: the conversation.
            task: what the call is for; sent as ``X-Asyncpipe-Task``.
            item: the pipeline item id; sent (percent-encoded) as ``X-Asyncpipe-Item``.
            json_mode: ask for ``response_format: {"type": "json_object"}``.

        Returns:
            The reply, with its usage and attempt count.

        Raises:
            LlmStatusError: a status that retrying cannot fix (400, 401, 404...).
            LlmRetriesExhausted: ``max_attempts`` attempts all failed retryably.
            LlmDeadlineError: ``deadline`` ran out.
        """
        payload: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        if json_mode:
            payload["response_format"] = {"type": "json_object"}
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "X-Asyncpipe-Task": task}
        if item is not None:
            headers["X-Asyncpipe-Item"] = quote(item, safe="/#@:.,_-+=")
        what = f"LLM {task} call" + (f" for item {item!r}" if item is not None else "")

        self._calls += 1
        started: float | None = None
        attempt = 0
        while True:
            attempt += 1
            if self._limit is not None:
                await self._limit.acquire()
            now = self._clock()
            if started is None:
                started = now
            remaining = started + self.deadline - now
            if remaining <= 0:
                raise self._give_up(
                    LlmDeadlineError,
                    f"{what} ran out of its {self.deadline:g}s deadline waiting for the rate "
                    f"limit after {attempt - 1} attempts",
                    "deadline",
                    attempt - 1,
                )
            headers["X-Asyncpipe-Attempt"] = str(attempt)
            self._attempts += 1
            result = await self._attempt(body, headers, remaining)
            if isinstance(result, ChatReply):
                self._succeeded += 1
                return ChatReply(result.content, result.usage, attempt, result.model)

            failure = result
            described = self._redact(failure.detail)
            if failure.cause == "deadline":
                raise self._give_up(
                    LlmDeadlineError,
                    f"{what} ran out of its {self.deadline:g}s deadline during attempt {attempt}",
                    "deadline",
                    attempt,
                )
            if not failure.retryable:
                raise self._give_up(
                    LlmStatusError,
                    f"{what} failed: {described}; not retryable (attempt {attempt})",
                    failure.cause,
                    attempt,
                    failure.status,
                )
            if attempt >= self.max_attempts:
                raise self._give_up(
                    LlmRetriesExhausted,
                    f"{what} failed after {attempt} attempts; last: {described}",
                    failure.cause,
                    attempt,
                    failure.status,
                )
            hint = failure.retry_after
            if hint is not None and hint <= self.max_retry_after:
                delay = hint
            else:
                ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                delay = self._rng.uniform(0.0, ceiling)
            if self._clock() + delay >= started + self.deadline:
                raise self._give_up(
                    LlmDeadlineError,
                    f"{what} would pass its {self.deadline:g}s deadline waiting {delay:.2f}s "
                    f"to retry after attempt {attempt} ({described})",
                    "deadline",
                    attempt,
                    failure.status,
                )
            self._retries[failure.cause] += 1
            logger.debug(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                what,
                attempt,
                self.max_attempts,
                described,
                delay,
            )
            await self._sleep(delay)

    def _give_up(
        self,
        kind: type[LlmStatusError | LlmRetriesExhausted | LlmDeadlineError],
        message: str,
        cause: str,
        attempts: int,
        status: int | None = None,
    ) -> LlmStatusError | LlmRetriesExhausted | LlmDeadlineError:
        self._failed += 1
        self._failures[cause] += 1
        message = self._redact(message)
        logger.debug("%s", message)
        return kind(message, cause=cause, attempts=attempts, status=status)

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, _REDACTED)
        return text

    async def _attempt(
        self, body: bytes, headers: dict[str, str], remaining: float
    ) -> ChatReply | _Failure:
        try:
            with anyio.move_on_after(remaining) as scope:
                response = await self._http.post("/chat/completions", content=body, headers=headers)
            if scope.cancelled_caught:
                return _Failure("deadline", False, "deadline passed")
        except httpx.ConnectTimeout as exc:
            return _Failure("connect", True, f"connect timeout ({type(exc).__name__})")
        except httpx.TimeoutException as exc:
            return _Failure("timeout", True, f"timed out ({type(exc).__name__})")
        except httpx.ConnectError as exc:
            return _Failure("connect", True, f"cannot connect ({exc})")
        except httpx.TransportError as exc:
            return _Failure("network", True, f"network error ({type(exc).__name__}: {exc})")

        status = response.status_code
        if 200 <= status < 300:
            return self._parse(response)
        should = response.headers.get("x-should-retry")
        if should in ("true", "false"):
            retryable = should == "true"
        else:
            retryable = status in _RETRY_STATUSES or status >= 500
        return _Failure(
            str(status),
            retryable,
            f"HTTP {status}{_error_detail(response)}",
            status=status,
            retry_after=parse_retry_after(response.headers),
        )

    def _parse(self, response: httpx.Response) -> ChatReply | _Failure:
        try:
            data = orjson.loads(response.content)
            content = data["choices"][0]["message"]["content"]
            model = str(data.get("model") or self.model)
            raw_usage = data.get("usage") or {}
            usage = Usage(
                prompt_tokens=int(raw_usage.get("prompt_tokens") or 0),
                completion_tokens=int(raw_usage.get("completion_tokens") or 0),
                total_tokens=int(raw_usage.get("total_tokens") or 0),
            )
        except (
            orjson.JSONDecodeError,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            AttributeError,
        ) as exc:
            return _Failure(
                "malformed",
                True,
                f"HTTP {response.status_code} with a malformed body ({type(exc).__name__})",
                status=response.status_code,
            )
        if not isinstance(content, str):
            return _Failure(
                "malformed", True, "the reply has no text content", response.status_code
            )
        self._usage[0] += usage.prompt_tokens
        self._usage[1] += usage.completion_tokens
        self._usage[2] += usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
        return ChatReply(content, usage, 0, model)


def _error_detail(response: httpx.Response) -> str:
    """The server's own error message, shortened; servers put it in ``error.message``."""
    try:
        data = orjson.loads(response.content)
        message = data["error"]["message"] if isinstance(data.get("error"), dict) else data["error"]
        text = str(message)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        text = response.text
    text = " ".join(text.split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f" ({text})" if text else ""
