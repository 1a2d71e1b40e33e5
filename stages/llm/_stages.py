"""
The three LLM stages: ``correct``, ``fix`` and ``structure`` (`_bind` binds them for a run).

Every request is bounded by ``max_tokens`` (for correct and fix, from the input's length;
for structure, from the schema), a reply cut by that limit is never passed on as complete,
and correct and fix replies go through the correction guard (see `judge_edit`): a rewrite
keeps the input text and is recorded as rejected.  Structure's fields go through the
field guard (see `ground_fields`): one not read from the page keeps the offline rules'.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import anyio

from asyncpipe import Retry

from ._errors import LlmOutputError, LlmStatusError
from ._grounding import ground_fields, unfound_fields
from ._guard import DEFAULT_MIN_SIMILARITY, ContextFull, judge_edit
from ._prompts import Prompts, render
from ._schema import OutputInvalid, Schema, parse_json_object
from ._structured import StructuredOutputs

if TYPE_CHECKING:
    from collections.abc import Callable

    from stages._page import Page

    from ._types import CallState, ChatModel, ChatReply, Message

__all__ = [
    "DEFAULT_RETRY",
    "correct",
    "fix",
    "structure",
    "structure_max_tokens",
    "text_max_tokens",
]

# A Retry-After as long as the deadline is waited out: the deadline, not a cap, bounds it.
DEFAULT_RETRY = Retry(attempts=5, base=0.5, cap=8.0, retry_after_cap=180.0, deadline=180.0)
"""The LLM stages' retry policy: openai-python's conventions (full jitter from 0.5 s doubling
to 8 s, or the server's wait, however long it fits in the deadline), 5 attempts, and
180 s per call."""

_MARKERS = ("<<<TEXT", "TEXT>>>")


def text_max_tokens(source: str) -> int:
    """
    The default ``max_tokens`` of a correct or fix reply: the input's UTF-8 bytes plus 32,
    so an edit as long as its input fits with any tokenizer, while a runaway generation
    stops.  It was half the characters, for GPT-4's tokenizer (3 to 4 characters a token
    on receipt text); SmolLM2's spends about 1.5 (llama.cpp's ``/tokenize``: 343 tokens for
    receipt 000's 513 characters), so no correction of the real llama.cpp server could
    ever finish. A token is at least one byte in every BPE tokenizer
    asyncpipe was run with, the bound the token limit uses for prompts too.
    """
    return len(source.encode()) + 32


def structure_max_tokens(schema: Schema) -> int:
    """
    The default ``max_tokens`` of a structure reply, from the schema: per property its
    name, quoting and punctuation (8 + len/2 tokens) and its value (``maxLength``, at most
    200 characters, at 4 characters a token), plus 16 for the braces.
    """
    total = 16
    for name, spec in (schema.schema.get("properties") or {}).items():
        limit = spec.get("maxLength", 200) if isinstance(spec, dict) else 200
        total += 8 + math.ceil(len(name) / 2) + math.ceil(min(int(limit), 200) / 4)
    return total


def _clean_text(content: str) -> str:
    """Strip what models add around a text answer: a code fence, echoed markers."""
    lines = content.strip("\n").splitlines()
    if len(lines) >= 2 and lines[0].lstrip().startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    if lines and lines[0].strip() == _MARKERS[0]:
        lines = lines[1:]
    if lines and lines[-1].strip() == _MARKERS[1]:
        lines = lines[:-1]
    return "\n".join(lines).strip("\n")


def _note(page: Page, task: str, replies: list[ChatReply], **extra: Any) -> None:
    notes = page.notes.setdefault("llm", {})
    notes[task] = {
        "calls": len(replies),
        "attempts": max(r.attempts for r in replies),
        "tokens": sum(r.usage.total_tokens for r in replies),
        "model": replies[-1].model,
        **extra,
    }


async def _text_task(
    client: ChatModel,
    page: Page,
    task: str,
    system: str,
    user: str,
    source: str,
    *,
    call: CallState | None,
    min_similarity: float,
    max_tokens: int | None,
) -> str:
    if not source.strip():
        page.notes.setdefault("llm", {})[task] = {"calls": 0, "skipped": "empty text"}
        return source
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": render(user, text=source)},
    ]
    limit = max_tokens if max_tokens is not None else text_max_tokens(source)
    reply = await client.chat(messages, task=task, item=page.ref.id, max_tokens=limit, call=call)
    text = _clean_text(reply.content)
    verdict = judge_edit(
        source,
        text,
        min_similarity=min_similarity,
        keep_lines=task == "correct",
        finish_reason=reply.finish_reason,
    )
    _note(page, task, [reply], max_tokens=limit, **verdict.to_json())
    return text if verdict.accepted else source


async def correct(
    client: ChatModel,
    page: Page,
    *,
    prompts: Prompts,
    call: CallState | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    max_tokens: int | None = None,
) -> Page:
    """
    Repair OCR errors: ``page.text`` → ``page.corrected``.

    An empty page is passed through without a call.  A reply that is empty, cut by
    ``max_tokens``, less similar to the input than ``min_similarity`` or missing lines is
    rejected: ``corrected`` keeps the input, and ``notes["llm"]["correct"]["rejected"]``
    is true with the similarity and the reason.

    Args:
        client: the chat model.
        page: the page after OCR.
        prompts: the prompts (``correct_system``, ``correct_user``).
        call: the call state across retries (see `CallState`).
        min_similarity: the correction guard's threshold, 0-100.
        max_tokens: the reply's limit (default `text_max_tokens` of the input).

    Returns:
        The same page, with ``corrected`` set and ``notes["llm"]["correct"]`` recorded.

    Raises:
        LlmError: the call failed.
    """
    page.corrected = await _text_task(
        client,
        page,
        "correct",
        prompts.correct_system,
        prompts.correct_user,
        page.text,
        call=call,
        min_similarity=min_similarity,
        max_tokens=max_tokens,
    )
    return page


async def fix(
    client: ChatModel,
    page: Page,
    *,
    prompts: Prompts,
    call: CallState | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    max_tokens: int | None = None,
) -> Page:
    """
    Normalise layout (hyphenation, broken lines, stray characters) of ``page.corrected``.

    It reads ``page.text`` when no correct stage ran, and writes ``page.corrected``.  The
    guard is as in `correct`, except that fix may join lines.

    Args:
        client: the chat model.
        page: the page.
        prompts: the prompts (``fix_system``, ``fix_user``).
        call: the call state across retries (see `CallState`).
        min_similarity: the correction guard's threshold, 0-100.
        max_tokens: the reply's limit (default `text_max_tokens` of the input).

    Returns:
        The same page, with ``corrected`` replaced and ``notes["llm"]["fix"]`` recorded.

    Raises:
        LlmError: the call failed.
    """
    source = page.corrected if page.corrected is not None else page.text
    page.corrected = await _text_task(
        client,
        page,
        "fix",
        prompts.fix_system,
        prompts.fix_user,
        source,
        call=call,
        min_similarity=min_similarity,
        max_tokens=max_tokens,
    )
    return page


async def structure(
    client: ChatModel,
    page: Page,
    *,
    prompts: Prompts,
    schema: Schema,
    structured: StructuredOutputs | None = None,
    call: CallState | None = None,
    max_tokens: int | None = None,
    memo: dict[str, Any] | None = None,
    offline: Callable[[Page], dict[str, Any]] | None = None,
) -> Page:
    """
    Extract fields as JSON valid against ``schema`` → ``page.fields``.

    The request asks for structured outputs as ``structured`` says (default: ``json_schema``
    with the fallback chain).  The reply is parsed (never evaluated), unexpected keys are
    dropped, and the rest is validated; every value must be a string or ``null``.  An
    invalid reply gets exactly one repair request, which sends the bad answer back with the
    reason.  A reply cut by ``max_tokens`` fails at once: retrying would cut it again.

    The fields then go through the field guard (`ground_fields`): a company, date, address
    or total that is empty or not read from the page's text is replaced by the offline
    rules' value (``offline``, run in a worker thread; ``None`` without it), and
    ``notes["llm"]["structure"]["replaced"]`` says which and why.  A custom schema's
    other fields that the text does not hold (`unfound_fields`) are kept, and
    ``notes["llm"]["structure"]["unfound"]`` says which and why.

    Args:
        client: the chat model.
        page: the page; its ``corrected`` text is used, else ``text``.
        prompts: the prompts (``structure_system``, ``structure_user``,
            ``structure_repair``).
        schema: the schema of the fields.
        structured: the run's structured-output mode.
        call: the call state across retries (see `CallState`).
        max_tokens: the reply's limit (default `structure_max_tokens` of the schema).
        memo: where replies already received are kept across retries, so a retry of the
            repair request does not pay for the first request again.
        offline: computes the offline rules' fields of the page, for the field guard.

    Returns:
        The same page, with ``fields`` set and ``notes["llm"]["structure"]`` recorded.

    Raises:
        LlmOutputError: the reply is still invalid after the repair, or was cut.
        LlmError: a call failed.
    """
    structured = structured or StructuredOutputs("auto", schema)
    memo = memo if memo is not None else {}
    limit = max_tokens if max_tokens is not None else structure_max_tokens(schema)
    source = page.corrected if page.corrected is not None else page.text
    messages: list[Message] = memo.setdefault(
        "messages",
        [
            {"role": "system", "content": render(prompts.structure_system, schema=schema.text)},
            {"role": "user", "content": render(prompts.structure_user, text=source)},
        ],
    )
    replies: list[ChatReply] = memo.setdefault("replies", [])
    probe = await structured.take_turn()
    settled = False
    try:
        result = await _structure_replies(
            client, page, prompts, schema, structured, call, limit, memo, messages, replies
        )
        settled = True
    except Exception:
        # Any answer but a refusal (a timeout, a 5xx, an invalid reply) says nothing
        # against the mode: the others go on in it, all at once (else, with every call
        # timing out, they go one at a time).
        settled = True
        raise
    finally:
        if probe:
            structured.end_turn(settled=settled)
    await _guard_fields(result, source, offline, schema.labels)
    return result


async def _guard_fields(
    page: Page,
    source: str,
    offline: Callable[[Page], dict[str, Any]] | None,
    labels: frozenset[str],
) -> None:
    """Replace the fields the model did not read from ``source`` (see `ground_fields`),
    and flag a custom schema's other fields it does not hold (see `unfound_fields`)."""
    rules = await anyio.to_thread.run_sync(offline, page) if offline is not None else {}
    kept, problems = ground_fields(page.fields or {}, source, rules)
    if problems:
        page.fields = kept
        page.notes["llm"]["structure"]["replaced"] = problems
    if unfound := unfound_fields(page.fields or {}, source, labels=labels):
        page.notes["llm"]["structure"]["unfound"] = unfound


async def _structure_replies(
    client: ChatModel,
    page: Page,
    prompts: Prompts,
    schema: Schema,
    structured: StructuredOutputs,
    call: CallState | None,
    limit: int,
    memo: dict[str, Any],
    messages: list[Message],
    replies: list[ChatReply],
) -> Page:
    reason = memo.get("reason", "")
    while len(replies) < 2:
        mode = structured.mode
        try:
            reply = await client.chat(
                messages,
                task="structure",
                item=page.ref.id,
                response_format=structured.response_format(mode),
                max_tokens=limit,
                call=call,
            )
        except LlmStatusError as exc:
            if structured.refused(mode, exc):
                continue
            raise
        replies.append(reply)
        if reply.finish_reason == "length":
            # A full context is no max_tokens cut: its reason says what can help.
            why = (
                reply.finish_reason.reason
                if isinstance(reply.finish_reason, ContextFull)
                else f"cut at max_tokens={limit} (finish_reason: length); "
                "raise --llm-structure-max-tokens"
            )
            raise LlmOutputError(
                f"LLM structure reply for item {page.ref.id!r} was {why}",
                cause="length",
                attempts=reply.attempts,
            )
        try:
            record, dropped = schema.clean(parse_json_object(reply.content))
        except OutputInvalid as exc:
            reason = memo["reason"] = str(exc)
            messages = memo["messages"] = [
                *messages,
                {"role": "assistant", "content": reply.content},
                {"role": "user", "content": render(prompts.structure_repair, error=reason)},
            ]
            continue
        page.fields = record
        _note(
            page,
            "structure",
            replies,
            mode=mode,
            max_tokens=limit,
            repaired=len(replies) > 1,
            dropped_keys=[k[:50] for k in dropped[:10]],
        )
        return page
    raise LlmOutputError(
        f"LLM structure output for item {page.ref.id!r} is invalid after one repair attempt: "
        f"{reason}",
        cause="invalid_output",
        attempts=replies[-1].attempts,
    )
