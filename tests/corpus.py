"""
Generators of bad (and blank) input files for the bad-input tests; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
from PIL import Image

from stages._page import Line
from stages.offline import comparable_text
from stages.testing.pdf import pdf_file, pdf_stream

__all__ = [
    "blank_pdf",
    "bomb_png",
    "corrupt_pdf",
    "encrypted_pdf",
    "read_text",
    "receipt_bgr",
    "receipt_images",
]


def receipt_images(sroie: Path, count: int) -> list[Image.Image]:
    """The first ``count`` real receipts of the SROIE folder, decoded to RGB: the pages
    the damaged and multi-page files of the tests are made of."""
    images = []
    for number in range(count):
        with Image.open(sroie / "img" / f"{number:03d}.jpg") as image:
            images.append(image.convert("RGB"))
    return images


def receipt_bgr(sroie: Path, stem: str) -> npt.NDArray[np.uint8]:
    """The real receipt ``img/<stem>.jpg`` as OpenCV decodes it (BGR), as the OCR tests
    give it to an engine."""
    image = cv2.imread(str(sroie / "img" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def read_text(lines: Sequence[Line]) -> str:
    """What an engine read, as the scorer compares it (`comparable_text`)."""
    return comparable_text("\n".join(line.text for line in lines))


def blank_pdf(target: Path, width: float = 200, height: float = 300) -> Path:
    """A valid one-page PDF with nothing on the page."""
    document = pdfium.PdfDocument.new()
    try:
        document.new_page(width, height).close()
        document.save(target)
    finally:
        document.close()
    return target


def corrupt_pdf(target: Path) -> Path:
    """A file that starts like a PDF and then is garbage."""
    target.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\n\x00\xff garbage")
    return target


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def encrypted_pdf(
    target: Path,
    user_password: bytes = b"secret",
    *,
    text: bytes = b"",
    owner_password: bytes = b"owner",
    permissions: int = -4,
    pages: int = 1,
) -> Path:
    """
    A one-page PDF encrypted with the standard security handler (RC4 40-bit, R2).

    An empty ``user_password`` opens without one (only ``permissions`` are restricted, by
    ``owner_password``); ``text`` is drawn on the page in Helvetica, in a content stream
    encrypted with the object's key, so only a reader that decrypts it sees the text;
    ``pages`` pages all show it.
    """
    owner = _rc4(
        hashlib.md5((owner_password + _PAD)[:32]).digest()[:5], (user_password + _PAD)[:32]
    )
    file_id = bytes(range(16))
    key = hashlib.md5(
        (user_password + _PAD)[:32] + owner + struct.pack("<i", permissions) + file_id
    ).digest()[:5]
    user = _rc4(key, _PAD)
    content = b"BT /F1 24 Tf 20 150 Td (%s) Tj ET" % text if text else b""
    # Algorithm 1 of the PDF standard: each object's key is the file's, its number and
    # its generation (5 here, 0), hashed.
    object_key = hashlib.md5(key + (5).to_bytes(3, "little") + (0).to_bytes(2, "little"))
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 300] "
        b"/Resources << /Font << /F1 %s >> >> /Contents 5 0 R >>" % font
    )
    kids = b" ".join(b"%d 0 R" % number for number in (3, *range(6, 5 + pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        page,
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>"
        % (owner.hex().encode(), user.hex().encode(), permissions),
        pdf_stream(b"", _rc4(object_key.digest()[:10], content)),
        *[page] * (pages - 1),
    ]
    ids = b"/Encrypt 4 0 R /ID [<%s> <%s>]" % (file_id.hex().encode(), file_id.hex().encode())
    return pdf_file(target, objects, trailer=ids)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(target: Path, side: int = 30000) -> Path:
    """A valid 1-bit PNG of side x side pixels: ~100 KB on disk, 900 Mpx decoded."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = bytearray()
    rows_per_chunk = 256
    for start in range(0, side, rows_per_chunk):
        idat += compressor.compress(row * min(rows_per_chunk, side - start))
    idat += compressor.flush()
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    data += _png_chunk(b"IDAT", bytes(idat)) + _png_chunk(b"IEND", b"")
    target.write_bytes(data)
    return target


def bigtiff(pages: list[Image.Image], order: str, compression: int, rows: int) -> bytes:
    """
    ``pages`` (RGB) as a BigTIFF in byte order ``order`` (``"<"``, ``II+``; ``">"``,
    ``MM+``), each page's directory before its pixels (as tifffile and many scanners lay
    it out), its rows in strips of ``rows`` rows each compressed by ``compression`` (1:
    none; 8: deflate), and where the strips lie given as LONG8 (type 16).  Pillow writes
    BigTIFF in one byte order, uncompressed only.
    """
    data = bytearray(struct.pack(order + "2sHHHQ", b"II" if order == "<" else b"MM", 43, 8, 0, 16))
    for number, page in enumerate(pages):
        pixels = np.asarray(page.convert("RGB"))
        height, width = pixels.shape[:2]
        strips = [pixels[top : top + rows].tobytes() for top in range(0, height, rows)]
        if compression == 8:
            strips = [zlib.compress(strip) for strip in strips]
        where = len(data)  # the directory: its entry count, 10 entries, the next one's offset
        listed = where + 8 + 10 * 20 + 8  # then where the strips lie and their sizes
        first = listed + 16 * len(strips)  # then the strips
        offsets = list(itertools.accumulate([first] + [len(s) for s in strips[:-1]]))
        entries = [  # (tag, type, count, the value or where it lies)
            (256, 4, 1, struct.pack(order + "I", width)),
            (257, 4, 1, struct.pack(order + "I", height)),
            (258, 3, 3, struct.pack(order + "3H", 8, 8, 8)),
            (259, 3, 1, struct.pack(order + "H", compression)),
            (262, 3, 1, struct.pack(order + "H", 2)),  # RGB
            (273, 16, len(strips), struct.pack(order + "Q", listed)),
            (277, 3, 1, struct.pack(order + "H", 3)),
            (278, 4, 1, struct.pack(order + "I", rows)),
            (279, 16, len(strips), struct.pack(order + "Q", listed + 8 * len(strips))),
            (284, 3, 1, struct.pack(order + "H", 1)),  # the samples of a pixel together
        ]
        data += struct.pack(order + "Q", len(entries))
        for tag, kind, count, value in entries:
            data += struct.pack(order + "HHQ", tag, kind, count) + value.ljust(8, b"\0")
        last = number == len(pages) - 1
        data += struct.pack(order + "Q", 0 if last else first + sum(map(len, strips)))
        data += struct.pack(f"{order}{len(strips)}Q", *offsets)
        data += struct.pack(f"{order}{len(strips)}Q", *map(len, strips))
        data += b"".join(strips)
    return bytes(data)
