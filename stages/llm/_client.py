"""
`LlmClient`: one pooled ``httpx.AsyncClient`` for an OpenAI-compatible chat endpoint,
with a shared rate limit, one attempt per request (retries belong to the stage's
``asyncpipe.Retry``), a per-call deadline and usage statistics.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import httpx
import orjson

from asyncpipe import ConfigError, StopIntake, move_on_stop, retry_after, stopping

from ._checks import check_base_url, check_key_header, checked_key
from ._errors import (
    LlmDeadlineError,
    LlmRetriesExhausted,
    LlmRetryableError,
    LlmServerDown,
    LlmServerRefused,
    LlmServerWait,
    LlmStatusError,
)
from ._guard import context_full
from ._limits import LlmLimits
from ._outage import OUTAGE_CAUSES, Outage
from ._post import Failure, post_once
from ._probe import Probe, key_advice, shown_models, tell_slots
from ._slots import Slots
from ._statistics import LlmStatistics
from ._types import CallState, ChatReply, Usage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from types import TracebackType

    from ._errors import LlmError
    from ._limits import Admission
    from ._types import Limiter, Message

__all__ = ["DEFAULT_TIMEOUT", "LlmClient", "parse_retry_after"]

logger = logging.getLogger("stages.llm")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
"""60 s to read, write or wait for a pooled connection, 5 s to connect.

openai-python waits 600 s for a read; a pipeline item should not, and the call's deadline
caps a whole call anyway."""

# Answers every call would get, and what to check for each (`LlmClient._advice`).
_REFUSALS = {
    401: "check the key and --llm-key-header",  # `_advice` names where it was looked for
    403: "the key may not make this call: check its rights, and --llm-model",
    404: "check --llm-url {url} (an OpenAI-compatible API's most often ends in /v1{where}) "
    "and --llm-model {model!r}{listed}",
}
_REDACTED = "[REDACTED]"
# The pages whose order `LlmClient._rank` remembers: far more than are ever in flight.
_ITEMS_REMEMBERED = 10_000


#: Read the wait a server asked for (see `asyncpipe.retry_after`).
parse_retry_after = retry_after


class LlmClient:
    """
    A chat-completions client for OpenAI, vLLM, Ollama, llama.cpp server and the like.

    One ``httpx.AsyncClient`` is shared by every call, so connections are pooled.  Each
    `chat` is *one attempt*: it acquires ``rate_limit`` (a retry is a request too, and the
    server counts it), then sends.  A failure another attempt may fix raises
    `LlmRetryableError`: timeouts, connection and protocol errors, statuses 408, 409, 429
    and 5xx, and a malformed body; a server's ``x-should-retry: true/false`` overrides that,
    as in openai-python.  The error carries the wait the server asked for
    (``retry-after-ms``, then ``Retry-After``).  A 429's wait that does not fit in the
    call's deadline raises `LlmServerWait` (a `StopIntake`: no new pages, and no call is
    sent until the wait has passed); openai-python drops a hint over 60 s and retries on
    its backoff, which is how a quota's long wait was met with a request a second.
    A server that cannot be reached (a refused connection, a 502 or a 503) is waited for,
    not retried by the stage: every call of the client waits while one tries again, after
    1 s, then 2, 4 and 8 s at most (see `Outage`), so a server restarted mid-run costs no
    page.  Once it has been unreachable for a call's deadline, `LlmServerDown` (a
    `StopIntake`) stops the run, and the pages are left for ``--resume``; a call without
    a deadline raises `LlmRetryableError` at once instead.  Otherwise the stage's
    `asyncpipe.Retry` waits (full jitter, 0.5 s doubling to 8 s by default, or the hint)
    and calls again.  After a 429 the shared limits (and the call limit) pause for the
    whole ``Retry-After``, so no call goes out before it has passed.
    A 401, 403 or 404 before any call has succeeded, or three in a row, raises
    `LlmServerRefused` (a `StopIntake`): a wrong key, URL or model, which would
    otherwise make an error record of every page.  One between successes fails its page
    alone, and only the first such page's error says what to check.

    A `CallState` ties the attempts of one call together: its deadline runs from the moment
    the first attempt is admitted by the rate limit (time spent queueing for that first
    slot is the pipeline's backpressure, not a fault; waiting for an unreachable server is
    one, and starts it too) to the last byte, so an attempt never outlives it.  A
    timed-out generation starts over on a retry, so it is retried at most
    ``timeout_retries`` times (default 1); after that `LlmRetriesExhausted` is raised.

    The API key goes into one header only (``Authorization: Bearer``, or the bare key in
    ``api_key_header``); it is redacted from every error message and log line, and `repr`
    hides it.

    A query in ``base_url`` (``?api-version=2024-06-01``) is sent as given on every
    request, after the endpoint's path.  It is shown in messages, so it must hold no
    secret: the key goes in its header.

    Args:
        base_url: the API root, e.g. ``https://api.openai.com/v1`` or
            ``http://127.0.0.1:8000/v1``, with a query if the server wants one.
        model: the model name to request.
        api_key: sent as ``Authorization: Bearer``; ``None`` sends no header.
        api_key_header: the header that carries ``api_key``: ``Authorization`` (the
            default) sends ``Bearer`` and the key, any other name (``api-key``,
            ``x-api-key``) the key alone.
        rate_limit: a limit shared with other clients and stages, or ``None``.
        shared: the token limit, header feedback and cost ceiling shared by every call
            (see `LlmLimits`); by default none but the feedback.
        timeout: httpx timeouts per attempt (default `DEFAULT_TIMEOUT`).
        timeout_retries: how many times a call whose attempt timed out may be retried.
        temperature: sent as ``temperature`` unless ``None`` (default 0, for repeatability).
        max_tokens: the default ``max_tokens`` of a request that names none.
        prices: (prompt, completion) price per million tokens, to count ``cost``.
        headers: extra headers for every request.
        concurrency: the most requests in flight at once, or ``None``: as many as the
            server says it serves at once, when it says (`check` reads a llama.cpp
            server's slots), else as many as the callers make.  A request waiting for a
            free one has not begun: neither its timeout nor its call's deadline runs.
            The calls waiting get a free one by rank (see ``task_order``), not first come.
        limits: httpx pool limits.  The default has no cap on connections: the caller's
            worker count bounds concurrency, and a capped pool would queue requests the
            rate limit had spaced out and then release them in a burst.
        transport: an httpx transport (tests pass ``httpx.MockTransport``).
        clock: the monotonic clock of the deadline (tests inject a fake).
        sleep: how a call waits for an unreachable server (tests inject a fake).
        task_order: the stages' tasks in pipeline order (``("correct", "fix",
            "structure")``): when the concurrency is capped, a later stage's call gets a
            free place first, then the call for the page the client saw first, so pages
            finish in order; a task not listed comes after those listed.
        key_env: the environment variables ``api_key`` was looked for in, in order: a
            refused or missing key's message names them (never their values).

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
        api_key_header: str = "Authorization",
        rate_limit: Limiter | None = None,
        shared: LlmLimits | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        timeout_retries: int = 1,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        prices: tuple[float, float] | None = None,
        headers: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        task_order: Sequence[str] = (),
        key_env: Sequence[str] = (),
    ) -> None:
        check_base_url(base_url)
        check_key_header(api_key_header)
        if not isinstance(timeout, httpx.Timeout) and not timeout > 0:  # NaN is not > 0
            raise ConfigError(f"the LLM timeout (--llm-timeout) must be over 0 s, got {timeout}")
        if timeout_retries < 0:
            raise ConfigError(f"timeout_retries must be >= 0, got {timeout_retries}")
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"the LLM concurrency must be at least 1, got {concurrency}")
        # httpx would add the endpoint's path after the query ("?api-version=1/models"):
        # the query is kept apart and put back on each request's URL.
        given, _, self._query = base_url.partition("?")
        self._root = given.rstrip("/")
        self.base_url = self._with_query(self._root)
        self.model = model
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.timeout_retries = timeout_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = checked_key(api_key)
        self._key_env = tuple(key_env)
        self._limit = rate_limit
        self._slots = Slots(concurrency) if concurrency is not None else None
        self._given = concurrency
        # A capped server's slots go to the later stage first, then the earlier page.
        self._task_order = {task: -place for place, task in enumerate(task_order)}
        self._item_order: dict[str, int] = {}
        self._items_seen = 0
        self.shared = shared if shared is not None else LlmLimits()
        self._prices = prices
        self._clock = clock
        self._outage = Outage(clock=clock, sleep=sleep, url=self.base_url)
        all_headers = {"User-Agent": "asyncpipe-llm/0.1", **(headers or {})}
        if self._api_key is not None:
            bearer = api_key_header.lower() == "authorization"
            all_headers[api_key_header] = f"Bearer {self._api_key}" if bearer else self._api_key
        self._chat_url = self._with_query(f"{self._root}/chat/completions")
        self._http = httpx.AsyncClient(
            base_url=self._root,
            headers=all_headers,
            timeout=timeout,
            limits=limits or httpx.Limits(max_connections=None, max_keepalive_connections=64),
            transport=transport,
        )
        self._succeeded = self._failed = self._attempts = self._length_stops = 0
        self._context_stops = 0
        self._refused_in_row = 0  # 401, 403 and 404 answers since the last success
        self._seconds = 0.0
        self._failures: Counter[str] = Counter()
        self._usage = [0, 0, 0]
        self._no_usage = 0
        self._gave_up = 0  # calls whose deadline ran out before their next attempt
        self._llama_cpp = False  # `check` found a llama.cpp server
        self._models: tuple[str, ...] | None = None  # what `check` found listed
        self._no_models = False  # `check` found no /models at the URL or near it
        self._server_slots: int | None = None  # what a llama.cpp server said at `check`
        self._context: int | None = None  # its context per slot, in tokens
        self._advised: set[int] = set()  # refusals whose advice a page's error gave

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

    async def check(self, *, grace: float = 30.0) -> None:
        """
        Ask the server for its models before a run: one clear error at the start instead
        of an error record per page, when nothing answers at ``base_url`` or the server
        refuses the key.  A refused connection is tried again for ``grace`` seconds (a
        server started beside the job may still be loading its model).  A 404 asks the
        URLs ``base_url`` was likely meant to be (see `stages.llm._probe`); when none lists
        models either, the server may just lack the endpoint: the calls decide, and a
        refused call's error says it too.  Any other answer (a 403 for a key that may chat
        but not list models, a 5xx, a slow answer) is left to the calls.  The models the
        server lists go into a refused model's error.  Each request counts against the
        rate limit.

        Raises:
            ConfigError: nothing answered within ``grace``, the server answered 401, or
                ``base_url`` answered 404 where a likely alternative lists models.
        """
        probe = Probe(
            self._http,
            self._root,
            self._query,
            self.model,
            self._limit,
            self._redact,
            keyed=bool(self._api_key),
            key_env=self._key_env,
        )
        found = await probe.check(grace=grace)
        self._llama_cpp = found.llama_cpp
        self._models, self._no_models = found.models, found.no_models
        self._server_slots, self._context = found.slots, found.context
        if found.slots is not None:
            tell_slots(found.slots, self._given, self.timeout.read)
            if self._given is None:
                self._slots = Slots(found.slots)

    @property
    def llama_cpp(self) -> bool:
        """Whether `check` found a llama.cpp server (``False`` before it ran)."""
        return self._llama_cpp

    @property
    def concurrency(self) -> int | None:
        """The most requests in flight at once, or ``None`` for no cap."""
        return None if self._slots is None else self._slots.total

    def _rank(self, task: str, item: str | None) -> tuple[int, int]:
        """
        A call's place in the queue for the server's slots: the later stage first (as
        ``task_order`` lists them), then the page the client saw first, so that pages
        finish in the order they began rather than all waiting behind the first stage.
        """
        order = self._items_seen
        if item is not None:
            order = self._item_order.setdefault(item, order)
            if len(self._item_order) > _ITEMS_REMEMBERED:
                del self._item_order[next(iter(self._item_order))]  # the oldest
        self._items_seen += 1
        return self._task_order.get(task, 0), order

    def _with_query(self, url: str) -> str:
        """``url`` with the query ``base_url`` was given (``?api-version=...``), if any."""
        return f"{url}?{self._query}" if self._query else url

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
            attempts=self._attempts,
            succeeded=self._succeeded,
            failed=self._failed,
            failures=dict(self._failures),
            length_stops=self._length_stops,
            context_stops=self._context_stops,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            seconds=self._seconds,
            cost=cost,
            no_usage=self._no_usage,
            gave_up=self._gave_up,
            server_slots=self._server_slots,
            context=self._context,
        )

    # -- the call --------------------------------------------------------------------------

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        task: str,
        item: str | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        call: CallState | None = None,
    ) -> ChatReply:
        """
        Send one attempt of a chat completion.

        Args:
            messages: the conversation.
            task: what the call is for; sent as ``X-Asyncpipe-Task``.
            item: the pipeline item id; sent (percent-encoded) as ``X-Asyncpipe-Item``.
            response_format: sent as ``response_format`` (e.g. ``{"type": "json_schema",
                ...}``), if given.
            max_tokens: the most tokens to generate (default: the client's).
            call: the call this attempt belongs to; its attempt number is sent as
                ``X-Asyncpipe-Attempt`` and its deadline bounds the attempt.  ``None`` is a
                one-attempt call without a deadline.

        Returns:
            The reply, with its usage, attempt number and ``finish_reason``.

        Raises:
            LlmRetryableError: the attempt failed in a way another attempt may fix.
            LlmStatusError: a status that retrying cannot fix (400, 401, 404...).
            LlmRetriesExhausted: a timed-out generation may not be retried again.
            LlmDeadlineError: the call's deadline ran out.
            LlmServerWait: the server asked for a wait longer than the call may take.
            LlmServerRefused: the server refuses calls (a wrong key, URL or model).
            LlmServerDown: the server has been unreachable for the call's deadline.
            StopIntake: the run stopped while the call waited its turn; nothing was sent.
        """
        state = call if call is not None else CallState()
        payload: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        limit = max_tokens if max_tokens is not None else self.max_tokens
        if limit is not None:
            payload["max_tokens"] = limit
        if response_format is not None:
            payload["response_format"] = dict(response_format)
        body = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Asyncpipe-Task": task,
            "X-Asyncpipe-Attempt": str(state.attempt),
        }
        if item is not None:
            headers["X-Asyncpipe-Item"] = quote(item, safe="/#@:.,_-+=")
        what = f"LLM {task} call" + (f" for item {item!r}" if item is not None else "")

        if (held := self.shared.held_for()) > 0:
            raise self._server_wait(held, state, what)
        request = _Request(messages, limit, body, headers, what, state)
        # The call limit is acquired last, right before the request goes: a unit granted
        # and then held back (by a pause after a 429, or the token limit) would reach the
        # server late and crowd the units granted after it into one of its windows.
        if self._slots is None:
            return await self._send(request)
        # Each wait before the request goes ends when the run stops (`move_on_stop`): the
        # call gives up at once, unsent, instead of at its turn.
        taken = False
        with move_on_stop():
            await self._slots.acquire(self._rank(task, item))
            taken = True
        if not taken:
            raise _not_sent(what)
        try:
            return await self._send(request)
        finally:
            self._slots.release()

    async def _send(self, request: _Request) -> ChatReply:
        """Send the call, and again each time it finds the server unreachable (`_reach`)."""
        while True:
            await self._reach(request.state, request.what)
            try:
                return await self._admit_and_send(request)
            except _Unreachable:
                continue

    async def _reach(self, state: CallState, what: str) -> None:
        """
        Wait, while the server is unreachable, until this call may try it again.  Every
        call waits until the outage has lasted one deadline at most (counted from its
        start, not from each call's: a page that begins to wait late waits no longer):
        a server unreachable so long is not coming back soon, and the run stops.

        Raises:
            LlmServerDown: the server has been unreachable for the call's deadline.
            StopIntake: the run stopped meanwhile; nothing was sent.
        """
        outage = self._outage
        if not outage.down:
            return
        if state.started is None:
            state.started = self._clock()  # a fault, not the pipeline's backpressure
        while True:
            until = None if state.deadline is None else outage.since + state.deadline
            reached = False
            with move_on_stop():
                reached = await outage.wait(until)
            if stopping():
                raise _not_sent(what)
            if reached:
                return
            assert state.deadline is not None  # without an until, the wait ends reached
            if outage.down and self._clock() >= outage.since + state.deadline:
                raise LlmServerDown(
                    f"{what}: the LLM server has been unreachable for "
                    f"{self._clock() - outage.since:.0f} s, a whole call's deadline "
                    f"(--llm-deadline {state.deadline:g}; last: {outage.detail}): no new "
                    "pages; --resume once it is back",
                    attempts=state.attempt,
                )

    async def _admit_and_send(self, request: _Request) -> ChatReply:
        what = request.what
        admission = None
        with move_on_stop():
            admission = await self.shared.admit(request.messages, request.max_tokens, what)
        if admission is None:
            raise _not_sent(what)
        try:
            if self._limit is not None:
                with move_on_stop():
                    await self._limit.acquire()
                    admission.restamp()  # the tokens go now too, not when reserved
            if stopping():
                # The run stopped while this call waited its turn: send nothing, and
                # leave the page for --resume (`asyncpipe.stopping`).
                admission.settle(None, charged=False)
                raise _not_sent(what)
            return await self._admitted(request, admission)
        finally:
            admission.settle(None)  # not settled yet: cancelled, so the estimate stands

    async def _admitted(self, request: _Request, admission: Admission) -> ChatReply:
        """Send one attempt of a call the limits have admitted, and count what came back."""
        what, state = request.what, request.state
        remaining = self._time_left(state, admission, what)
        self._attempts += 1
        self.shared.sending()
        result, response = await self._attempt(request.body, request.headers, remaining)
        if isinstance(result, ChatReply):
            admission.settle(result.usage)
        elif result.cause == "connect" or (response is not None and response.status_code >= 300):
            admission.settle(None, charged=False)  # refused, or never received: nothing used
        else:
            admission.settle(None)  # a timeout or a bad body: the estimate stands
        wait = None if isinstance(result, ChatReply) else result.retry_after
        too_long = (
            wait is not None
            and response is not None
            and response.status_code == 429
            and remaining is not None
            and wait >= remaining
        )
        if response is not None:
            self._heed(response, None if too_long else wait)
        if isinstance(result, ChatReply):
            self._outage.answered()
            return self._count_reply(result, request)
        if result.cause in OUTAGE_CAUSES and result.retryable and state.deadline is not None:
            # Waited for within the deadline (`_reach`): the call is not at fault.
            self._failed += 1
            self._failures[result.cause] += 1
            detail = self._redact(result.detail)
            logger.debug("%s: the LLM server is unreachable (%s): waiting for it", what, detail)
            self._outage.failed(detail, result.retry_after, deadline=state.deadline)
            raise _Unreachable
        if response is not None:
            self._outage.answered()
        raise self._count_failure(result, state, what, too_long=too_long)

    def _time_left(self, state: CallState, admission: Admission, what: str) -> float | None:
        """
        The seconds left of the call's deadline, its clock started at the first attempt
        (``None``: no deadline).

        Raises:
            LlmDeadlineError: none is left; nothing was sent, so nothing is charged.
        """
        now = self._clock()
        if state.started is None:
            state.started = now
        remaining = None if state.deadline is None else state.started + state.deadline - now
        if remaining is not None and remaining <= 0:
            admission.settle(None, charged=False)
            raise self._give_up(
                LlmDeadlineError,
                f"{what} ran out of its {state.deadline:g}s deadline before attempt "
                f"{state.attempt} (raise --llm-deadline)",
                "deadline",
                state,
                sent=False,
            )
        return remaining

    def _heed(self, response: httpx.Response, wait: float | None) -> None:
        """
        Feed an answer's headers back to the shared limits, and pause every call for
        ``wait``, the server's Retry-After (else a 'Retry-After: 120' is met by a request a
        second); one longer than a call may take is ``None`` here, and holds every call
        instead (`_count_failure`), and stops the intake.
        """
        pause = self.shared.feedback_from(response.headers, response.status_code, wait)
        hold = getattr(self._limit, "pause", None)  # a RateLimit can; any Limiter may not
        if pause and hold is not None:
            # The calls already admitted wait for the call limit, behind the pause's
            # checks: pause it too, or they go on at its pace (52 requests went out
            # during a 6 s Retry-After).
            hold(pause)

    def _count_reply(self, reply: ChatReply, request: _Request) -> ChatReply:
        """
        Count a usable reply, and return it with the call's attempt number, and, when
        the context cut it, not ``max_tokens``, a `ContextFull` for its ``finish_reason``.
        """
        self._succeeded += 1
        self._refused_in_row = 0
        self._seconds += reply.seconds
        if reply.finish_reason == "length":
            usage, slots = reply.usage, self._server_slots
            full = context_full(usage, request.max_tokens, context=self._context, slots=slots)
            if full is None:
                self._length_stops += 1
            else:
                self._context_stops += 1
                if self._context_stops == 1:
                    logger.warning("%s: %s", request.what, full.reason)
                reply = replace(reply, finish_reason=full)
        return replace(reply, attempts=request.state.attempt)

    def _count_failure(
        self, failure: Failure, state: CallState, what: str, *, too_long: bool
    ) -> LlmError:
        """
        Count a failed attempt, and return the error the call raises: `LlmServerWait` for
        a 429 whose wait is ``too_long`` for the call (every call is held until it has
        passed), `LlmDeadlineError`, `LlmServerRefused`, `LlmStatusError` when another
        attempt cannot help, `LlmRetriesExhausted` after too many timeouts, else
        `LlmRetryableError` for the stage's `asyncpipe.Retry`.
        """
        if too_long:
            assert failure.retry_after is not None
            self.shared.hold(failure.retry_after)
            self._failed += 1
            self._failures["429"] += 1
            return self._server_wait(failure.retry_after, state, what)
        described = self._redact(failure.detail)
        if failure.cause == "deadline":
            return self._give_up(
                LlmDeadlineError,
                f"{what} ran out of its {state.deadline:g}s deadline during attempt "
                f"{state.attempt} (raise --llm-deadline)",
                "deadline",
                state,
            )
        advice = ""
        if failure.status in _REFUSALS:
            self._refused_in_row += 1
            if self._succeeded == 0 or self._refused_in_row >= 3:
                self._failed += 1
                self._failures[failure.cause] += 1
                return LlmServerRefused(
                    f"{what} failed: {described}: the LLM server refuses calls so "
                    f"({self._advice(failure.status)}): no new pages; fix it, then --resume",
                    attempts=state.attempt,
                    status=failure.status,
                )
            if failure.status not in self._advised:
                # Between successes each refused page fails alone, one line each: what
                # to check is said with the first, not again with every page.
                self._advised.add(failure.status)
                advice = f": {self._advice(failure.status)}"
        if not failure.retryable:
            return self._give_up(
                LlmStatusError,
                f"{what} failed: {described}; not retryable (attempt {state.attempt}){advice}",
                failure.cause,
                state,
                failure.status,
            )
        if failure.cause == "timeout":
            state.timeouts += 1
            if state.timeouts > self.timeout_retries:
                return self._give_up(
                    LlmRetriesExhausted,
                    f"{what} timed out {state.timeouts} times (each attempt may take "
                    f"{self.timeout.read}s; a timed-out generation is retried at most "
                    f"{self.timeout_retries} times): for a slow server raise --llm-timeout, or "
                    "lower --llm-text-max-tokens / --llm-structure-max-tokens",
                    "timeout",
                    state,
                )
        self._failed += 1
        self._failures[failure.cause] += 1
        message = f"{what} failed: {described} (attempt {state.attempt})"
        logger.debug("%s", message)
        assert state.started is not None  # `_time_left` started the clock
        return LlmRetryableError(
            message,
            cause=failure.cause,
            attempts=state.attempt,
            status=failure.status,
            elapsed=self._clock() - state.started,
            retry_after=failure.retry_after,
        )

    def _advice(self, status: int) -> str:
        """What to check after a refusal (401, 403, 404) every call would get, with what
        `check` found: for a 404, whether the URL has /models, and the models listed
        (redacted: a server's list is its own text, and may echo the key)."""
        if status == 401:
            return key_advice(self._key_env)
        if status != 404:
            return _REFUSALS[status]
        where = "; it has no /models there, nor at the URLs it may have meant"
        listed = f" (the server lists {shown_models(self._models)})" if self._models else ""
        return self._redact(
            _REFUSALS[404].format(
                url=self.base_url,
                where=where if self._no_models else "",
                model=self.model,
                listed=listed,
            )
        )

    def _give_up(
        self,
        kind: type[LlmStatusError | LlmRetriesExhausted | LlmDeadlineError],
        message: str,
        cause: str,
        state: CallState,
        status: int | None = None,
        *,
        sent: bool = True,
    ) -> LlmStatusError | LlmRetriesExhausted | LlmDeadlineError:
        """The error a call gives up with, counted as a failed request if one was ``sent``."""
        if sent:
            self._failed += 1
            self._failures[cause] += 1
        else:
            self._gave_up += 1
        message = self._redact(message)
        logger.debug("%s", message)
        elapsed = None if state.started is None else self._clock() - state.started
        return kind(message, cause=cause, attempts=state.attempt, status=status, elapsed=elapsed)

    def _server_wait(self, wait: float, state: CallState, what: str) -> LlmServerWait:
        # UTC, said so: the log lines' times are local, and a resume may run elsewhere.
        until = datetime.now(UTC) + timedelta(seconds=math.ceil(wait))
        return LlmServerWait(
            f"{what}: the LLM server asked to wait {wait:.0f} s (Retry-After), longer than "
            f"a call may take ({state.deadline or 0:g} s, --llm-deadline): no new pages, and "
            f"none sent until then; --resume once it has passed, after "
            f"{until:%Y-%m-%d %H:%M:%S} UTC",
            attempts=state.attempt,
        )

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, _REDACTED)
        return text

    async def _attempt(
        self, body: bytes, headers: dict[str, str], remaining: float | None
    ) -> tuple[ChatReply | Failure, httpx.Response | None]:
        sent = self._clock()
        failure, response = await post_once(
            self._http, self._chat_url, body, headers, remaining, self._redact
        )
        if failure is not None:
            return failure, response
        assert response is not None
        return self._parse(response, self._clock() - sent), response

    def _parse(self, response: httpx.Response, seconds: float) -> ChatReply | Failure:
        try:
            data = orjson.loads(response.content)
            choice = data["choices"][0]
            content = choice["message"]["content"]
            finish = choice.get("finish_reason")
            model = str(data.get("model") or self.model)
            raw_usage = data.get("usage") or {}
            said = bool(raw_usage)
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
            return Failure(
                "malformed",
                True,
                f"HTTP {response.status_code} with a malformed body ({type(exc).__name__})",
                status=response.status_code,
            )
        if not isinstance(content, str):
            return Failure("malformed", True, "the reply has no text content", response.status_code)
        self._no_usage += not said
        self._usage[0] += usage.prompt_tokens
        self._usage[1] += usage.completion_tokens
        self._usage[2] += usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
        return ChatReply(
            content, usage, 0, model, str(finish) if finish is not None else None, seconds
        )


@dataclass(frozen=True, slots=True)
class _Request:
    """
    One call's request, as `LlmClient.chat` builds it once for all its sends: what the
    limits admit (``messages``, ``max_tokens``), what goes out (``body``, ``headers``),
    how messages name it (``what``) and the call it is an attempt of (``state``).
    """

    messages: Sequence[Message]
    max_tokens: int | None
    body: bytes
    headers: dict[str, str]
    what: str
    state: CallState


class _Unreachable(Exception):
    """An attempt found the server unreachable: the call waits for it and tries again."""


def _not_sent(what: str) -> StopIntake:
    """The run stopped while ``what`` waited its turn: nothing was sent, and its page is
    left for --resume (`asyncpipe.stopping`)."""
    return StopIntake("the run's stop", f"{what}: not sent, the run is stopping")
