"""
Generate the project's own sample documents and their ground truth into ``samples/``.

The receipts and the invoice are invented (Malaysian-style, like the SROIE receipts), drawn
with DejaVu fonts and then aged like a scan: uneven lighting, slight skew, blur, noise and
JPEG artifacts.  Everything is seeded, so a rerun gives the same pictures.

The outputs are committed; nobody needs to run this script to use them.  It needs the
DejaVu fonts (``fonts-dejavu-core`` on Debian; ``--fonts`` points elsewhere)::

    python scripts/make_samples.py            # writes samples/ and samples/truth.json
    python scripts/make_samples.py --check    # also reads them back with RapidOCR

``samples/truth.json`` maps each file name to a list of pages; each page has ``lines`` (every
text piece as drawn, top to bottom, left to right) and ``fields`` (``company``, ``date``,
``address``, ``total``, as printed, following the SROIE key conventions).
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["Doc", "Row", "build", "check", "main", "render", "scan"]

ROOT = Path(__file__).resolve().parents[1]
FONTS = Path("/usr/share/fonts/truetype/dejavu")
SEED = 20240611
STAMP = time.gmtime(1_537_531_200)  # 2018-09-21 12:00 UTC, written as the PDF's dates


@dataclass
class Row:
    """
    One printed line: up to three pieces (left, centre, right), one font.
    """

    left: str = ""
    center: str = ""
    right: str = ""
    size: int = 22
    bold: bool = False
    gap: int = 6  # extra space after the row, in pixels


@dataclass
class Doc:
    """
    One page to draw, with its extraction truth.
    """

    name: str
    width: int
    rows: list[Row]
    fields: dict[str, str]
    mono: bool = True
    margin: int = 36
    min_height: int = 0  # pad short pages, e.g. an invoice to A4 proportions
    skew: float = 1.5
    blur: float = 0.85
    noise: float = 7.0
    tint: tuple[int, int, int] | None = None
    lines: list[str] = field(default_factory=list)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"


def _receipt(
    *,
    name: str,
    company: str,
    regno: str,
    address: list[str],
    gst_id: str,
    date: str,
    time: str,
    doc_no: str,
    items: list[tuple[str, int, str]],
    cash: str,
    width: int,
    mono: bool = True,
    gst: bool = True,
    size: int = 22,
    footer: str = "THANK YOU. PLEASE COME AGAIN.",
    **look: Any,
) -> Doc:
    """
    A till receipt: header, items, SUBTOTAL, GST 6%, ROUNDING (to 5 sen), TOTAL, CASH, CHANGE.
    """
    rows = [Row(center=company, size=size + 4, bold=True, gap=2)]
    rows.append(Row(center=f"({regno})", size=size - 2))
    rows += [Row(center=line, size=size - 1, gap=2) for line in address]
    if gst:
        rows.append(Row(center=f"GST ID NO : {gst_id}", size=size - 2, gap=14))
        rows.append(Row(center="TAX INVOICE", size=size + 1, bold=True, gap=12))
    else:
        rows.append(Row(center="RECEIPT", size=size + 1, bold=True, gap=12))
    rows.append(Row(left=f"DOC NO: {doc_no}", right=f"DATE: {date}", size=size - 2, gap=2))
    rows.append(Row(left="CASHIER: 01", right=f"TIME: {time}", size=size - 2, gap=12))
    rows.append(Row(left="ITEM", right="AMOUNT", size=size - 1, bold=True))
    subtotal = Decimal(0)
    for label, qty, price in items:
        amount = Decimal(price) * qty
        subtotal += amount
        rows.append(Row(left=label, size=size - 1, gap=0))
        rows.append(Row(left=f"  {qty} x {price}", right=_money(amount), size=size - 1))
    tax = (subtotal * Decimal("0.06")).quantize(Decimal("0.01"), ROUND_HALF_UP) if gst else 0
    gross = subtotal + tax
    total = (gross * 20).quantize(Decimal(1), ROUND_HALF_UP) / 20  # Malaysian 5-sen rounding
    rounding = total - gross
    rows.append(Row(gap=4))
    rows.append(Row(left="SUBTOTAL", right=_money(subtotal), size=size))
    if gst:
        rows.append(Row(left="GST 6%", right=_money(Decimal(tax)), size=size))
    rows.append(Row(left="ROUNDING", right=_money(rounding), size=size))
    rows.append(Row(left="TOTAL", right=_money(total), size=size + 3, bold=True, gap=10))
    rows.append(Row(left="CASH", right=cash, size=size))
    rows.append(Row(left="CHANGE", right=_money(Decimal(cash) - total), size=size, gap=18))
    rows.append(Row(center=footer, size=size - 2))
    fields = {
        "company": company,
        "date": date,
        "address": " ".join(address),
        "total": _money(total),
    }
    return Doc(name=name, width=width, rows=rows, fields=fields, mono=mono, **look)


def _invoice(
    *,
    name: str,
    company: str,
    regno: str,
    address: list[str],
    gst_id: str,
    date: str,
    number: str,
    customer: list[str],
    items: list[tuple[str, int, str]],
    width: int,
    **look: Any,
) -> Doc:
    """
    A supplier's tax invoice on a wide page: letterhead, bill-to block, item table, totals.
    """
    rows = [Row(left=company, size=34, bold=True, gap=2), Row(left=f"CO. REG. {regno}", size=20)]
    rows += [Row(left=line, size=21, gap=2) for line in address]
    rows.append(Row(left=f"GST REG NO: {gst_id}", size=20, gap=24))
    rows.append(Row(center="TAX INVOICE", size=30, bold=True, gap=20))
    rows.append(Row(left="BILL TO:", right=f"INVOICE NO: {number}", size=21, bold=True, gap=2))
    rows.append(Row(left=customer[0], right=f"DATE: {date}", size=21, gap=2))
    rows += [Row(left=line, size=21, gap=2) for line in customer[1:]]
    rows.append(Row(gap=20))
    rows.append(Row(left="DESCRIPTION", center="QTY  UNIT PRICE", right="AMOUNT (RM)", bold=True))
    subtotal = Decimal(0)
    for label, qty, price in items:
        amount = Decimal(price) * qty
        subtotal += amount
        rows.append(Row(left=label, center=f"{qty}  x  {price}", right=_money(amount), size=21))
    tax = (subtotal * Decimal("0.06")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    total = subtotal + tax
    rows.append(Row(gap=16))
    rows.append(Row(left="SUBTOTAL", right=_money(subtotal), size=22))
    rows.append(Row(left="GST @ 6%", right=_money(tax), size=22))
    rows.append(Row(left="TOTAL AMOUNT PAYABLE", right=_money(total), size=24, bold=True, gap=30))
    rows.append(Row(left="PAYMENT TERMS: 30 DAYS. CHEQUES PAYABLE TO " + company, size=18))
    rows.append(Row(left="THIS IS A COMPUTER GENERATED INVOICE. NO SIGNATURE REQUIRED.", size=18))
    fields = {
        "company": company,
        "date": date,
        "address": " ".join(address),
        "total": _money(total),
    }
    return Doc(
        name=name,
        width=width,
        rows=rows,
        fields=fields,
        mono=False,
        margin=70,
        min_height=round(width * 1.414),  # A4 portrait
        **look,
    )


def documents() -> dict[str, list[Doc]]:
    """
    The sample files and the pages each holds, in file order.
    """
    r1 = _receipt(
        name="r1",
        company="KEDAI RUNCIT AH SENG SDN BHD",
        regno="1023456-K",
        address=["NO. 12, JALAN MERANTI 3,", "TAMAN MERANTI JAYA,", "47120 PUCHONG, SELANGOR."],
        gst_id="001234567890",
        date="25/12/2018",
        time="10:42:17",
        doc_no="CS00012345",
        items=[
            ("MILO 3IN1 18X33G", 1, "16.90"),
            ("GARDENIA BREAD 400G", 2, "3.80"),
            ("F&N SWEETENED CONDENSED", 3, "3.35"),
            ("ADABI CURRY POWDER 250G", 1, "6.25"),
        ],
        cash="50.00",
        width=620,
        skew=1.4,
    )
    r2 = _receipt(
        name="r2",
        company="RESTORAN NASI KANDAR MAJU",
        regno="002345678-A",
        address=["LOT 5, JALAN SS 2/64,", "47300 PETALING JAYA."],
        gst_id="000987654321",
        date="03-01-2018",
        time="13:05",
        doc_no="T2-008812",
        items=[
            ("NASI KANDAR AYAM", 2, "9.50"),
            ("TEH TARIK", 2, "2.20"),
            ("ROTI CANAI", 3, "1.30"),
        ],
        cash="30.00",
        width=560,
        mono=False,
        size=21,
        skew=-2.2,
        tint=(248, 242, 226),
    )
    r3 = _receipt(
        name="r3",
        company="SYARIKAT PERKAKASAN LIM HARDWARE",
        regno="JM0123456-X",
        address=["NO. 7, JALAN PERMAS 10/2,", "BANDAR BARU PERMAS JAYA,", "81750 MASAI, JOHOR."],
        gst_id="002211334455",
        date="14 MAR 2018",
        time="16:27:45",
        doc_no="INV-55120",
        items=[
            ("PVC PIPE 1/2 INCH 10FT", 4, "7.90"),
            ("CABLE TIE 200MM (100PCS)", 1, "5.50"),
            ("WALL PLUG 6MM", 2, "1.20"),
            ("SCREWDRIVER SET 6PCS", 1, "24.00"),
            ("SILICONE SEALANT CLEAR", 2, "11.85"),
        ],
        cash="120.00",
        width=680,
        size=21,
        skew=2.6,
        noise=4.0,
    )
    r4 = _receipt(
        name="r4",
        company="FARMASI SIHAT SELALU",
        regno="SA0456789-P",
        address=["G-15, JALAN BUKIT BINTANG,", "55100 KUALA LUMPUR."],
        gst_id="",
        gst=False,
        date="2019-02-08",
        time="19:58",
        doc_no="R-000731",
        items=[
            ("PANADOL ACTIFAST 20S", 1, "11.90"),
            ("VITAMIN C 1000MG 30S", 1, "32.50"),
            ("FACE MASK 3PLY 50S", 2, "8.95"),
        ],
        cash="70.00",
        width=600,
        mono=False,
        size=22,
        skew=-1.2,
        footer="GOODS SOLD ARE NOT RETURNABLE",
    )
    r5 = _receipt(
        name="r5",
        company="KEDAI BUKU CAHAYA SDN BHD",
        regno="887766-T",
        address=["NO. 3, JALAN TUN ABDUL RAZAK,", "80000 JOHOR BAHRU, JOHOR."],
        gst_id="001122334455",
        date="07/06/2018",
        time="11:15:02",
        doc_no="CB-0456",
        items=[("BUKU LATIHAN A4 80MS", 5, "2.60"), ("PEN GEL BIRU 0.5", 4, "1.90")],
        cash="30.00",
        width=560,
        skew=1.8,
    )
    r6 = _receipt(
        name="r6",
        company="MYDIN MART BANGI",
        regno="123987-H",
        address=["LOT 1, JALAN P10/12,", "43650 BANDAR BARU BANGI."],
        gst_id="000555666777",
        date="29/11/2017",
        time="20:41:33",
        doc_no="MB77120",
        items=[("BERAS SUPER 5KG", 1, "17.99"), ("MINYAK MASAK 2KG", 1, "9.80")],
        cash="50.00",
        width=560,
        skew=-1.6,
        noise=3.0,
        blur=0.5,
    )
    r7 = _receipt(
        name="r7",
        company="99 SPEEDMART SDN BHD",
        regno="519537-X",
        address=["NO. 20, JALAN KENARI 5,", "BANDAR PUCHONG JAYA,", "47100 PUCHONG."],
        gst_id="000181747712",
        date="16/08/2018",
        time="08:02:11",
        doc_no="1632-4501",
        items=[("MAGGI KARI 5X79G", 2, "4.65"), ("DUTCH LADY UHT 1L", 3, "5.99")],
        cash="40.00",
        width=560,
        mono=False,
        skew=2.0,
        noise=3.0,
        blur=0.5,
    )
    inv = _invoice(
        name="inv",
        company="TECHNOSUPPLY TRADING SDN BHD",
        regno="(1187345-D)",
        address=["NO. 28, JALAN USJ 10/1D,", "47620 SUBANG JAYA, SELANGOR."],
        gst_id="001987654321",
        date="21/09/2018",
        number="TS-2018-0921",
        customer=["ALPHA LOGISTICS SDN BHD", "NO. 5, JALAN PELABUHAN,", "42000 PORT KLANG."],
        items=[
            ("A4 PAPER 80GSM (5 REAMS)", 4, "52.00"),
            ("TONER CARTRIDGE HP 85A", 2, "189.00"),
            ("USB FLASH DRIVE 32GB", 5, "24.90"),
        ],
        width=1100,
        skew=-1.0,
    )
    inv2 = _invoice(
        name="inv2",
        company="GLOBAL OFFICE SOLUTIONS SDN BHD",
        regno="(654321-M)",
        address=["SUITE 8-2, MENARA KLH,", "JALAN PUDU, 55100 KUALA LUMPUR."],
        gst_id="000765432109",
        date="02/05/2018",
        number="GOS/18/0502",
        customer=["PERNIAGAAN SRI MAJU", "NO. 9, JALAN BESAR,", "43000 KAJANG."],
        items=[
            ("OFFICE CHAIR MESH", 2, "259.00"),
            ("FILING CABINET 4 DRAWER", 1, "420.00"),
        ],
        width=1100,
        skew=1.2,
    )
    return {
        "receipt_kedai_runcit.jpg": [r1],
        "receipt_restoran.jpg": [r2],
        "receipt_hardware.png": [r3],
        "receipt_farmasi.jpg": [r4],
        "invoice_technosupply.jpg": [inv],
        "bundle_invoice_and_receipt.pdf": [inv2, r5],
        "scans_two_receipts.tif": [r6, r7],
    }


def _font(mono: bool, bold: bool, size: int, fonts: Path) -> ImageFont.FreeTypeFont:
    family = "DejaVuSansMono" if mono else "DejaVuSans"
    return ImageFont.truetype(str(fonts / f"{family}{'-Bold' if bold else ''}.ttf"), size)


def render(doc: Doc, fonts: Path) -> Image.Image:
    """
    Draw a page cleanly (black on white, mode ``L``) and fill ``doc.lines`` with its text.

    Args:
        doc: the page.
        fonts: the folder holding the DejaVu ``.ttf`` files.

    Returns:
        The clean page.
    """
    doc.lines = []
    placed: list[tuple[int, str, int, ImageFont.FreeTypeFont]] = []  # (y, text, x, font)
    y = doc.margin
    for row in doc.rows:
        font = _font(doc.mono, row.bold, row.size, fonts)
        height = int(row.size * 1.3)
        if row.left:
            indent = len(row.left) - len(row.left.lstrip(" "))
            x = doc.margin + int(font.getlength(" " * indent))
            placed.append((y, row.left.lstrip(" "), x, font))
        if row.center:
            x = (doc.width - int(font.getlength(row.center))) // 2
            placed.append((y, row.center, x, font))
        if row.right:
            x = doc.width - doc.margin - int(font.getlength(row.right))
            placed.append((y, row.right, x, font))
        for piece in (row.left, row.center, row.right):
            if piece.strip():
                doc.lines.append(piece.strip())
        y += height + row.gap
    image = Image.new("L", (doc.width, max(y + doc.margin, doc.min_height)), 255)
    draw = ImageDraw.Draw(image)
    for top, text, x, font in placed:
        draw.text((x, top), text, font=font, fill=0)
    return image


def scan(clean: Image.Image, doc: Doc, rng: np.random.Generator) -> Image.Image:
    """
    Age a clean page like a cheap scan: skew, blur, uneven light, paper tint, ink and noise.

    The strengths are mild on purpose: RapidOCR must still read over 90% of the characters
    (``--check``).  The numbers were tuned by eye, not measured against real scanners.
    """
    ink = rng.uniform(25, 55)
    rotated = clean.rotate(doc.skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    blurred = rotated.filter(ImageFilter.GaussianBlur(doc.blur))
    page = np.asarray(blurred, dtype=np.float64) / 255.0  # 1 = paper, 0 = ink
    height, width = page.shape
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    light = 1.0 - 0.10 * ((yy - cy) ** 2 + (xx - cx) ** 2) / (height**2 + width**2)
    light -= 0.04 * xx / width  # one side a little darker, as under a lid that is not flat
    paper = 244.0 * light
    gray = ink + (paper - ink) * page
    gray += rng.normal(0.0, doc.noise, size=gray.shape)
    specks = rng.random(gray.shape) < 0.0004
    gray[specks] = rng.uniform(60, 160, size=int(specks.sum()))
    gray = np.clip(gray, 0, 255).astype(np.uint8)
    image = Image.fromarray(gray, mode="L")
    if doc.tint is None:
        return image
    tint = np.asarray(doc.tint, dtype=np.float64) / 255.0
    rgb = np.asarray(image, dtype=np.float64)[:, :, None] * tint[None, None, :]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")


def _jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    """
    Bake JPEG artifacts into a page that is then stored in another format.
    """
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as reopened:
        return reopened.copy()


def build(out: Path, fonts: Path) -> dict[str, list[dict[str, Any]]]:
    """
    Write every sample file into ``out`` and return the truth written to ``truth.json``.

    Args:
        out: the samples folder.
        fonts: the folder holding the DejaVu ``.ttf`` files.

    Returns:
        The truth: file name → list of pages with ``lines`` and ``fields``.
    """
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[dict[str, Any]]] = {}
    for filename, docs in documents().items():
        pages = [scan(render(doc, fonts), doc, rng) for doc in docs]
        target = out / filename
        suffix = target.suffix
        if suffix == ".jpg":
            pages[0].save(target, "JPEG", quality=72, optimize=True)
        elif suffix == ".png":
            # A PNG of a noisy scan is large; quantizing to 16 grays keeps it small.
            small = _jpeg_round_trip(pages[0], 80).quantize(16, dither=Image.Dither.NONE)
            small.convert("L").save(target, "PNG", optimize=True)
        elif suffix == ".pdf":
            # Pillow stores each page as a JPEG (DCTDecode) image at 150 dpi; each page
            # keeps its own size, as in a real scanned bundle.
            pages[0].save(
                target,
                "PDF",
                save_all=True,
                append_images=pages[1:],
                resolution=150.0,
                quality=72,
                # Fixed dates: Pillow would write "now", and reruns must be byte-identical.
                creationDate=STAMP,
                modDate=STAMP,
            )
        elif suffix == ".tif":
            # A fax-like bilevel multi-page TIFF (CCITT Group 4), as office scanners make.
            bilevel = [
                page.convert("L").point(lambda v: 255 if v > 150 else 0, "1") for page in pages
            ]
            bilevel[0].save(
                target,
                "TIFF",
                save_all=True,
                append_images=bilevel[1:],
                compression="group4",
                dpi=(150, 150),
            )
        else:  # pragma: no cover - a typo in documents()
            raise ValueError(f"unknown sample type {suffix}")
        truth[filename] = [{"lines": doc.lines, "fields": doc.fields} for doc in docs]
    (out / "truth.json").write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n")
    return truth


def _page_images(path: Path) -> list[np.ndarray[Any, Any]]:
    if path.suffix == ".pdf":
        import pypdfium2 as pdfium

        document = pdfium.PdfDocument(path)
        try:
            return [
                np.array(document[index].render(scale=150 / 72).to_numpy())
                for index in range(len(document))
            ]
        finally:
            document.close()
    with Image.open(path) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB"))[:, :, ::-1].copy())
        return frames


def check(out: Path, truth: dict[str, list[dict[str, Any]]]) -> float:
    """
    Read every sample page with RapidOCR and print how much of the truth it finds.

    The score of a page is the share of truth characters (spaces ignored) found by OCR:
    each truth line, longest first, is matched with the OCR line sharing the most characters
    with it (each OCR line used once), so the reading order of a skewed page does not matter.

    Returns:
        The lowest page score.
    """
    from rapidocr import RapidOCR

    engine = RapidOCR()
    worst = 1.0
    for filename, pages in truth.items():
        for number, (image, page) in enumerate(
            zip(_page_images(out / filename), pages, strict=True), start=1
        ):
            result = engine(image)
            found = [_squash(str(text)) for text in (getattr(result, "txts", None) or ())]
            # Longest lines first, so a short line cannot take a long line's partner.
            wanted = sorted((_squash(line) for line in page["lines"]), key=len, reverse=True)
            matched = 0
            for line in wanted:
                scores = [_common(line, text) for text in found]
                if scores:
                    best = max(range(len(scores)), key=scores.__getitem__)
                    matched += scores[best]
                    found.pop(best)
            score = matched / sum(len(line) for line in wanted)
            worst = min(worst, score)
            print(f"{filename} page {number}: {score:.1%} of the truth characters read")
    return worst


def _squash(text: str) -> str:
    return text.replace(" ", "").replace("\u00d7", "x")


def _common(left: str, right: str) -> int:
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks())


def main(argv: list[str] | None = None) -> int:
    """
    Command line entry point: generate, and with ``--check`` verify with RapidOCR.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "samples")
    parser.add_argument("--fonts", type=Path, default=FONTS)
    parser.add_argument("--check", action="store_true", help="read the samples with RapidOCR")
    args = parser.parse_args(argv)
    truth = build(args.out, args.fonts)
    total = sum(path.stat().st_size for path in args.out.iterdir())
    print(f"wrote {len(truth)} files to {args.out} ({total / 1e6:.2f} MB)")
    if args.check:
        worst = check(args.out, truth)
        if worst < 0.9:
            print(f"too noisy: the worst page scores {worst:.1%} (< 90%)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
