"""
`llm_stages`: the three LLM stages bound to one client, prompts, schema and retry policy,
each tracking its pages' calls across the attempts the pipeline stage's `Retry` makes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from asyncpipe import Retry, RetryableError, StopIntake

from ._guard import DEFAULT_MIN_SIMILARITY, judge_edit
from ._prompts import Prompts
from ._schema import Schema
from ._stages import DEFAULT_RETRY, correct, fix, structure
from ._structured import StructuredOutputs
from ._types import CallState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Coroutine
    from pathlib import Path

    from stages._page import Page

    from ._types import ChatModel

__all__ = ["LlmStages", "llm_stages"]


@dataclass(frozen=True, slots=True)
class LlmStages:
    """
    The three stage functions bound to one client, prompts and schema.

    Each takes a `Page` and returns it, ready to hand to a pipeline stage whose ``retry``
    is `retry`: a retryable failure raises `LlmRetryableError`, and the stage's policy
    waits and calls again (the functions track each page's call across those attempts).

    Attributes:
        correct: the correct stage function.
        fix: the fix stage function.
        structure: the structure stage function.
        retry: the policy to give the three pipeline stages.
        structured: the run's structured-output mode (see `StructuredOutputs`).
        rejected: task → corrections the guard rejected so far.
        replaced: ``"field (reason)"`` → structure fields the field guard replaced by
            the offline rules' so far (empty, or not read from the page; see
            `ground_fields`).
        unfound: ``"field (reason)"`` → a custom schema's fields kept though the page's
            text does not hold them, so far (see `unfound_fields`).
    """

    correct: Callable[[Page], Coroutine[Any, Any, Page]]
    fix: Callable[[Page], Coroutine[Any, Any, Page]]
    structure: Callable[[Page], Coroutine[Any, Any, Page]]
    retry: Retry
    structured: StructuredOutputs
    rejected: Counter[str] = field(default_factory=Counter)
    replaced: Counter[str] = field(default_factory=Counter)
    unfound: Counter[str] = field(default_factory=Counter)

    def summary(self, used: Collection[str] = ("correct", "fix", "structure")) -> list[str]:
        """
        Args:
            used: the stages that called the LLM (the others ran their offline rules).

        Returns:
            Lines for the run summary: the structured-output mode and the fields the
            field guard replaced (and those it kept though not found, if any), when
            ``structure`` called the LLM, and the guard's
            rejections, when ``correct`` or ``fix`` did.
        """
        lines = []
        if "structure" in used:
            replaced = ", ".join(f"{k} {v}" for k, v in sorted(self.replaced.items())) or "none"
            lines += [
                self.structured.describe(),
                f"LLM fields replaced by the offline rules' by the field guard: {replaced}",
            ]
            if self.unfound:
                unfound = ", ".join(f"{k} {v}" for k, v in sorted(self.unfound.items()))
                lines.append(
                    f"LLM fields kept though not found in the text (llm.structure.unfound): "
                    f"{unfound}"
                )
        if {"correct", "fix"} & set(used):
            rejected = " ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
            lines.append(f"corrections rejected by the guard: {rejected}")
        return lines


class _Tracker:
    """
    Each page's call across the attempts the stage's `Retry` makes: the same `CallState`
    (deadline clock, attempt number, timeouts) and memo until it succeeds or fails for good.
    """

    def __init__(self, retry: Retry, fallback: Callable[[Page], dict[str, Any]] | None) -> None:
        self.retry = retry
        self.fallback = fallback
        self._open: dict[str, tuple[CallState, dict[str, Any]]] = {}

    def wrap(
        self, fn: Callable[[Page, CallState, dict[str, Any]], Awaitable[Page]]
    ) -> Callable[[Page], Coroutine[Any, Any, Page]]:
        async def run(page: Page) -> Page:
            key = page.ref.id
            entry = self._open.get(key)
            if entry is None:
                entry = self._open[key] = (CallState(deadline=self.retry.deadline), {})
            else:
                entry[0].attempt += 1
            state, memo = entry
            try:
                result = await fn(page, state, memo)
            except Exception as exc:
                again = isinstance(exc, RetryableError) and self.retry.should_retry(
                    exc, state.attempt
                )
                if not again:
                    del self._open[key]
                    if self.fallback is not None and not isinstance(exc, StopIntake):
                        # Nothing paid for is lost: the error record keeps these too (a
                        # page left for --resume has no record).
                        page.fallback_fields = await anyio.to_thread.run_sync(self.fallback, page)
                raise
            except BaseException:
                self._open.pop(key, None)
                raise
            del self._open[key]
            return result

        return run


def llm_stages(
    client: ChatModel,
    *,
    prompts_dir: str | Path | None = None,
    schema_path: str | Path | None = None,
    structured: str = "auto",
    retry: Retry = DEFAULT_RETRY,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    text_max_tokens: int | None = None,
    structure_max_tokens: int | None = None,
    fallback: Callable[[Page], dict[str, Any]] | None = None,
) -> LlmStages:
    """
    Load prompts and schema, and bind the three stages to ``client``.

    It reads files: call it at start-up, or through ``anyio.to_thread.run_sync``.

    Args:
        client: the chat model (an `LlmClient`, usually shared by all three stages).
        prompts_dir: a folder of prompt overrides (see `Prompts.load`).
        schema_path: the schema file (default: the shipped ``receipt.json``).
        structured: the structured-output mode (see `StructuredOutputs`).
        retry: the retry policy of the stages; its ``deadline`` bounds each call.
        min_similarity: the correction guard's threshold, 0-100.
        text_max_tokens: a fixed ``max_tokens`` for correct and fix (default: from the
            input's length, see `text_max_tokens`).
        structure_max_tokens: a fixed ``max_tokens`` for structure (default: from the
            schema).
        fallback: computes the offline fields of a page: those of a page whose LLM stage
            failed for good go to ``page.fallback_fields``, and the structure stage's
            field guard keeps them for the fields the model did not read from the page
            (run in a worker thread).

    Returns:
        The bound stages.

    Raises:
        ConfigError: the prompts, the schema or an option cannot be used.
    """
    prompts = Prompts.load(prompts_dir)
    schema = Schema.load(schema_path)
    modes = StructuredOutputs(structured, schema)
    judge_edit("x", "x", min_similarity=min_similarity)  # validates the threshold
    rejected: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    unfound: Counter[str] = Counter()

    def count(page: Page, task: str) -> None:
        if page.notes.get("llm", {}).get(task, {}).get("rejected"):
            rejected[task] += 1

    def edit(
        task: Callable[..., Awaitable[Page]], name: str
    ) -> Callable[[Page, CallState, dict[str, Any]], Awaitable[Page]]:
        async def edit_page(page: Page, call: CallState, memo: dict[str, Any]) -> Page:
            await task(
                client,
                page,
                prompts=prompts,
                call=call,
                min_similarity=min_similarity,
                max_tokens=text_max_tokens,
            )
            count(page, name)
            return page

        return edit_page

    correct_page, fix_page = edit(correct, "correct"), edit(fix, "fix")

    async def structure_page(page: Page, call: CallState, memo: dict[str, Any]) -> Page:
        await structure(
            client,
            page,
            prompts=prompts,
            schema=schema,
            structured=modes,
            call=call,
            max_tokens=structure_max_tokens,
            memo=memo,
            offline=fallback,
        )
        for name, reason in page.notes["llm"]["structure"].get("replaced", {}).items():
            replaced[f"{name} ({reason})"] += 1
        for name, reason in page.notes["llm"]["structure"].get("unfound", {}).items():
            unfound[f"{name} ({reason})"] += 1
        return page

    return LlmStages(
        correct=_Tracker(retry, fallback).wrap(correct_page),
        fix=_Tracker(retry, fallback).wrap(fix_page),
        structure=_Tracker(retry, fallback).wrap(structure_page),
        retry=retry,
        structured=modes,
        rejected=rejected,
        replaced=replaced,
        unfound=unfound,
    )
