"""
Several receipts laid side by side, or in columns, on a flatbed and scanned as one page,
and pages of print drawn from text, for tests and benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

__all__ = ["PAGE", "cafe_receipt", "drawn", "in_columns", "invoice", "note", "side_by_side"]

#: The flatbed's lid as a scan shows it: a white a little darker than fresh paper.
PAGE = 246


def side_by_side(
    images: Sequence[npt.NDArray[np.uint8]], gap: float = 0.08, stagger: int = 40
) -> tuple[npt.NDArray[np.uint8], list[tuple[int, int, int, int]]]:
    """
    ``images`` laid left to right on one white page, each lower than the one before.

    Args:
        images: uint8 BGR receipts as scanned.
        gap: the space between two receipts, and around them, as a fraction of the widest.
        stagger: how many pixels lower each receipt lies than the one before.

    Returns:
        The page, and where each receipt lies on it, ``(x0, y0, x1, y1)``.
    """
    return in_columns([[image] for image in images], gap, stagger)


def in_columns(
    columns: Sequence[Sequence[npt.NDArray[np.uint8]]], gap: float = 0.08, stagger: int = 40
) -> tuple[npt.NDArray[np.uint8], list[tuple[int, int, int, int]]]:
    """
    Receipts laid on one white page in columns, left to right, each column's one under
    the other (a flatbed filled with small receipts).

    Args:
        columns: uint8 BGR receipts as scanned, column by column, each top to bottom.
        gap: the space between two receipts, and around them, as a fraction of the widest.
        stagger: how many pixels lower each column starts than the one before.

    Returns:
        The page, and where each receipt lies on it, ``(x0, y0, x1, y1)``, column by
        column.
    """
    space = round(gap * max(image.shape[1] for column in columns for image in column))
    widths = [max(image.shape[1] for image in column) for column in columns]
    lengths = [sum(image.shape[0] + space for image in column) for column in columns]
    height = max(lengths) + space + stagger * (len(columns) - 1)
    page = np.full((height, sum(widths) + (len(columns) + 1) * space, 3), PAGE, np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    x = space
    for index, (column, width) in enumerate(zip(columns, widths, strict=True)):
        y = space + index * stagger
        for image in column:
            h, w = image.shape[:2]
            page[y : y + h, x : x + w] = image
            placed.append((x, y, x + w, y + h))
            y += h + space
        x += width + space
    return page, placed


def drawn(
    rows: Sequence[Sequence[tuple[int, str]]], width: int = 640, pitch: int = 30
) -> npt.NDArray[np.uint8]:
    """
    A printed page drawn from text: each row is a list of ``(x, text)``, drawn at ``x``
    pixels from the left in OpenCV's plain Hershey font, rows ``pitch`` pixels apart, on
    white paper ``width`` pixels wide (an empty row leaves a blank line).

    Args:
        rows: the page's rows, top to bottom.
        width: the page's width in pixels.
        pitch: the distance between two rows in pixels.

    Returns:
        uint8 BGR pixels.
    """
    page = np.full((pitch * (len(rows) + 2), width, 3), 255, np.uint8)
    for index, row in enumerate(rows, start=1):
        for x, text in row:
            cv2.putText(
                page,
                text,
                (x, index * pitch + pitch // 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (0, 0, 0),
                1,
                cv2.LINE_AA,
            )
    return page


_ITEMS = ["NASI LEMAK", "TEH TARIK", "ROTI CANAI", "MEE GORENG", "KOPI O", "MILO AIS", "MAGGI"]


def cafe_receipt(header: int = 250) -> npt.NDArray[np.uint8]:
    """
    A small receipt drawn: a short header at ``header`` pixels from the left, items at
    the left and their quantities and amounts far to the right, no rule across, so a
    blank band runs from top to bottom between the two.
    """
    rows: list[list[tuple[int, str]]] = [[(header, "KEDAI ALI")], [(header + 20, "KAJANG")], []]
    rows.append([(30, "14/03/24 12:41")])
    for index, item in enumerate(_ITEMS):
        rows.append(
            [(30, item), (400, f"{1 + index % 3} X 2.50"), (540, f"{2.5 * (1 + index % 3):6.2f}")]
        )
    rows += [[], [(30, "TOTAL"), (540, " 37.50")], [(30, "CASH"), (540, " 50.00")], []]
    rows.append([(header - 10, "TERIMA KASIH")])
    return drawn(rows)


def invoice() -> npt.NDArray[np.uint8]:
    """An invoice drawn: the seller at the left, bill-to and ship-to side by side, a table
    of four columns, no rules."""
    rows: list[list[tuple[int, str]]] = [
        [(40, "MAJU JAYA TRADING SDN BHD")],
        [(40, "12 JALAN 3, 43000 KAJANG")],
    ]
    rows += [[], [(40, "BILL TO"), (620, "SHIP TO")]]
    rows += [[(40, f"CUSTOMER LINE {n}"), (620, f"DELIVERY LINE {n}")] for n in range(1, 5)]
    rows += [[], [(40, "DESCRIPTION"), (620, "QTY"), (760, "PRICE"), (900, "AMOUNT")]]
    rows += [
        [(40, f"ITEM NUMBER {n} SUPPLY"), (620, str(n)), (760, "12.00"), (900, f"{12 * n:6.2f}")]
        for n in range(1, 16)
    ]
    rows += [[], [(620, "TOTAL"), (900, "1440.00")]]
    return drawn(rows, width=1100)


def note() -> npt.NDArray[np.uint8]:
    """Four lines written on a slip, as laid beside a receipt on the scanner."""
    lines = ["CLIENT LUNCH W/ TAN", "PROJECT ABC-12", "APPROVED - JS", "CLAIM 14/3"]
    return drawn([[(10, line)] for line in lines], width=320)
