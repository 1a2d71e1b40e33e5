"""
The document item that flows through the document stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt

__all__ = ["Line", "Page", "PageRef", "PictureImage", "centre_in", "utf8_text"]


def centre_in(box: Sequence[float], area: Sequence[float]) -> bool:
    """
    Whether the centre of ``box`` lies in ``area``, both ``[x0, y0, x1, y1]`` with
    ``x0 <= x1`` and ``y0 <= y1``: page pixels (y down) or PDF points (y up) alike, as long
    as both boxes use the same.
    """
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return area[0] <= x <= area[2] and area[1] <= y <= area[3]


def utf8_text(text: str) -> str:
    """
    A file's path or name as text that JSON can hold: the bytes of a name that is not
    UTF-8 (a Latin-1 or GBK name from a Windows zip or share, which Python holds as lone
    surrogates) written as ``\\xNN``; any other text unchanged.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class PageRef:
    """
    One page to process, found by input discovery; nothing is decoded yet.

    Attributes:
        id: stable item key: ``<path relative to its input root>#<page>@<content hash[:12]>``
            (the path as `utf8_text`).
        source: the input path as the user reached it (as `utf8_text` in ``to_json``).
        page: 1-based page number (1 for single-page images).
        kind: the content type found by sniffing bytes: ``jpeg``, ``png``, ``tiff``, ``pdf``,
            or ``unknown`` (loading it then fails with a clear reason).
        problem: a reason discovery already knows this page cannot be loaded, or ``None``.
        data: the file's bytes, when they travel with the page (to a worker that cannot
            read ``source``: see `stages.inputs.read_page`); ``None`` reads ``source``.
            Never journaled.
        receipt: ``(k, n)`` when the page holds ``n`` receipts side by side and this ref
            is the ``k``-th (1-based, in reading order); ``None`` for a page read whole.
        region: with ``receipt``, the receipt's part of the page as fractions of its
            width and height, ``(x0, y0, x1, y1)``; the load stage cuts it out.
        locked: the page is of an encrypted PDF that did not open (no password given, or
            none given opens it); ``problem`` says so.
        path: ``source``'s absolute path, as discovery found it (``None`` for a document
            piped in): a resume run from another directory matches inputs by it.
    """

    id: str
    source: str
    page: int
    kind: str
    problem: str | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)
    receipt: tuple[int, int] | None = None
    region: tuple[float, float, float, float] | None = None
    locked: bool = False
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-safe ref, without its bytes (``receipt`` and ``region``, and ``locked``,
        when set); a
        source that is not UTF-8 comes back from `from_json` as shown, which is enough once
        the page is read."""
        data: dict[str, Any] = {
            "id": self.id,
            "source": utf8_text(self.source),
            "page": self.page,
            "kind": self.kind,
            "problem": self.problem,
        }
        if self.receipt is not None and self.region is not None:
            data["receipt"] = list(self.receipt)
            data["region"] = list(self.region)
        if self.locked:
            data["locked"] = True
        if self.path is not None:
            data["path"] = utf8_text(self.path)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageRef:
        """The ref `to_json` wrote."""
        ref = cls(data["id"], data["source"], data["page"], data["kind"], data.get("problem"))
        if data.get("locked"):
            ref = replace(ref, locked=True)
        if data.get("path"):  # a checkpoint of an older version has none
            ref = replace(ref, path=data["path"])
        if data.get("receipt"):
            k, n = data["receipt"]
            x0, y0, x1, y1 = data["region"]
            ref = replace(
                ref, receipt=(int(k), int(n)), region=(float(x0), float(y0), float(x1), float(y1))
            )
        return ref


@dataclass(slots=True)
class Line:
    """
    One OCR text line: its text, its box ``[x1, y1, x2, y2]`` in page pixels, its confidence.

    ``quad``, when the engine's detector gave one, is the line's own four corners in the
    same pixels, ``[[x, y], ...]`` top-left, top-right, bottom-right, bottom-left
    (PP-OCR's order): on a curled or tilted page it says which way the line runs, which
    ``box`` cannot (see `stages._rows`). Lines from a PDF's text layer or a box file have
    none.
    """

    text: str
    box: list[float]
    confidence: float
    quad: list[list[float]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-safe line; ``quad`` only when it has one, so older readers still load it."""
        data: dict[str, Any] = {"text": self.text, "box": self.box, "confidence": self.confidence}
        if self.quad is not None:
            data["quad"] = self.quad
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Line:
        """The line `to_json` wrote (a line written before ``quad`` was kept has none)."""
        quad = data.get("quad")
        return cls(
            text=data["text"],
            box=list(data["box"]),
            confidence=float(data["confidence"]),
            quad=[[float(x), float(y)] for x, y in quad] if quad else None,
        )


@dataclass(frozen=True, slots=True)
class PictureImage:
    """
    A picture of a PDF page rendered apart, finer than its page: a small fine scan on a
    large page, which the page's own render shrinks past reading.

    Attributes:
        box: the area rendered, ``[x0, y0, x1, y1]`` in the pixels of the page as loaded
            (those of ``notes["load"]["pictures"]``).
        scale: the picture's pixels per pixel of ``box``.
        image: its BGR pixels.
    """

    box: list[float]
    scale: float
    image: npt.NDArray[np.uint8]


@dataclass(slots=True)
class Page:
    """
    A page as it moves through load → preprocess → ocr → correct → fix → structure.

    ``image`` holds pixels (uint8, gray or BGR) until OCR is done; OCR drops it, and
    ``picture_images`` (`PictureImage`) with it, so that checkpoints and memory stay
    small.  ``fallback_fields`` holds the offline rules' fields
    of a page whose LLM stage failed for good, so its error record loses nothing.
    """

    ref: PageRef
    image: npt.NDArray[np.uint8] | None = None
    scale: float = 1.0  # preprocess resize factor; OCR boxes are mapped back by it
    text: str = ""
    lines: list[Line] = field(default_factory=list)
    corrected: str | None = None
    fields: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    fallback_fields: dict[str, Any] | None = None
    picture_images: list[PictureImage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """
        The JSON-safe state of the page without its pixels (used for checkpoints).
        """
        return {
            "ref": self.ref.to_json(),
            "text": self.text,
            "lines": [line.to_json() for line in self.lines],
            "corrected": self.corrected,
            "fields": self.fields,
            "notes": self.notes,
            "fallback_fields": self.fallback_fields,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Page:
        return cls(
            ref=PageRef.from_json(data["ref"]),
            text=data["text"],
            lines=[Line.from_json(item) for item in data["lines"]],
            corrected=data["corrected"],
            fields=data["fields"],
            notes=dict(data.get("notes") or {}),
            fallback_fields=data.get("fallback_fields"),
        )
