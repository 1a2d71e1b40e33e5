"""
The correction guard: ``correct`` and ``fix`` are edits, not rewrites.

A reply is accepted only if it is close to its input.  Closeness is rapidfuzz's
normalised Indel similarity (``fuzz.ratio``, 0-100) of the two texts with whitespace
squeezed, so that ``fix`` may join lines freely.  ``correct`` must also keep every line:
it may not return fewer non-empty lines than it was given.  An empty reply, or one cut by
``max_tokens``, is never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from asyncpipe import ConfigError

__all__ = ["DEFAULT_MIN_SIMILARITY", "Verdict", "judge_edit"]

DEFAULT_MIN_SIMILARITY = 80.0
"""The similarity (0-100) below which a correction is a rewrite.

OCR repairs change a few characters per line: on the 40 SROIE transcripts the offline
corrector's edits (correct + fix) score at least 99.7, while unrelated prose of the same
length scores about 18.  80 leaves room for a model that also fixes spacing and case."""


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
        finish_reason: the reply's ``finish_reason``; ``"length"`` is rejected.

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
