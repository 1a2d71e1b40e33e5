"""A PDF page that draws its own text is read from the PDF; a scanned one is OCR-ed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from stages._page import Line, Page, PageRef
from stages.inputs import load_page
from stages.ocr import make_engine, ocr_page
from stages.pipeline import DocumentSettings, page_loader
from stages.preprocess import preprocess
from stages.testing.pdf import pdf_stream, raw_pdf, text_pdf

PROJECT = Path(__file__).resolve().parents[2]

#: An e-receipt: (text, x, top, size) in points on an 80 x 120 mm page.
RECEIPT = [
    ("KEDAI MAJU TRADING SDN BHD", 12, 14, 9),
    ("NO 5, JALAN MAJU 2,", 12, 28, 8),
    ("43000 KAJANG, SELANGOR", 12, 40, 8),
    ("DATE: 03/01/2018", 12, 60, 8),
    ("MINERAL WATER", 12, 80, 8),
    ("2.50", 180, 80, 8),
    ("TOTAL", 12, 100, 9),
    ("12.50", 180, 100, 9),
]
WIDTH, HEIGHT = 226.8, 340.2


def _ref(path: Path) -> PageRef:
    return PageRef(id=path.name, source=str(path), page=1, kind="pdf")


class _NoEngine:
    """An engine that fails if asked to read: the text layer must make it unneeded."""

    name = "none"

    def recognize(self, image: Any) -> Any:
        raise AssertionError("OCR ran on a page that carries its own text")


def _logo(text: str) -> np.ndarray:
    """A shop's name drawn in a picture, as a logo is: no text in the PDF for it."""
    logo = np.full((60, 620), 255, dtype=np.uint8)
    cv2.putText(logo, text, (8, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2, cv2.LINE_AA)
    return logo


class _Reads:
    """An engine that finds the same lines in every image it is given (one at the top
    left, unless told otherwise), and keeps the images."""

    name = "reads"

    def __init__(self) -> None:
        self.images: list[Any] = []
        #: What it finds, boxed in the page's pixels (the first image is cut at 0, 0).
        self.found = [Line("PICTURE", [0.0, 0.0, 20.0, 20.0], 0.9)]

    def recognize(self, image: Any) -> list[Line]:
        self.images.append(image)
        return list(self.found)


class TestTextLayer:
    def test_lines_come_from_the_pdf_in_page_pixels(self, tmp_path: Path) -> None:
        """Every line is read exactly, boxed where it is drawn (200 dpi pixels), and OCR
        keeps them without running its engine."""
        path = text_pdf(tmp_path / "e.pdf", RECEIPT, WIDTH, HEIGHT)
        page = page_loader(DocumentSettings(malloc_tuning=False))(_ref(path))
        assert [line.text for line in page.lines] == [text for text, *_ in RECEIPT]
        assert page.notes["load"] == {"text_layer": len(RECEIPT)}
        for line, (_, x, top, size) in zip(page.lines, RECEIPT, strict=True):
            left, upper, _, lower = line.box
            assert left == pytest.approx(x * 200 / 72, abs=3)
            assert upper <= (top + size) * 200 / 72 and lower >= top * 200 / 72
        assert page.image is not None  # still rendered, for anything that wants pixels
        read = ocr_page(_NoEngine(), page)  # type: ignore[arg-type]
        assert read.image is None
        assert read.text.splitlines() == [text for text, *_ in RECEIPT]
        assert read.notes["ocr"]["engine"] == "pdf text"

    def test_a_hyphen_that_ends_a_line_is_kept(self, tmp_path: Path) -> None:
        """PDFium reports a line-ending hyphen as U+0002 (it takes the word as broken
        there); the line keeps the printed "-", and no control character."""
        drawn = [("NO 5, JALAN MA-", 12, 14, 8), ("JU 2, KAJANG", 12, 26, 8)]
        page = load_page(_ref(text_pdf(tmp_path / "h.pdf", drawn, WIDTH, HEIGHT)))
        assert [line.text for line in page.lines] == [text for text, *_ in drawn]

    @pytest.mark.parametrize("rotation", [0, 90, 180, 270])
    def test_boxes_lie_on_the_print_of_a_cropped_or_rotated_page(
        self, tmp_path: Path, rotation: int
    ) -> None:
        """The boxes are where the page's pixels hold the text: counted from the crop
        box's corner (not the PDF's origin), and on a page with its own rotation, which
        renders as its text runs. Text outside the crop box does not show."""
        document = pdfium.PdfDocument(text_pdf(tmp_path / "e.pdf", RECEIPT, WIDTH, HEIGHT))
        document[0].set_mediabox(10, 20, WIDTH, HEIGHT - 30)  # the top 30 pt cut away
        document[0].set_rotation(rotation)
        document.save(tmp_path / "cut.pdf")
        document.close()
        page = load_page(_ref(tmp_path / "cut.pdf"))
        assert page.image is not None
        upright = ((HEIGHT - 50) * 200 / 72, (WIDTH - 10) * 200 / 72)
        assert page.image.shape[:2] == pytest.approx(upright, abs=1)
        shown = [text for text, _, top, size in RECEIPT if top + size / 2 > 30]
        assert sorted(line.text for line in page.lines) == sorted(shown)
        ink = page.image.min(axis=2) < 128
        for line in page.lines:
            x0, y0, x1, y1 = (round(value) for value in line.box)
            inside = ink[max(0, y0) : y1, x0:x1].sum()
            assert inside > 0.9 * ink[max(0, y0 - 4) : y1 + 4, max(0, x0 - 4) : x1 + 4].sum() > 0

    def test_sideways_text_is_left_to_ocr(self, tmp_path: Path) -> None:
        """Text set sideways along the page (a landscape table on a portrait page) is not
        put in lines: past 5 % of the characters, OCR reads the page."""
        document = pdfium.PdfDocument(text_pdf(tmp_path / "e.pdf", RECEIPT, WIDTH, HEIGHT))
        page = document[0]
        for obj in page.get_objects():
            obj.transform(pdfium.PdfMatrix().rotate(90))
        page.gen_content()
        document.save(tmp_path / "sideways.pdf")
        document.close()
        assert load_page(_ref(tmp_path / "sideways.pdf")).lines == []

    def test_a_character_past_u_ffff_is_one_character(self, tmp_path: Path) -> None:
        """PDFium gives an emoji as two UTF-16 halves; the line holds the emoji, and the
        record can be written (a lone half made orjson fail the whole run)."""
        cmap = (
            b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def "
            b"1 begincodespacerange <00> <FF> endcodespacerange "
            b"1 beginbfchar <41> <D83DDE00> endbfchar endcmap "
            b"CMapName currentdict /CMap defineresource pop end end"
        )
        font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>"
        content = b"BT /F1 9 Tf 40 40 Td (THANK YOU ) Tj /F2 9 Tf (A) Tj ET"
        path = raw_pdf(
            tmp_path / "emoji.pdf",
            content,
            resources="/Font << /F2 5 0 R >>",
            objects=[font, pdf_stream(b"", cmap)],
        )
        (line,) = load_page(_ref(path)).lines
        assert line.text == "THANK YOU \U0001f600"
        orjson.dumps(line.to_json())

    def test_a_picture_in_a_form_is_placed_by_the_forms_matrix(self, tmp_path: Path) -> None:
        """A picture inside a form (pdfTeX's included graphics, a stamp) lies where the
        form puts it on the page: PDFium bounds it in the form's own space."""
        logo = _logo("KEDAI MAJU")[:, :400]
        image = pdf_stream(
            b"/Type /XObject /Subtype /Image /Width 400 /Height 60 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8",
            logo.tobytes(),
        )
        form = pdf_stream(
            b"/Type /XObject /Subtype /Form /BBox [0 0 150 30] "
            b"/Resources << /XObject << /Im1 6 0 R >> >>",
            b"q 150 0 0 22.5 0 0 cm /Im1 Do Q",
        )
        content = b"BT /F1 9 Tf 10 280 Td (TOTAL 12.50) Tj ET q 1 0 0 1 100 50 cm /Fm1 Do Q"
        path = raw_pdf(
            tmp_path / "form.pdf",
            content,
            resources="/XObject << /Fm1 5 0 R >>",
            objects=[form, image],
        )
        page = load_page(_ref(path))
        assert [line.text for line in page.lines] == ["TOTAL 12.50"]
        ((x0, y0, x1, y1),) = page.notes["load"]["pictures"]
        assert page.image is not None
        ink = np.argwhere(page.image.min(axis=2) < 128)
        below = ink[ink[:, 0] > 100]  # the logo's ink, not the total's
        assert x0 <= below[:, 1].min() and below[:, 1].max() <= x1
        assert y0 <= below[:, 0].min() and below[:, 0].max() <= y1
        assert (x0, y0) == pytest.approx((100 * 200 / 72, (300 - 50 - 22.5) * 200 / 72), abs=1)

    @pytest.mark.parametrize(
        ("media", "crop"),
        [((50, 50, 250, 250), (0, 0, 300, 300)), ((0, 0, 300, 300), (250, 250, 50, 50))],
    )
    def test_the_frame_is_what_pdfium_renders(
        self, tmp_path: Path, media: tuple[float, ...], crop: tuple[float, ...]
    ) -> None:
        """A crop box wider than the media box renders only the media box, and a box may
        name its corners in any order: the boxes still lie on the print."""
        content = b"BT /F1 12 Tf 60 200 Td (AT X60 Y200) Tj ET"
        path = raw_pdf(tmp_path / "c.pdf", content, media=media, crop=crop)  # type: ignore[arg-type]
        page = load_page(_ref(path))
        assert page.image is not None
        (line,) = page.lines
        ink = np.argwhere(page.image.min(axis=2) < 128)
        x0, y0, x1, y1 = line.box
        assert (ink[:, 1].min(), ink[:, 0].min()) == pytest.approx((x0, y0), abs=2)
        assert (ink[:, 1].max(), ink[:, 0].max()) == pytest.approx((x1, y1), abs=3)

    def test_a_pale_logo_is_not_cut_away_by_preprocess(self, tmp_path: Path) -> None:
        """The crop to the print sees no ink in a pale orange logo above the text, and
        cut it away: on a page whose text the PDF gives, the crop holds the pictures,
        and the picture is read, on a canvas of its own colour (no streaks from its
        edge)."""
        logo = np.full((60, 400, 3), (255, 255, 255), dtype=np.uint8)
        cv2.putText(logo, "KEDAI", (8, 42), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 170, 60), 3)
        lines = [(text, x, top + 60, size) for text, x, top, size in RECEIPT[1:]]
        path = text_pdf(
            tmp_path / "pale.pdf", lines, WIDTH, HEIGHT + 60, pictures=[(logo, 40, 8, 120)]
        )
        settings = DocumentSettings(malloc_tuning=False)
        page = preprocess(page_loader(settings)(_ref(path)), settings.preprocess)
        x0, y0, x1, y1 = page.notes["preprocess"]["crop"]
        (picture,) = page.notes["load"]["pictures"]
        assert x0 <= picture[0] and y0 <= picture[1] and x1 >= picture[2] and y1 >= picture[3]
        engine = _Reads()
        read = ocr_page(engine, page)  # type: ignore[arg-type]
        ((image),) = engine.images
        assert (image[60:, 400:] == 255).all()  # the canvas beyond the cut: the logo's white
        assert read.notes["ocr"]["pictures"] == 1

    def test_many_small_pictures_are_read_in_one_pass(self, tmp_path: Path) -> None:
        """Eight icons would each be read on a canvas as wide as the page: more pixels
        than the page, so the page is read once, its PDF lines painted over."""
        icon = np.zeros((40, 40), dtype=np.uint8)
        icons = [(icon, 20 + 20 * n, 300, 12) for n in range(8)]
        page = load_page(
            _ref(text_pdf(tmp_path / "icons.pdf", RECEIPT, WIDTH, HEIGHT, pictures=icons))
        )
        assert len(page.notes["load"]["pictures"]) == 8
        engine = _Reads()
        ocr_page(engine, page)  # type: ignore[arg-type]
        ((image),) = engine.images
        assert image.shape[:2] == (round(HEIGHT * 200 / 72), round(WIDTH * 200 / 72))

    def test_a_few_sideways_words_go_to_ocr(self, tmp_path: Path) -> None:
        """A word set sideways in the margin (under 5 % of the characters) is not put in
        lines, and its area is read by OCR; read turned, its text stands as one line."""
        lines = [
            *RECEIPT,
            *[(f"ITEM {n} MINERAL WATER 500ML", 12, 110 + 10 * n, 7) for n in range(8)],
        ]
        document = pdfium.PdfDocument(
            text_pdf(tmp_path / "e.pdf", [*lines, ("REF 77", 200, 300, 7)], WIDTH, HEIGHT)
        )
        page = document[0]
        (last,) = [obj for obj in page.get_objects() if obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT][-1:]
        x, y = 200, HEIGHT - 300
        last.transform(pdfium.PdfMatrix().translate(-x, -y).rotate(90).translate(x, y))
        page.gen_content()
        document.save(tmp_path / "side.pdf")
        document.close()
        loaded = load_page(_ref(tmp_path / "side.pdf"))
        assert "REF 77" not in loaded.text
        (area,) = loaded.notes["load"]["pictures"]
        engine = _Reads()
        engine.last_turns = 1  # type: ignore[attr-defined]
        engine.found = [
            Line("77", [0.0, 30.0, 20.0, 50.0], 0.9),
            Line("REF", [0.0, 0.0, 30.0, 20.0], 0.8),
        ]
        read = ocr_page(engine, loaded)  # type: ignore[arg-type]
        assert "REF 77" in read.text.splitlines()
        (found,) = [line for line in read.lines if line.text == "REF 77"]
        assert found.box == pytest.approx(area, abs=10)

    def test_an_opaque_box_over_text_hides_it(self, tmp_path: Path) -> None:
        """A white box drawn over text (a redaction) hides it; text drawn after the box,
        and text under the two rules of a table (one path, its bounds around the text),
        shows."""
        content = (
            b"BT /F1 10 Tf 20 200 Td (REDACTED NAME) Tj ET 1 g 10 190 200 30 re f "
            b"BT 0 g /F1 10 Tf 20 100 Td (TOTAL 12.50) Tj ET "
            b"BT /F1 10 Tf 20 60 Td (IN A TABLE) Tj ET 0 g 10 55 200 0.5 re 10 72 200 0.5 re f"
        )
        page = load_page(_ref(raw_pdf(tmp_path / "redacted.pdf", content)))
        assert [line.text for line in page.lines] == ["TOTAL 12.50", "IN A TABLE"]

    def test_lines_come_out_in_reading_order(self, tmp_path: Path) -> None:
        """A program may draw its text in any order (here bottom line first, each row's
        amount before its label): OCR's stage hands it on top to bottom, left to right."""
        drawn = [RECEIPT[7], RECEIPT[6], RECEIPT[5], RECEIPT[4], *RECEIPT[:4]]
        path = text_pdf(tmp_path / "e.pdf", drawn, WIDTH, HEIGHT)
        page = page_loader(DocumentSettings(malloc_tuning=False))(_ref(path))
        assert sorted(line.text for line in page.lines) == sorted(t for t, *_ in RECEIPT)
        read = ocr_page(_NoEngine(), page)  # type: ignore[arg-type]
        assert read.text.splitlines() == [text for text, *_ in RECEIPT]

    def test_scanned_and_invisible_text_is_left_to_ocr(self, tmp_path: Path) -> None:
        """A scanner's invisible OCR layer, a page holding a scan, and ``pdf_text=False``
        give no lines: OCR reads those pages."""
        invisible = text_pdf(tmp_path / "ocrd.pdf", RECEIPT, WIDTH, HEIGHT, invisible=True)
        assert load_page(_ref(invisible)).lines == []
        visible = text_pdf(tmp_path / "e.pdf", RECEIPT, WIDTH, HEIGHT)
        assert load_page(_ref(visible), pdf_text=False).lines == []
        assert load_page(_ref(visible)).lines  # the same page, with the default
        scan = np.full((1000, 700), 250, dtype=np.uint8)
        Image.fromarray(scan).save(tmp_path / "scan.pdf", "PDF", resolution=200.0)
        assert load_page(_ref(tmp_path / "scan.pdf")).lines == []

    def test_text_under_a_picture_is_left_to_ocr(self, tmp_path: Path) -> None:
        """Text a picture drawn after it covers (visible text under a scan) does not show:
        OCR reads the picture. Covered whole, the page is OCR-ed as a scan is."""

        def under(rows: int) -> Page:
            """The receipt under a picture as wide as the page, ``rows`` of 800 high."""
            picture = np.full((rows, 800), 245, dtype=np.uint8)
            path = text_pdf(
                tmp_path / f"{rows}.pdf",
                RECEIPT,
                WIDTH,
                HEIGHT,
                pictures=[(picture, 0, 0, WIDTH)],
                pictures_on_top=True,
            )
            return load_page(_ref(path))

        page = under(1200)
        assert page.lines == []
        assert "load" not in page.notes
        # A band over the first line only (25.5 pt high): the other lines come from the PDF.
        page = under(90)
        assert [line.text for line in page.lines] == [text for text, *_ in RECEIPT[1:]]
        assert page.notes["load"]["pictures"] == [
            pytest.approx([0, 0, WIDTH * 200 / 72, WIDTH * 90 / 800 * 200 / 72], abs=0.2)
        ]

    def test_text_over_a_picture_comes_from_the_pdf(self, tmp_path: Path) -> None:
        """Text drawn over a picture (an invoice on a letterhead image that fills the page)
        shows, and is the PDF's; the picture is still read, and what OCR reads on the
        PDF's lines is dropped. A logo on the letterhead is inside it: not read twice."""
        paper = np.full((1200, 800), 245, dtype=np.uint8)
        logo = _logo("KEDAI MAJU")
        drawn = [(paper, 0, 0, WIDTH), (logo, 12, 150, 160)]
        page = load_page(_ref(text_pdf(tmp_path / "l.pdf", RECEIPT, WIDTH, HEIGHT, pictures=drawn)))
        assert [line.text for line in page.lines] == [text for text, *_ in RECEIPT]
        (whole,) = page.notes["load"]["pictures"]
        assert whole == pytest.approx([0, 0, WIDTH * 200 / 72, WIDTH * 1.5 * 200 / 72], abs=0.2)
        # The page renders at the paper's 254 dpi: the engine's boxes are in those pixels.
        on_a_line = [value * page.scale for value in page.lines[3].box]  # DATE: 03/01/2018
        engine = _Reads()
        engine.found = [
            Line("DATE 03/01/2018", on_a_line, 0.9),
            Line("LOGO", [60.0, 530.0, 380.0, 580.0], 0.9),
        ]
        ink_at = [round(value * page.scale) for value in page.lines[3].box]
        read = ocr_page(engine, page)  # type: ignore[arg-type]
        assert len(engine.images) == 1
        # The PDF's lines are painted over in what OCR is given; the logo is not.
        ((image),) = engine.images
        x0, y0, x1, y1 = ink_at
        assert (image[y0:y1, x0:x1] > 200).all()
        assert (image[round(150 * 200 / 72) :, 40:400] < 128).any()
        assert [line.text for line in read.lines].count("LOGO") == 1
        assert "DATE 03/01/2018" not in read.text
        assert read.notes["ocr"]["pictures"] == 1

    def test_only_the_pictures_are_read(self, tmp_path: Path) -> None:
        """OCR is given each picture with a small margin, padded to the page's width (so
        the engine does not enlarge it), never the page; its lines join the PDF's in
        reading order, and a picture too thin to hold text is not read."""
        rule = np.zeros((2, 400), dtype=np.uint8)  # a 0.5 pt rule under the header
        path = text_pdf(
            tmp_path / "l.pdf",
            RECEIPT[1:],
            WIDTH,
            HEIGHT,
            pictures=[(_logo("KEDAI MAJU"), 12, 4, 160), (rule, 12, 50, 200)],
        )
        page = load_page(_ref(path))
        assert len(page.notes["load"]["pictures"]) == 1
        engine = _Reads()
        read = ocr_page(engine, page)  # type: ignore[arg-type]
        assert page.image is None
        ((image),) = engine.images
        assert image.shape[:2] == (round(WIDTH * 200 / 72),) * 2
        ink = np.argwhere(image.min(axis=2) < 128)
        wide, high = 160 * 200 / 72, 160 * 60 / 620 * 200 / 72  # the logo, in page pixels
        assert ink.max(axis=0)[1] < wide + 8 and ink.max(axis=0)[0] < high + 8
        assert (image[round(high) + 9 :, round(wide) + 9 :] == 255).all()  # the page's white
        assert read.text.splitlines() == ["PICTURE", *[text for text, *_ in RECEIPT[1:]]]
        assert read.notes["ocr"]["engine"] == "pdf text + reads"
        assert read.notes["ocr"]["pictures"] == 1

    def test_a_small_fine_picture_on_a_large_page_keeps_its_pixels(self, tmp_path: Path) -> None:
        """A 640-pixel picture an inch wide on an A0 page, which renders shrunk to 2000
        pixels (42 dpi), is rendered apart at its own resolution and read from that; the
        lines read come back in the page's pixels, inside the picture."""
        fine = np.full((200, 640), 255, dtype=np.uint8)
        cv2.putText(fine, "STAMP 7", (20, 130), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 0, 8)
        path = text_pdf(
            tmp_path / "a0.pdf",
            [("SHEET 7", 100, 100, 72)],
            2384,
            3370,
            pictures=[(fine, 1000, 1500, 72)],
        )
        page = page_loader(DocumentSettings(malloc_tuning=False))(_ref(path))
        assert page.image is not None and max(page.image.shape) == 2000
        (picture,) = page.notes["load"]["pictures"]
        assert picture[2] - picture[0] < 2000 / 3370 * 72 * 1.2 / page.scale
        (apart,) = page.picture_images
        assert apart.image.shape[1] >= 640  # its own pixels, not the page's 42 dpi
        assert apart.box[0] <= picture[0] and apart.box[2] >= picture[2]
        engine = _Reads()
        left, top = apart.image.shape[1] // 3, apart.image.shape[0] // 3
        engine.found = [Line("STAMP 7", [left, top, 2.0 * left, 2.0 * top], 0.9)]
        read = ocr_page(engine, page)  # type: ignore[arg-type]
        assert page.picture_images == []
        ((image),) = engine.images
        ink = np.argwhere(image.min(axis=2) < 128)
        drawn = np.argwhere(fine < 128)
        words = drawn.max(axis=0)[1] - drawn.min(axis=0)[1]
        # Rendered at 600 dpi (the cap on a scan's), the words are nearly as wide as drawn.
        assert ink.max(axis=0)[1] - ink.min(axis=0)[1] > 0.9 * words
        assert read.text.splitlines() == ["SHEET 7", "STAMP 7"]
        x0, y0, x1, y1 = read.lines[1].box
        assert picture[0] < x0 < x1 < picture[2] and picture[1] < y0 < y1 < picture[3]

    @pytest.mark.slow
    @pytest.mark.timeout(600)
    def test_a_small_fine_picture_on_a_large_page_is_read_by_ocr(self, tmp_path: Path) -> None:
        """A real engine reads the words of a fine picture an inch wide on an A0 page."""
        fine = np.full((200, 640), 255, dtype=np.uint8)
        cv2.putText(fine, "STAMP 7", (20, 130), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 0, 8)
        path = text_pdf(
            tmp_path / "a0.pdf",
            [("SHEET 7", 100, 100, 72)],
            2384,
            3370,
            pictures=[(fine, 1000, 1500, 72)],
        )
        settings = DocumentSettings(malloc_tuning=False)
        page = preprocess(page_loader(settings)(_ref(path)), settings.preprocess)
        engine = make_engine()
        try:
            read = ocr_page(engine, page)
        finally:
            engine.close()
        assert read.text.splitlines() == ["SHEET 7", "STAMP 7"]
        assert read.notes["ocr"]["pictures"] == 1

    @pytest.mark.slow
    @pytest.mark.timeout(600)
    def test_a_name_in_a_logo_is_read_by_ocr(self, tmp_path: Path) -> None:
        """An e-receipt whose shop name is a picture: a real engine reads the name from
        it, and the rest comes from the PDF exactly. The page is preprocessed as the
        pipeline does (cut to its print), so the picture is found in the cut page."""
        path = text_pdf(
            tmp_path / "l.pdf",
            RECEIPT[1:],
            WIDTH,
            HEIGHT,
            pictures=[(_logo(RECEIPT[0][0]), 12, 8, 160)],
        )
        settings = DocumentSettings(malloc_tuning=False)
        page = preprocess(page_loader(settings)(_ref(path)), settings.preprocess)
        assert page.notes["preprocess"].get("crop")  # the print is cut from the page
        engine = make_engine()
        try:
            read = ocr_page(engine, page)
        finally:
            engine.close()
        assert read.text.splitlines() == [text for text, *_ in RECEIPT]
        assert read.notes["ocr"]["pictures"] == 1
        name = read.lines[0]
        assert name.box[0] == pytest.approx(12 * 200 / 72, abs=8)
        assert name.box[1] == pytest.approx(8 * 200 / 72, abs=12)

    @pytest.mark.slow
    @pytest.mark.timeout(600)
    def test_cli_reads_an_e_receipt_exactly(self, tmp_path: Path) -> None:
        """Through ``asyncpipe run``: the e-receipt's fields and text are exact; with
        ``--no-pdf-text`` the same page goes through OCR."""
        path = text_pdf(tmp_path / "e.pdf", RECEIPT, WIDTH, HEIGHT)
        for flags, source in (((), "pdf"), (("--no-pdf-text",), None)):
            out = tmp_path / f"out{len(flags)}.jsonl"
            command = [sys.executable, "-m", "asyncpipe", "run", str(path), "--out", str(out)]
            done = subprocess.run(
                [*command, *flags], cwd=PROJECT, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr[-3000:]
            (record,) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
            assert record["status"] == "ok", orjson.dumps(record)
            assert record.get("text_from") == source
            if source == "pdf":
                assert record["text"].splitlines() == [text for text, *_ in RECEIPT]
                assert record["fields"]["date"] == "03/01/2018"
                assert record["fields"]["total"] == "12.50"
