"""
Several receipts on one scan: a page's refs, one per receipt, found before the page is
read (see :func:`stages._paper.find_receipts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from stages._page import PageRef
from stages._paper import find_receipts

from ._errors import InputError
from ._load import load_page

__all__ = ["FINDER_VERSION", "FIND_SIDE", "FIND_WHOLE_PIXELS", "receipts_of"]

#: Which way of finding receipts cut a run's scans: a run is resumed only by the same,
#: so its pages get the same ids (raise it when `find_receipts` cuts pages differently).
FINDER_VERSION = 2

#: The longest side the page is decoded at to look for receipts (JPEGs are decoded at
#: the smallest libjpeg scale that keeps it: an A4 page at 300 dpi at half size) ...
FIND_SIDE = 1600

#: ... unless it has at most this many pixels: a long receipt is decoded whole, or its
#: print, shrunk by its length, would be too small to look at.
FIND_WHOLE_PIXELS = 8_000_000

#: The kinds of page looked at. A PDF page is looked at when it is a scan: one that
#: shows text of its own is read whole (its lines and pictures lie on the whole page).
_KINDS = frozenset({"jpeg", "png", "tiff", "pdf", "heif", "webp", "bmp", "gif"})


def receipts_of(ref: PageRef, *, pdf_passwords: Sequence[str] = ()) -> list[PageRef]:
    """
    The refs of the receipts on one page: ``[ref]`` when it holds one (or cannot be read:
    the load stage then says why), else one ref per receipt, in reading order.

    A receipt's id is the page's with ``.k`` after the page number
    (``scans/a.jpg#1.2@<hash>``); its ``receipt`` is ``(k, n)`` and its ``region`` its
    part of the page as fractions of the page's size.

    This is blocking (it decodes the page, at :data:`FIND_SIDE` when it is large): run
    it in a worker
    thread, as discovery runs.

    Args:
        ref: a page found by discovery.
        pdf_passwords: the passwords to try on an encrypted PDF (see `load_page`).

    Returns:
        The page's refs.
    """
    if ref.problem is not None or ref.kind not in _KINDS or ref.receipt is not None:
        return [ref]
    try:
        page = load_page(
            ref, max_side=FIND_SIDE, whole_pixels=FIND_WHOLE_PIXELS, pdf_passwords=pdf_passwords
        )
    except InputError:
        return [ref]
    image = page.image
    if image is None or page.notes.get("load", {}).get("text_layer"):
        return [ref]
    boxes = find_receipts(image)
    if len(boxes) < 2:
        return [ref]
    h, w = image.shape[:2]
    name, _, digest = ref.id.rpartition("@")
    return [
        dataclasses.replace(
            ref,
            id=f"{name}.{k}@{digest}",
            receipt=(k, len(boxes)),
            region=(x0 / w, y0 / h, x1 / w, y1 / h),
        )
        for k, (x0, y0, x1, y1) in enumerate(boxes, start=1)
    ]
