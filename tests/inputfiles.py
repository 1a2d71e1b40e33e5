"""
Real input files made of SROIE receipts, for the tests of `stages.inputs`, and the one
page `stages.inputs.discover` finds in a file.
"""

from __future__ import annotations

from pathlib import Path

from corpus import receipt_images

from stages._page import PageRef

__all__ = ["copy_receipt", "one_page", "receipt_pdf", "receipt_tiff"]


def copy_receipt(sroie: Path, number: int, target: Path) -> Path:
    """Copy the SROIE receipt ``number`` (a JPEG) to ``target``, making its folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((sroie / "img" / f"{number:03d}.jpg").read_bytes())
    return target


def receipt_pdf(sroie: Path, target: Path, pages: int) -> Path:
    """Write a PDF of the first ``pages`` receipts at 150 dpi to ``target``."""
    first, *rest = receipt_images(sroie, pages)
    first.save(target, "PDF", save_all=True, append_images=rest, resolution=150.0)
    return target


def receipt_tiff(sroie: Path, target: Path, pages: int) -> Path:
    """Write a deflated TIFF of the first ``pages`` receipts, a frame each, to ``target``."""
    first, *rest = receipt_images(sroie, pages)
    first.save(target, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate")
    return target


def one_page(refs: list[PageRef]) -> PageRef:
    """The one page of ``refs``, asserting there is exactly one."""
    assert len(refs) == 1, refs
    return refs[0]
