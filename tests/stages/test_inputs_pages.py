"""
Documents of many pages: the frames of a TIFF (classic or BigTIFF) and the pages of a
PDF, found one by one (damaged, empty or encrypted ones said so), and PDF pages rendered.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from corpus import bigtiff, blank_pdf, encrypted_pdf, receipt_images
from inputfiles import one_page, receipt_pdf, receipt_tiff

from stages._page import PageRef
from stages.inputs import InputError, discover, load_page


class TestDiscoverMultiPage:
    """TIFF frames and PDF pages."""

    def test_tiff_pages(self, sroie: Path, tmp_path: Path) -> None:
        """A 3-frame TIFF yields pages 1..3 with one content hash."""
        tiff = receipt_tiff(sroie, tmp_path / "stack.tif", 3)
        refs = list(discover([tiff]))
        assert [(ref.page, ref.kind) for ref in refs] == [(1, "tiff"), (2, "tiff"), (3, "tiff")]
        assert len({ref.id.split("@")[1] for ref in refs}) == 1
        assert [ref.id.split("@")[0] for ref in refs] == [f"stack.tif#{n}" for n in (1, 2, 3)]

    def test_bigtiff_pages(self, sroie: Path, tmp_path: Path) -> None:
        """A two-page BigTIFF (64-bit offsets) is a TIFF whose pages are the receipts it
        holds; it was "not a JPEG, PNG, TIFF ... file".  Cut inside its first page, whose
        one strip holds all its rows, it says the file ends there."""
        first, second = receipt_images(sroie, 2)
        big = tmp_path / "big.tif"
        first.save(big, "TIFF", big_tiff=True, save_all=True, append_images=[second])
        assert big.read_bytes()[:4] == b"II+\x00"
        refs = list(discover([big]))
        assert [(ref.page, ref.kind, ref.problem) for ref in refs] == [
            (1, "tiff", None),
            (2, "tiff", None),
        ]
        for ref, receipt in zip(refs, (first, second), strict=True):
            image = load_page(ref).image
            assert image is not None
            assert np.array_equal(image, np.asarray(receipt)[:, :, ::-1])
        cut = tmp_path / "cut.tif"
        cut.write_bytes(big.read_bytes()[:2000])
        damaged, *_ = discover([cut])
        assert damaged.kind == "tiff"
        with pytest.raises(
            InputError,
            match=r"cut\.tif: truncated TIFF: the file ends at byte 2000, inside the page's "
            rf"pixel data .* its first strip \(rows 1 to {first.height}\) did not arrive whole",
        ):
            load_page(damaged)

    def test_a_bigtiff_named_btf_is_found_in_a_folder(self, sroie: Path, tmp_path: Path) -> None:
        """``.btf`` is BigTIFF's own suffix, so a folder's BigTIFF named so is read."""
        (receipt,) = receipt_images(sroie, 1)
        receipt.save(tmp_path / "scan.btf", "TIFF", big_tiff=True)
        assert [(ref.source, ref.kind) for ref in discover([tmp_path])] == [
            (str(tmp_path / "scan.btf"), "tiff")
        ]

    def test_a_big_endian_bigtiff_says_how_to_read_it(self, sroie: Path, tmp_path: Path) -> None:
        """Pillow reads no big-endian BigTIFF (``MM+``), whole or cut: its error record says
        so and how to rewrite it, not "corrupt TIFF (Missing dimensions)"."""
        (receipt,) = receipt_images(sroie, 1)
        big = tmp_path / "big.tif"
        big.write_bytes(bigtiff([receipt], ">", 1, 64))
        (ref,) = discover([big])
        assert (ref.kind, ref.problem) == (
            "tiff",
            f"{big}: big-endian BigTIFF (MM+), which Pillow cannot read; write it "
            "little-endian, e.g. with libtiff's `tiffcp -L FILE COPY.tif`",
        )
        # The file is whole: libtiff reads it as written.
        pixels = cv2.imread(str(big))
        assert pixels is not None and np.array_equal(pixels[:, :, ::-1], np.asarray(receipt))

    def test_pdf_pages(self, sroie: Path, tmp_path: Path) -> None:
        """A 3-page PDF made of real receipts yields 3 refs."""
        pdf = receipt_pdf(sroie, tmp_path / "receipts.pdf", 3)
        refs = list(discover([pdf]))
        assert [(ref.page, ref.kind, ref.problem) for ref in refs] == [
            (1, "pdf", None),
            (2, "pdf", None),
            (3, "pdf", None),
        ]

    def test_corrupt_pdf(self, tmp_path: Path) -> None:
        """A PDF header followed by garbage is one problem ref."""
        bad = tmp_path / "bad.pdf"
        bad.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
        ref = one_page(list(discover([bad])))
        assert ref.kind == "pdf"
        assert ref.problem is not None
        assert ref.problem.startswith(f"{bad}: corrupt or unreadable PDF")
        with pytest.raises(InputError, match="corrupt or unreadable PDF"):
            load_page(ref)

    def test_a_pdf_cut_short_says_so(self, sroie: Path, tmp_path: Path) -> None:
        """A PDF that lost its end (its catalogue is there) says it looks truncated; one
        damaged inside says PDFium cannot parse it, in plain words (round 24's audit:
        both said "(Failed to load document (PDFium: Data format error).)")."""
        data = receipt_pdf(sroie, tmp_path / "two.pdf", 2).read_bytes()
        (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
        problem = one_page(list(discover([tmp_path / "cut.pdf"]))).problem
        assert problem == (
            f"{tmp_path / 'cut.pdf'}: corrupt or unreadable PDF: it does not end as a PDF "
            "does (no %%EOF), so it is truncated or not a whole PDF"
        )
        inside = tmp_path / "inside.pdf"
        inside.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")
        problem = one_page(list(discover([inside]))).problem
        assert problem == f"{inside}: corrupt or unreadable PDF: PDFium cannot parse it"

    def test_a_pdf_without_pages_says_so(self, tmp_path: Path) -> None:
        """A whole PDF whose page tree is empty says it has no pages (round 24's audit:
        PDFium refuses it as a data format error, so it said "PDFium cannot parse it")."""
        empty = tmp_path / "empty.pdf"
        body = [
            b"%PDF-1.4\n",
            b"1 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
            b"2 0 obj\n<< /Type /Catalog /Pages 1 0 R >>\nendobj\n",
        ]
        offsets = [sum(map(len, body[:i])) for i in (1, 2)]
        xref = b"xref\n0 3\n0000000000 65535 f \n" + b"".join(
            b"%010d 00000 n \n" % offset for offset in offsets
        )
        trailer = b"trailer\n<< /Size 3 /Root 2 0 R >>\nstartxref\n%d\n%%%%EOF\n" % sum(
            map(len, body)
        )
        empty.write_bytes(b"".join(body) + xref + trailer)
        ref = one_page(list(discover([empty])))
        assert ref.problem == f"{empty}: PDF has no pages (its page tree is empty)"

    def test_truncated_tiff(self, sroie: Path, tmp_path: Path) -> None:
        """A TIFF cut short before its directory is one problem ref."""
        tiff = receipt_tiff(sroie, tmp_path / "stack.tif", 2)
        data = tiff.read_bytes()
        cut = tmp_path / "cut.tif"
        cut.write_bytes(data[:64])
        ref = one_page(list(discover([cut])))
        assert ref.problem is not None
        assert str(cut) in ref.problem

    def testencrypted_pdf(self, tmp_path: Path) -> None:
        """A password-protected PDF is one ref saying so, and loading refuses it."""
        locked = encrypted_pdf(tmp_path / "locked.pdf")
        opened = pdfium.PdfDocument(locked, password="secret")  # the file really is valid
        try:
            assert len(opened) == 1
        finally:
            opened.close()
        ref = one_page(list(discover([locked])))
        assert ref.problem == (
            f"{locked}: encrypted PDF (password required; asyncpipe run --pdf-password-env "
            "names a variable holding it)"
        )
        with pytest.raises(InputError, match=r"locked\.pdf: encrypted PDF \(password required;"):
            load_page(ref)
        manual = PageRef("locked.pdf#1@000000000000", str(locked), 1, "pdf")
        with pytest.raises(InputError, match=r"encrypted PDF \(password required;"):
            load_page(manual)


class TestLoadPdf:
    """PDF rendering."""

    def test_blank_page_renders(self, tmp_path: Path) -> None:
        """A blank page is not an error: it renders white at the asked dpi."""
        ref = one_page(list(discover([blank_pdf(tmp_path / "blank.pdf")])))
        image = load_page(ref, pdf_dpi=72).image
        assert image is not None
        assert image.shape == (300, 200, 3)
        assert image.min() == 255
        default = load_page(ref).image
        assert default is not None
        assert default.shape[:2] == (math.ceil(300 * 200 / 72), math.ceil(200 * 200 / 72))

    def test_receipt_pages_render(self, sroie: Path, tmp_path: Path) -> None:
        """Each page of a PDF of real receipts renders with ink on it, at its own size."""
        refs = list(discover([receipt_pdf(sroie, tmp_path / "r.pdf", 2)]))
        images = [load_page(ref, pdf_dpi=150).image for ref in refs]
        sizes = [image.size for image in receipt_images(sroie, 2)]
        for image, (width, height) in zip(images, sizes, strict=True):
            assert image is not None
            assert image.dtype == np.uint8
            assert abs(image.shape[0] - height) <= 1
            assert abs(image.shape[1] - width) <= 1
            assert image.min() < 100

    def test_absurd_page_size(self, tmp_path: Path) -> None:
        """A 200x200 inch page at 200 dpi (1.6 Gpx) is refused before rendering."""
        ref = one_page(list(discover([blank_pdf(tmp_path / "huge.pdf", 14400, 14400)])))
        with pytest.raises(InputError, match=r"huge\.pdf: page 1 at 200 dpi is 40000x40000"):
            load_page(ref)
