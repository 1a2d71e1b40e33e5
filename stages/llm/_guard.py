"""
The correction guard: ``correct`` and ``fix`` are edits, not rewrites.

A reply is accepted only if it is close to its input.  Closeness is rapidfuzz's
normalised Indel similarity (``fuzz.ratio``, 0-100) of the two texts with whitespace
squeezed, so that ``fix`` may join lines freely.  ``correct`` must also keep every line:
it may not return fewer non-empty lines than it was given.  An empty reply, or one cut
short (``finish_reason: "length"``: by ``max_tokens``, or by a full context, see
`ContextFull`), is never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidfuzz import fuzz

from asyncpipe import ConfigError

if TYPE_CHECKING:
    from ._types import Usage

__all__ = ["DEFAULT_MIN_SIMILARITY", "ContextFull", "Verdict", "context_full", "judge_edit"]

DEFAULT_MIN_SIMILARITY = 80.0
"""The similarity (0-100) below which a correction is a rewrite.

OCR repairs change a few characters per line: on the 40 SROIE transcripts the offline
corrector's edits (correct + fix) score at least 99.7, while unrelated prose of the same
length scores about 18.  80 leaves room for a model that also fixes spacing and case."""


class ContextFull(str):
    """
    The ``finish_reason`` of a reply cut short because the prompt and the reply filled
    the server's context, not because the reply reached ``max_tokens``: raising
    ``max_tokens`` cannot help, a larger context can.  It equals ``"length"``, as the
    server said, so whatever takes ``"length"`` for a cut reply still does; `judge_edit`
    and the client's statistics tell the two apart.

    Args:
        reason: what filled, and what to change, for the record and the messages.
    """

    reason: str

    def __new__(cls, reason: str) -> ContextFull:
        stop = super().__new__(cls, "length")
        stop.reason = reason
        return stop


def context_full(
    usage: Usage, max_tokens: int | None, *, context: int | None, slots: int | None
) -> ContextFull | None:
    """
    Whether a reply cut short (``finish_reason: "length"``) was cut by the context rather
    than by ``max_tokens``: its prompt and reply reached the ``context`` per slot the
    server told, or, when it told none, the reply is shorter than the ``max_tokens``
    sent.  Nothing is known without the reply's usage.

    Args:
        usage: the reply's tokens.
        max_tokens: the ``max_tokens`` sent, if any.
        context: the context per slot a llama.cpp server told, in tokens, if any.
        slots: its slots, if told.

    Returns:
        The stop, with its reason; ``None`` when it was ``max_tokens`` (or cannot be told).
    """
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if not completion:
        return None
    used = f"prompt {prompt} + reply {completion} tokens"
    if context is not None:
        if prompt + completion < context:
            return None
        shared = f", its {slots} slots share it" if slots is not None and slots > 1 else ""
        return ContextFull(
            f"context full: {used} filled the llama.cpp server's context of {context} "
            "tokens per slot (finish_reason: length); max_tokens cannot help: start the "
            f"server with a larger -c/--ctx-size{shared}"
        )
    if max_tokens is not None and completion < max_tokens:
        return ContextFull(
            f"context full: {used}, under max_tokens {max_tokens}, filled the model's "
            "context on the server (finish_reason: length); max_tokens cannot help: give "
            "the server a larger context (llama.cpp: -c/--ctx-size, shared by its slots; "
            "vLLM: --max-model-len; Ollama: num_ctx)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """
    Whether a correction is accepted.

    Attributes:
        accepted: keep the reply (else keep the input).
        similarity: the similarity of reply and input, 0-100 (0 for an empty reply).
        reason: why it was rejected, or ``None``.
    """

    accepted: bool
    similarity: float
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "rejected": not self.accepted,
            "similarity": round(self.similarity, 1),
            **({"reason": self.reason} if self.reason else {}),
        }


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def judge_edit(
    source: str,
    reply: str,
    *,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    keep_lines: bool = False,
    finish_reason: str | None = None,
) -> Verdict:
    """
    Judge a ``correct`` or ``fix`` reply against its input.

    Args:
        source: the text sent.
        reply: the text received (already stripped of fences and markers).
        min_similarity: the threshold, 0-100.
        keep_lines: also reject a reply with fewer non-empty lines than ``source``.
        finish_reason: the reply's ``finish_reason``; ``"length"`` is rejected, as cut by
            ``max_tokens`` unless it is a `ContextFull`.

    Returns:
        The verdict.

    Raises:
        ConfigError: the threshold is outside 0-100.
    """
    if not 0 <= min_similarity <= 100:
        raise ConfigError(f"the similarity threshold must be within 0-100, got {min_similarity}")
    if not reply.strip():
        return Verdict(False, 0.0, "empty reply")
    similarity = float(fuzz.ratio(_squeeze(source), _squeeze(reply)))
    if isinstance(finish_reason, ContextFull):
        return Verdict(False, similarity, finish_reason.reason)
    if finish_reason == "length":
        return Verdict(False, similarity, "cut by max_tokens (finish_reason: length)")
    if similarity < min_similarity:
        return Verdict(
            False, similarity, f"a rewrite: similarity {similarity:.1f} < {min_similarity:g}"
        )
    if keep_lines and _lines(reply) < _lines(source):
        return Verdict(
            False, similarity, f"dropped lines: {_lines(reply)} of {_lines(source)} kept"
        )
    return Verdict(True, similarity)
