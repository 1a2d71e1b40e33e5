"""
Content sniffing, hashing and page counting: what discovery learns about one file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import TiffImagePlugin

from stages._page import utf8_text

from ._pillow_warnings import pillow_warnings
from ._tiff_cut import tiff_cut

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "KINDS_SHOWN",
    "LOCKED",
    "FileInfo",
    "Hidden",
    "LockedPdf",
    "count_pages",
    "describe",
    "examine",
    "examine_bytes",
    "open_pdf",
    "path_digest",
    "pdfium_lock",
    "show_path",
    "sniff",
]

# Hashing reads the file in chunks so a 2 GB PDF never sits in memory at once.
# 1 MiB is a common, unremarkable choice; nothing was measured.
_CHUNK = 1 << 20

# PDFium is one process-wide C library that is not thread-safe (pypdfium2 says so), and
# discovery and loading run in worker threads, so every PDFium call holds this lock.
# It guards the library, not shared Python state, which is why it is module-level.
pdfium_lock = threading.Lock()

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    # BigTIFF (64-bit offsets: a scan over 4 GB, or a GIS tool's default): Pillow reads it
    # little-endian only (_BIG_ENDIAN_UNREAD).
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"%PDF-", "pdf"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)

# An ISO media file (``....ftyp<brand>``) holding HEIF still images: a phone's photo.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})

#: Pillow (13) takes a big-endian BigTIFF's header for a classic TIFF's, so it reads none
#: of the file: its error ("Missing dimensions") is replaced by one that says what to do.
_BIG_ENDIAN_BIGTIFF = b"MM\x00+"
_BIG_ENDIAN_UNREAD = (
    "big-endian BigTIFF (MM+), which Pillow cannot read; write it little-endian, "
    "e.g. with libtiff's `tiffcp -L FILE COPY.tif`"
)

#: What a file that is no document is told it is not.
KINDS_SHOWN = "JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF"


#: How far into a file a PDF's header may lie (as PDF readers accept it).
_PDF_HEADER_WITHIN = 1024


def sniff(head: bytes) -> str:
    """
    Name the document type of a file from its first bytes (never from its name).

    A PDF's header may follow other bytes (a mail gateway's or a web export's blank
    line): PDF readers look for it in the first 1024 bytes, and so does this.

    Args:
        head: at least the first 1024 bytes of the file (fewer if the file is shorter).

    Returns:
        ``"jpeg"``, ``"png"``, ``"tiff"``, ``"pdf"``, ``"heif"``, ``"webp"``, ``"bmp"``,
        ``"gif"`` or ``"unknown"``.
    """
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    return "pdf" if b"%PDF-" in head[:_PDF_HEADER_WITHIN] else "unknown"


def show_path(path: str | os.PathLike[str]) -> str:
    """
    A path as it should appear in a message: as typed (bytes that are not UTF-8 as
    ``\\xNN``, `utf8_text`), or quoted when it holds control characters such as a newline.
    """
    text = utf8_text(os.fspath(path))
    return text if text.isprintable() else repr(text)


def describe(exc: BaseException) -> str:
    """
    A short reason for an ``OSError`` (its ``strerror``) or any other exception.
    """
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc) or type(exc).__name__


def path_digest(path: str | os.PathLike[str]) -> str:
    """
    The id hash of a file that cannot be read: 12 hex digits of the SHA-256 of its
    absolute path, so the id is still stable and unique, and changes once the file
    becomes readable (its content hash then takes over).
    """
    absolute = os.path.abspath(os.fspath(path))
    return hashlib.sha256(("path:" + absolute).encode("utf-8", "surrogateescape")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """
    What one read of a file tells: its type, its content hash and why it is unusable.

    Attributes:
        kind: the sniffed type (see :func:`sniff`).
        digest: the first 12 hex digits of the SHA-256 of the content, or of the
            absolute path (see :func:`path_digest`) when the file could not be read.
        problem: the reason the file cannot be used, or ``None``.
    """

    kind: str
    digest: str
    problem: str | None


def examine(path: Path, *, shown: str | None = None) -> FileInfo:
    """
    Read a file once: sniff its type from the first bytes and hash all of it.

    Never raises for an unusable file; the reason lands in ``problem`` instead.

    Args:
        path: the file to read (symbolic links are followed).
        shown: how ``problem`` names the file; `show_path` of ``path`` by default.

    Returns:
        The file's type, hash and problem (``None`` when nothing is wrong yet).
    """
    shown = show_path(path) if shown is None else shown
    unreadable = path_digest(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
        return FileInfo("unknown", unreadable, f"{shown}: {reason}")
    except OSError as exc:
        return FileInfo("unknown", unreadable, f"{shown}: cannot read: {describe(exc)}")
    if stat.S_ISDIR(mode):
        return FileInfo("unknown", unreadable, f"{shown}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        # Opening a FIFO would block forever, and a device is never a scan.
        return FileInfo("unknown", unreadable, f"{shown}: not a regular file (device, FIFO...)")
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            head = stream.read(_CHUNK)
            digest.update(head)
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        return FileInfo("unknown", unreadable, f"{shown}: cannot read: {describe(exc)}")
    return _judged(head, digest.hexdigest()[:12], shown)


def examine_bytes(data: bytes, shown: str) -> FileInfo:
    """
    What `examine` tells of a file, for a document held in memory (piped in on standard
    input): its type, the hash of ``data`` and why it is unusable; ``shown`` names it in
    the problem.
    """
    return _judged(data[:_CHUNK], hashlib.sha256(data).hexdigest()[:12], shown)


def _judged(head: bytes, hexdigest: str, shown: str) -> FileInfo:
    """The `FileInfo` of content that starts with ``head`` and hashes to ``hexdigest``."""
    if not head:
        return FileInfo("unknown", hexdigest, f"{shown}: empty file (0 bytes)")
    kind = sniff(head)
    if kind == "unknown":
        problem = f"{shown}: not a {KINDS_SHOWN} file (starts with {head[:8]!r})"
        return FileInfo(kind, hexdigest, problem)
    return FileInfo(kind, hexdigest, None)


def _cut_short(path: Path | bytes) -> bool:
    """Whether a PDF lacks the ``%%EOF`` a PDF ends with (in its last kilobyte): a copy or
    a download that stopped, rather than a file damaged inside."""
    try:
        if isinstance(path, bytes):
            tail = path[-1024:]
        else:
            with open(path, "rb") as stream:
                stream.seek(max(0, os.fstat(stream.fileno()).st_size - 1024))
                tail = stream.read()
    except OSError:
        return False
    return b"%%EOF" not in tail


# A page tree with no page in it. PDFium refuses such a file as a "data format error",
# the same as garbage, so the message is chosen from the bytes instead.
_EMPTY_PAGE_TREE = re.compile(
    rb"/Type\s*/Pages\b[^>]*?/Count\s+0\b|/Count\s+0\b[^>]*?/Type\s*/Pages\b"
)
_A_PAGE = re.compile(rb"/Type\s*/Page\b(?!s)")
# Only a small file is searched: an empty page tree is a small file.
_EMPTY_SEARCHED = 1 << 20


def _no_pages(path: Path | bytes) -> bool:
    """Whether a PDF PDFium refused declares an empty page tree and holds no page object
    (a form emptied by a tool, an export of nothing): only the message depends on it."""
    try:
        if isinstance(path, bytes):
            data = path[:_EMPTY_SEARCHED]
        else:
            with open(path, "rb") as stream:
                data = stream.read(_EMPTY_SEARCHED)
    except OSError:
        return False
    return bool(_EMPTY_PAGE_TREE.search(data)) and not _A_PAGE.search(data)


#: The words that open the reason an encrypted PDF did not open (no password, or a wrong
#: one).
LOCKED = "encrypted PDF"


class LockedPdf(ValueError):
    """
    An encrypted PDF that does not open: no password was given, or none given opens it.
    Discovery marks its refs `PageRef.locked`, which a resumed run weighs
    (`stages._resumed.against_output`).
    """


class Hidden(tuple[str, ...]):
    """
    Passwords that never show: a tuple whose ``repr`` (and so ``str``, a ``partial``'s or a
    settings object's ``repr``, a log line) says how many there are and not what they are.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Hidden(<{len(self)} hidden>)"


def _fresh_error() -> None:
    """
    Set PDFium's last error to a data format error, by opening an empty buffer.

    PDFium leaves its last error as it was when some opens fail (a PDF with no pages, or
    no page tree), so an earlier file's "password" error would name this one encrypted:
    after this, a password error is this open's own, and a stale format error leads to
    the checks of the file's own bytes. Call it holding :data:`pdfium_lock`.
    """
    pdfium_c.FPDF_LoadMemDocument(b"", 0, None)


def _open(path: Path | bytes, passwords: Sequence[str]) -> pdfium.PdfDocument:
    """
    ``path`` opened without a password, else with the first of ``passwords`` that opens it.

    Without a password first: a PDF whose permissions alone are restricted (its owner's
    password set, not its user's) opens so, and PDFium refuses it a password that is not
    its owner's.
    """
    try:
        _fresh_error()
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if exc.err_code != pdfium_c.FPDF_ERR_PASSWORD or not passwords:
            raise
        refused = exc
    for password in passwords:
        try:
            _fresh_error()
            return pdfium.PdfDocument(path, password=password)
        except pdfium.PdfiumError as exc:
            if exc.err_code != pdfium_c.FPDF_ERR_PASSWORD:
                raise
    given = (
        "the password given does not open it"
        if len(passwords) == 1
        else f"none of the {len(passwords)} passwords given opens it"
    )
    # The reason names no password; the error chained is PDFium's refusal of none.
    raise LockedPdf(f"{LOCKED}: wrong password ({given})") from refused


@contextmanager
def open_pdf(path: Path | bytes, passwords: Sequence[str] = ()) -> Iterator[pdfium.PdfDocument]:
    """
    Open a PDF with PDFium and close it afterwards, holding :data:`pdfium_lock` throughout:
    every PDFium call on the document must happen inside this block.

    Args:
        path: the PDF file, or its bytes.
        passwords: the passwords to try, in turn, on a PDF that does not open without one.

    Yields:
        The open document.

    Raises:
        LockedPdf: the PDF is encrypted and no password or a wrong one was given.
        ValueError: PDFium cannot parse it; the message is the user-facing reason without the
            path (and never a password).
        OSError: the file cannot be read.
    """
    with pdfium_lock:
        try:
            document = _open(path, passwords)
        except pdfium.PdfiumError as exc:
            if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
                raise LockedPdf(
                    f"{LOCKED} (password required; asyncpipe run --pdf-password-env "
                    "names a variable holding it)"
                ) from exc
            if exc.err_code == pdfium_c.FPDF_ERR_FILE:
                raise OSError(f"cannot read the file ({exc})") from exc
            if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
                raise ValueError("PDF uses an unsupported security handler") from exc
            if _no_pages(path):
                raise ValueError("PDF has no pages (its page tree is empty)") from exc
            if _cut_short(path):
                raise ValueError(
                    "corrupt or unreadable PDF: it does not end as a PDF does (no %%EOF), "
                    "so it is truncated or not a whole PDF"
                ) from exc
            raise ValueError("corrupt or unreadable PDF: PDFium cannot parse it") from exc
        try:
            yield document
        finally:
            document.close()


def count_pages(path: Path | bytes, kind: str, *, passwords: Sequence[str] = ()) -> int:
    """
    Count the pages of a file whose type is already known.

    Args:
        path: the file, or its bytes (a document piped in on standard input).
        kind: its sniffed type; JPEG and PNG files have one page.
        passwords: the passwords to try on an encrypted PDF (see `open_pdf`).

    Returns:
        The number of pages (at least 1).

    Raises:
        ValueError: the file is damaged, encrypted (and its password not given) or has
            no pages; the message is the user-facing reason without the path.
        OSError: the file cannot be read.
    """
    if kind == "pdf":
        with open_pdf(path, passwords) as document:
            pages = len(document)
        if pages < 1:
            raise ValueError("PDF has no pages")
        return pages
    if kind == "tiff":
        try:
            opened = io.BytesIO(path) if isinstance(path, bytes) else path.open("rb")
            # Pillow's warnings on the way (a directory cut short) are not printed: the
            # page they concern says what is wrong with it when it is loaded. The plugin
            # class reads the header only; Image.open() would also run Pillow's
            # decompression-bomb check, which load_page does itself.
            with (
                pillow_warnings(),
                opened as stream,
                TiffImagePlugin.TiffImageFile(stream) as image,
            ):
                return _tiff_pages(image)
        except Exception as exc:  # Pillow raises many types (SyntaxError, struct.error...)
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # a real I/O failure, not Pillow's "truncated" etc.
            # A file cut short says so, not what a library makes of it ("Missing
            # dimensions"); a damaged file is read whole only then.
            data = path if isinstance(path, bytes) else path.read_bytes()
            cut = tiff_cut(data, 1)
            if cut is None and data[:4] == _BIG_ENDIAN_BIGTIFF:
                raise ValueError(_BIG_ENDIAN_UNREAD) from exc
            raise ValueError(cut.reason if cut else f"corrupt TIFF ({describe(exc)})") from exc
    return 1


def _tiff_pages(image: TiffImagePlugin.TiffImageFile) -> int:
    """
    A TIFF's pages; when it is damaged after its first pages (a copy cut short), those
    pages and one more, whose load says what is wrong, rather than none of them.
    """
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # Pillow raises many types (TypeError "Missing dimensions", ...)
        readable = 0
        with contextlib.suppress(Exception):
            while True:
                image.seek(readable)
                readable += 1
        if readable == 0:
            raise
        return readable + 1
