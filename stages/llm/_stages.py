"""
The three LLM stages: ``correct``, ``fix`` and ``structure``, and a factory that binds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import LlmOutputError
from ._prompts import Prompts, render
from ._schema import OutputInvalid, Schema, parse_json_object

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from stages._page import Page

    from ._types import ChatModel, ChatReply, Message

__all__ = ["LlmStages", "correct", "fix", "llm_stages", "structure"]


_MARKERS = ("<<<TEXT", "TEXT>>>")


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
        "attempts": sum(r.attempts for r in replies),
        "tokens": sum(r.usage.total_tokens for r in replies),
        "model": replies[-1].model,
        **extra,
    }


async def _text_task(
    client: ChatModel, page: Page, task: str, system: str, user: str, source: str
) -> str:
    if not source.strip():
        page.notes.setdefault("llm", {})[task] = {"calls": 0, "skipped": "empty text"}
        return source
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": render(user, text=source)},
    ]
    reply = await client.chat(messages, task=task, item=page.ref.id)
    text = _clean_text(reply.content)
    if not text.strip():
        raise LlmOutputError(
            f"LLM {task} for item {page.ref.id!r} returned empty text for a non-empty page",
            cause="empty",
            attempts=reply.attempts,
        )
    _note(page, task, [reply])
    return text


async def correct(client: ChatModel, page: Page, *, prompts: Prompts) -> Page:
    """
    Repair OCR errors: ``page.text`` → ``page.corrected``.

    An empty page is passed through without a call.

    Args:
        client: the chat model.
        page: the page after OCR.
        prompts: the prompts (``correct_system``, ``correct_user``).

    Returns:
        The same page, with ``corrected`` set and ``notes["llm"]["correct"]`` recorded.

    Raises:
        LlmError: the call failed, or the model returned nothing.
    """
    page.corrected = await _text_task(
        client, page, "correct", prompts.correct_system, prompts.correct_user, page.text
    )
    return page


async def fix(client: ChatModel, page: Page, *, prompts: Prompts) -> Page:
    """
    Normalise layout (hyphenation, broken lines, stray characters) of ``page.corrected``.

    It reads ``page.text`` when no correct stage ran, and writes ``page.corrected``.

    Args:
        client: the chat model.
        page: the page.
        prompts: the prompts (``fix_system``, ``fix_user``).

    Returns:
        The same page, with ``corrected`` replaced and ``notes["llm"]["fix"]`` recorded.

    Raises:
        LlmError: the call failed, or the model returned nothing.
    """
    source = page.corrected if page.corrected is not None else page.text
    page.corrected = await _text_task(
        client, page, "fix", prompts.fix_system, prompts.fix_user, source
    )
    return page


async def structure(
    client: ChatModel, page: Page, *, prompts: Prompts, schema: Schema, json_mode: bool = True
) -> Page:
    """
    Extract fields as JSON valid against ``schema`` → ``page.fields``.

    The reply is parsed (never evaluated), unexpected keys are dropped, and the rest is
    validated; every value must be a string or ``null``.  An invalid reply gets exactly
    one repair request, which sends the bad answer back with the reason.

    Args:
        client: the chat model.
        page: the page; its ``corrected`` text is used, else ``text``.
        prompts: the prompts (``structure_system``, ``structure_user``,
            ``structure_repair``).
        schema: the schema of the fields.
        json_mode: ask for ``response_format: json_object`` (turn off for servers that
            reject it).

    Returns:
        The same page, with ``fields`` set and ``notes["llm"]["structure"]`` recorded.

    Raises:
        LlmOutputError: the reply is still invalid after the repair.
        LlmError: a call failed.
    """
    source = page.corrected if page.corrected is not None else page.text
    messages: list[Message] = [
        {"role": "system", "content": render(prompts.structure_system, schema=schema.text)},
        {"role": "user", "content": render(prompts.structure_user, text=source)},
    ]
    replies: list[ChatReply] = []
    reason = ""
    for _ in range(2):
        reply = await client.chat(messages, task="structure", item=page.ref.id, json_mode=json_mode)
        replies.append(reply)
        try:
            record, dropped = schema.clean(parse_json_object(reply.content))
        except OutputInvalid as exc:
            reason = str(exc)
            messages = [
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
            repaired=len(replies) > 1,
            dropped_keys=[k[:50] for k in dropped[:10]],
        )
        return page
    raise LlmOutputError(
        f"LLM structure output for item {page.ref.id!r} is invalid after one repair attempt: "
        f"{reason}",
        cause="invalid_output",
        attempts=sum(r.attempts for r in replies),
    )


@dataclass(frozen=True, slots=True)
class LlmStages:
    """
    The three stage functions bound to one client, prompts and schema.

    Each takes a `Page` and returns it, ready to hand to a pipeline stage.
    """

    correct: Callable[[Page], Awaitable[Page]]
    fix: Callable[[Page], Awaitable[Page]]
    structure: Callable[[Page], Awaitable[Page]]


def llm_stages(
    client: ChatModel,
    *,
    prompts_dir: str | Path | None = None,
    schema_path: str | Path | None = None,
    json_mode: bool = True,
) -> LlmStages:
    """
    Load prompts and schema, and bind the three stages to ``client``.

    It reads files: call it at start-up, or through ``anyio.to_thread.run_sync``.

    Args:
        client: the chat model (an `LlmClient`, usually shared by all three stages).
        prompts_dir: a folder of prompt overrides (see `Prompts.load`).
        schema_path: the schema file (default: the shipped ``receipt.json``).
        json_mode: see `structure`.

    Returns:
        The bound stages.

    Raises:
        ConfigError: the prompts or the schema cannot be used.
    """
    prompts = Prompts.load(prompts_dir)
    schema = Schema.load(schema_path)

    async def correct_page(page: Page) -> Page:
        return await correct(client, page, prompts=prompts)

    async def fix_page(page: Page) -> Page:
        return await fix(client, page, prompts=prompts)

    async def structure_page(page: Page) -> Page:
        return await structure(client, page, prompts=prompts, schema=schema, json_mode=json_mode)

    return LlmStages(correct=correct_page, fix=fix_page, structure=structure_page)
