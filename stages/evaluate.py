"""
Score a results file against ground truth: the bundled samples' ``truth.json``, or an
SROIE-style folder (``box/NNN.csv`` and ``key/NNN.json`` beside ``img/NNN.jpg``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncpipe import ConfigError

from ._page import Line
from .offline import (
    DEFAULT_FIELDS,
    character_error_rate,
    comparable_text,
    exact_match,
    miss_class,
    read_box_file,
    read_key_file,
    reading_order_text,
    text_similarity,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Accuracy", "Truth", "evaluate", "load_truth"]


@dataclass(frozen=True, slots=True)
class Truth:
    """
    The ground truth of one page: its text and its fields.
    """

    text: str
    fields: dict[str, str]


@dataclass
class Accuracy:
    """
    Accuracy over the pages that have ground truth.

    Attributes:
        pages: pages scored.
        cer_text: character error rate of the raw OCR text (edits / reference chars).
        cer_corrected: the same after correct and fix.
        fields: per field, ``(exact matches, pages with a ground-truth value)``; a match
            is the SROIE rule, the whole string after whitespace and case normalisation
            (:func:`~stages.offline.exact_match`).
        similarity: per field, the summed :func:`~stages.offline.text_similarity` of the
            extracted and the true value over the same pages (0 for a missing value); a
            diagnostic beside the exact figure, see :meth:`mean_similarity`.
        misses: per field, how many misses of each kind
            (:func:`~stages.offline.miss_class`: ``spaces only``, ``1-2 characters
            misread`` ...); exact matches are not counted here.
        split: pages with ground truth that discovery cut into several receipts: no
            record holds the page's fields, so they count as missed (kind ``split``);
            their text is not scored.
        unmatched: records whose page the ground truth does not hold (not scored).
        unmatched_example: the first of them, as ``file name, page``.
        truth: the pages the ground truth holds.
        missing: those of them no record matched (not scored), as ``file name, page``,
            in the ground truth's order: a page left out of the run, or named otherwise.
        errors: scored pages whose record is an error record (a stage failed for good).
        fallback: of them, those scored on the offline rules' fields the record keeps
            (``fallback_fields``), which the CSV holds too; the others count as missed.
    """

    pages: int = 0
    cer_text: float = 0.0
    cer_corrected: float = 0.0
    fields: dict[str, tuple[int, int]] = field(default_factory=dict)
    similarity: dict[str, float] = field(default_factory=dict)
    misses: dict[str, dict[str, int]] = field(default_factory=dict)
    split: int = 0
    unmatched: int = 0
    unmatched_example: str | None = None
    truth: int = 0
    missing: list[str] = field(default_factory=list)
    errors: int = 0
    fallback: int = 0

    def rate(self, name: str) -> float:
        """
        The exact-match rate of one field (0.0 when no page had a true value for it).
        """
        hits, total = self.fields.get(name, (0, 0))
        return hits / total if total else 0.0

    def mean_similarity(self, name: str) -> float:
        """
        The mean similarity of one field over the pages that have a true value for it.
        """
        total = self.fields.get(name, (0, 0))[1]
        return self.similarity.get(name, 0.0) / total if total else 0.0

    def lines(self) -> list[str]:
        """
        The report, one line per figure; with no page scored, one line that says why
        (there is no accuracy of nothing).
        """
        if not self.pages:
            n = self.unmatched
            seen = (
                f"none of the output's {n} record{'' if n == 1 else 's'} matches a page of "
                f"it by file name and page number (e.g. {self.unmatched_example})"
                if n
                else "the output holds no records"
            )
            return [f"no accuracy: no page with ground truth was scored: {seen}"]
        notes = []
        if self.split:
            notes.append(f"{self.split} cut into receipts: their fields missed")
        if self.errors:
            notes.append(
                f"{self.errors} error record(s), {self.fallback} of them scored on the "
                "offline fields kept in the record and the CSV"
            )
        said = f" ({'; '.join(notes)})" if notes else ""
        pages = f"{self.pages} {'page' if self.pages == 1 else 'pages'}"
        out = [
            f"accuracy over {pages} with ground truth{said}:",
            f"  OCR character accuracy {1 - self.cer_text:.3f} (CER {self.cer_text:.4f}); "
            f"after correct+fix {1 - self.cer_corrected:.3f} (CER {self.cer_corrected:.4f})",
        ]
        for name, (hits, total) in self.fields.items():
            out.append(
                f"  {name:<8} exact {hits}/{total} = {self.rate(name):.3f}"
                f"  (mean similarity {self.mean_similarity(name):.3f})"
            )
            kinds = self.misses.get(name, {})
            if kinds:
                out.append(
                    "           misses: "
                    + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
                )
        if self.missing:
            out.append(self._missing_line())
        return out

    def _missing_line(self) -> str:
        """The pages with ground truth that no record matched: how many, the first few."""
        n = len(self.missing)
        named = ", ".join(self.missing[:_NAMED])
        more = f", and {n - _NAMED} more" if n > _NAMED else ""
        return (
            f"{n} of the {self.truth} pages with ground truth {'has' if n == 1 else 'have'} "
            f"no page in the output (not scored): {named}{more}"
        )


#: How many pages with ground truth but no record the report names.
_NAMED = 5


def _in_reading_order(record: dict[str, Any]) -> tuple[str, str]:
    """
    The raw and corrected text of a record, both in the reading order of the reference.

    The corrected text keeps one line per OCR line unless fix joined some; then both
    texts are compared in the engine's line order instead, so the two always share one
    order and the comparison measures the text stages, not the ordering.
    """
    lines = [Line.from_json(line) for line in record.get("lines") or []]
    raw = record.get("text") or ""
    corrected = record.get("corrected") or ""
    fixed = corrected.split("\n")
    if not lines or len(fixed) != len(lines):
        return raw, corrected
    mapped = [replace(line, text=text) for text, line in zip(fixed, lines, strict=True)]
    return reading_order_text(lines), reading_order_text(mapped)


def load_truth(path: Path) -> dict[tuple[str, int], Truth]:
    """
    Ground truth by ``(file name, page)``, from a ``truth.json`` file or an SROIE folder.

    Raises:
        ConfigError: ``path`` is neither (a folder with no ``key/*.json``, such as an
            SROIE folder's ``img``; a file that is not a truth file), or holds no page.
    """
    if path.is_dir():
        truth = {}
        for key_file in sorted((path / "key").glob("*.json")):
            box = path / "box" / (key_file.stem + ".csv")
            lines: list[Line] = read_box_file(box) if box.exists() else []
            truth[(key_file.stem + ".jpg", 1)] = Truth(
                reading_order_text(lines), read_key_file(key_file)
            )
        if not truth:
            raise ConfigError(
                f"--truth {path}: not an SROIE-style folder: it has no key/NNN.json files "
                "(give the folder that holds img/, key/ and box/, or a truth.json file)"
            )
        return truth
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        loaded = {
            (str(name), number): Truth("\n".join(page["lines"]), dict(page["fields"]))
            for name, pages in data.items()
            for number, page in enumerate(pages, start=1)
        }
    except OSError as exc:
        raise ConfigError(f"--truth {path}: cannot read it: {exc.strerror or exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigError(
            f"--truth {path}: not a truth file: it must be JSON mapping each file name to "
            'its pages, each {"lines": [...], "fields": {...}} (as samples/truth.json)'
        ) from exc
    if not loaded:
        raise ConfigError(f"--truth {path}: it holds no page")
    return loaded


def evaluate(
    records: Iterable[dict[str, Any]],
    truth: dict[tuple[str, int], Truth],
    *,
    fields: tuple[str, ...] = tuple(DEFAULT_FIELDS),
) -> Accuracy:
    """
    Score output records (as written by the document pipeline) against ``truth``.

    ``records`` may be any iterable (a list, a generator reading a JSON-lines stream); it
    is consumed once, one record at a time, and nothing of it is kept.

    CER is summed over pages (total edits / total reference characters), comparing
    upper-cased text with whitespace runs collapsed.  The OCR and corrected texts are
    put in reading order from their line boxes first, as the reference is.  Fields are
    scored by exact match after whitespace and case normalisation (the SROIE rule),
    with the mean similarity beside it.  An error record is scored on the offline fields
    it keeps (``fallback_fields``) when it has no fields of its own, as the CSV holds
    them; `Accuracy.errors` and `Accuracy.fallback` count such pages.  The pages of
    ``truth`` no record matched are `Accuracy.missing`, which the report counts and names.
    """
    acc = Accuracy(
        fields={name: (0, 0) for name in fields},
        similarity={name: 0.0 for name in fields},
        truth=len(truth),
    )
    matched: set[tuple[str, int]] = set()
    ref_chars = edits_text = edits_corrected = 0.0
    for record in records:
        key = (Path(record.get("source") or "").name, record.get("page") or 1)
        expected = truth.get(key)
        if expected is None:
            acc.unmatched += 1
            if acc.unmatched_example is None:
                acc.unmatched_example = f"{key[0]!r} page {key[1]}"
            continue
        matched.add(key)
        receipt = record.get("receipt")
        if receipt:
            # A page the truth holds whole, cut into receipts: no record has its fields.
            if receipt.get("index") == 1:
                acc.pages += 1
                acc.split += 1
                for name in fields:
                    if str(expected.fields.get(name, "")).strip():
                        hits, total = acc.fields[name]
                        acc.fields[name] = (hits, total + 1)
                        counts = acc.misses.setdefault(name, {})
                        counts["split"] = counts.get("split", 0) + 1
            continue
        acc.pages += 1
        reference = comparable_text(expected.text)
        raw, corrected = _in_reading_order(record)
        ref_chars += len(reference)
        edits_text += character_error_rate(reference, comparable_text(raw)) * len(reference)
        edits_corrected += character_error_rate(reference, comparable_text(corrected)) * len(
            reference
        )
        predicted = record.get("fields") or {}
        if record.get("status") == "error":
            acc.errors += 1
            if not predicted and record.get("fallback_fields"):
                # What the output offers for the page, as the CSV writes it.
                predicted = record["fallback_fields"]
                acc.fallback += 1
        for name in fields:
            value = expected.fields.get(name, "")
            if not str(value).strip():
                continue
            got = predicted.get(name)
            hits, total = acc.fields[name]
            acc.fields[name] = (hits + exact_match(str(value), got), total + 1)
            kind = miss_class(str(value), got)
            if kind != "exact":
                counts = acc.misses.setdefault(name, {})
                counts[kind] = counts.get(kind, 0) + 1
            acc.similarity[name] += text_similarity(str(value), got) if got else 0.0
    acc.missing = [f"{name!r} page {page}" for name, page in truth if (name, page) not in matched]
    if ref_chars:
        acc.cer_text = edits_text / ref_chars
        acc.cer_corrected = edits_corrected / ref_chars
    return acc
