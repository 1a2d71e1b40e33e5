"""
Input discovery: turn the files, folders and glob patterns a user names into page refs.

Rules (the "every file is accounted for" contract):

* A file named explicitly, or matched by a glob pattern, is **always** yielded: if it is not
  a JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF (judged by content, never by name) or
  cannot be read, its ref carries a ``problem`` and becomes an error record downstream.
* Inside a folder, only files whose name ends in a document suffix (:data:`DOCUMENT_SUFFIXES`,
  case-insensitive) and does not start with ``.`` are taken; their content is then checked
  like any other file.  Everything else (``.DS_Store``, ``notes.txt``, ``truth.json``) is
  skipped and reported through ``on_skip``, so a caller can still account for it.
* A path that does not exist, or a pattern that matches nothing, yields one ref with a
  problem: one typo does not stop the run, but it is not silently lost either.
* The input ``-`` is the document piped in on standard input, when the caller read it
  (``stdin``): its pages carry its bytes (:mod:`stages.inputs._stdin`).
* An empty folder (or one with no documents) yields nothing.  If ``discover`` yields
  nothing at all, the caller must say so clearly (the CLI exits with status 2).
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

from stages._page import PageRef, utf8_text

from ._receipts import receipts_of
from ._sniff import Hidden, LockedPdf, count_pages, describe, examine, path_digest, show_path, sniff
from ._stdin import STDIN, as_file, stdin_refs

__all__ = [
    "DOCUMENT_SUFFIXES",
    "REPEATED_FILE",
    "REPEATED_FOLDER",
    "SkipCallback",
    "discover",
    "estimate_pages",
]

#: File name endings taken from inside folders (compared case-insensitively).
DOCUMENT_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".btf", ".pdf"}
    | {".heic", ".heif", ".hif", ".webp", ".bmp", ".gif"}
)

#: ``on_skip(path, reason)``: told about every folder entry that discovery leaves out.
SkipCallback = Callable[[str, str], None]

#: The ``on_skip`` reason of a file reached again: read once, not lost.
REPEATED_FILE = "file already given (a repeat, or the same file by a link)"
#: The ``on_skip`` reason of a folder reached again: walked once, not lost.
REPEATED_FOLDER = "folder already walked (symbolic link loop or repeat)"


def discover(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    suffixes: Collection[str] = DOCUMENT_SUFFIXES,
    on_skip: SkipCallback | None = None,
    receipts: bool = False,
    pdf_passwords: Sequence[str] = (),
    stdin: bytes | None = None,
) -> Iterator[PageRef]:
    """
    Find every page of every document the inputs name, in a deterministic order.

    This is a blocking generator (it reads and hashes files): run it in a worker thread.

    Inputs are handled in the order given.  Each input is an existing file, an existing
    folder (walked in sorted path order, into subfolders when ``recursive``), or else a
    glob pattern (``scans/*.jpg``, ``scans/**/*.pdf``; ``**`` spans folders).  A folder
    matched by a pattern is walked like a folder; a file matched by a pattern counts as
    named explicitly.

    Each file is read once to sniff its type from its first bytes and hash its content.
    A TIFF yields one ref per frame and a PDF one ref per page; a file whose pages cannot
    be counted (corrupt, truncated, encrypted PDF without its password or with a wrong one,
    unreadable, empty, broken symbolic link) yields one ref with ``page=1`` and
    ``problem`` set to a reason that names the file.

    With ``receipts``, each scanned page (JPEG, PNG, TIFF, or a PDF page that shows no
    text of its own) is also decoded small and looked at for several receipts side by
    side (:func:`~stages._paper.find_receipts`); a page that holds several yields one ref
    per receipt, in reading order, with ``.<k>`` after the page number in its id and the
    receipt's ``region`` of the page.

    The id of a ref is ``<path relative to its input root, posix>#<page>@<hash>``, where
    the root of a named file is its parent folder, the root of a folder is the folder, and
    the root of a pattern is its longest folder prefix without wildcards.  ``<hash>`` is the
    first 12 hex digits of the SHA-256 of the file's content (of its absolute path if it
    cannot be read).  A second file that would have the id of an earlier one (the same
    relative name and content under two roots: ``d1/x.jpg`` and ``d2/x.jpg``) has its
    root's folder name before its path (``d2/x.jpg#1@...``), or as many folders above as
    tell it apart, so both are yielded; the first keeps the plain id, so ids follow the
    inputs' order.  The same file reached twice (given twice, through two patterns, via a
    symbolic link) is yielded once, and each later time reported through ``on_skip``.

    Symbolic links are followed, but a folder is never walked twice, so link loops end.

    Args:
        inputs: files, folders and glob patterns, as the user typed them.
        recursive: walk into subfolders of a folder.
        suffixes: file name endings taken from inside folders (lower case, with the dot).
        on_skip: called with ``(path, reason)`` for each folder entry or file left out
            (hidden, not a document name, a repeat), e.g. to print "skipped
            3 files".
        receipts: split a scan holding several receipts side by side into one ref per
            receipt (this decodes every scan once, small).
        pdf_passwords: the passwords to try, in turn, on an encrypted PDF that does not
            open without one; the refs do not carry them (`load_page` takes them too).
            An encrypted PDF's ids are those of its bytes as they are, encrypted, so they
            do not depend on the password.
        stdin: the bytes piped in on standard input (`read_stdin`), which the input
            ``-`` names: its pages are ``<stdin>#<page>@<hash>``, source ``<stdin>``, each
            carrying these bytes as its ``data`` (nothing is empty: one ref whose
            problem says so). ``None`` (the default): ``-`` is a path like any other.

    Yields:
        One :class:`PageRef` per page; nothing at all for empty folders.

    Raises:
        TypeError: ``inputs`` is a single path instead of a sequence of paths.

    .. versionadded:: 0.1
    """
    if isinstance(inputs, str | bytes | os.PathLike):
        raise TypeError("discover() takes a sequence of paths; wrap a single path in a list")
    walker = _Discovery(
        recursive=recursive,
        suffixes=frozenset(suffix.lower() for suffix in suffixes),
        on_skip=on_skip,
        passwords=pdf_passwords,
        stdin=stdin,
    )
    for item in inputs:
        for ref in walker.input(os.fspath(item)):
            if receipts:
                yield from receipts_of(ref, pdf_passwords=walker.passwords)
            else:
                yield ref


def estimate_pages(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    suffixes: Collection[str] = DOCUMENT_SUFFIXES,
    every: float = 0.5,
    pdf_passwords: Sequence[str] = (),
    stdin: bytes | None = None,
) -> Iterator[int]:
    """
    Estimate how many pages `discover` will yield, cheaply and ever better.

    The first estimate counts the documents (one page each) from the folder listings
    alone, without reading a file.  Then each document's first bytes are read and every
    PDF and TIFF is opened to count its pages; the refined estimate is yielded at most
    every ``every`` seconds, and once more at the end (the exact count, unless a file
    changes meanwhile). A scan holding several receipts counts
    as one page here; the run's total grows when discovery finds them.

    This is a blocking generator: run it in a worker thread.

    Args:
        inputs: files, folders and glob patterns, as for `discover`.
        recursive: walk into subfolders of a folder.
        suffixes: file name endings taken from inside folders.
        every: the least seconds between two refined estimates.
        pdf_passwords: the passwords to try on an encrypted PDF, as for `discover`.
        stdin: the bytes the input ``-`` names, as for `discover` (counted from these
            bytes: standard input is never read here).

    Yields:
        Page counts: first the number of documents, then refinements.
    """
    walker = _Discovery(
        recursive=recursive,
        suffixes=frozenset(suffix.lower() for suffix in suffixes),
        on_skip=None,
        list_only=True,
        passwords=pdf_passwords,
        stdin=stdin,
    )
    problems = sum(1 for item in inputs for _ in walker.input(os.fspath(item)))
    paths = walker.listed
    total = len(paths) + problems
    yield total
    last = time.monotonic()
    for path in paths:
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                continue  # a FIFO's open would wait for a writer for ever
            with path.open("rb") as fh:
                kind = sniff(fh.read(1024))
            if kind in ("pdf", "tiff"):
                total += count_pages(path, kind, passwords=walker.passwords) - 1
        except (OSError, ValueError):
            pass  # discover will make this file's one error record
        if time.monotonic() - last >= every:
            last = time.monotonic()
            yield total
    yield total


class _Discovery:
    """
    The state of one ``discover`` call: what has been seen, and the options.

    With ``list_only``, files are not read: each new one is appended to ``listed``.
    """

    def __init__(
        self,
        *,
        recursive: bool,
        suffixes: frozenset[str],
        on_skip: SkipCallback | None,
        list_only: bool = False,
        passwords: Sequence[str] = (),
        stdin: bytes | None = None,
    ) -> None:
        self.list_only = list_only
        self.stdin = stdin
        self.passwords = Hidden(passwords)
        self.listed: list[Path] = []
        self.recursive = recursive
        self.suffixes = suffixes
        self.on_skip = on_skip
        self.seen_files: set[object] = set()
        self.seen_ids: set[str] = set()
        self.seen_dirs: set[tuple[int, int]] = set()

    def skip(self, path: str, reason: str) -> None:
        if self.on_skip is not None:
            self.on_skip(path, reason)

    def input(self, text: str) -> Iterator[PageRef]:
        if not text:
            yield self.missing("", "", "empty input path")
            return
        if text == STDIN and self.stdin is not None:
            yield from self.piped(self.stdin)
            return
        path = Path(text)
        if os.path.lexists(path):
            if path.is_dir():
                yield from self.folder(path, root=path)
            else:
                yield from self.file(path, root=path.parent)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                yield self.missing(text, text, "no file matches this pattern")
            root = _pattern_root(text)
            for match in matches:
                found = Path(match)
                if found.is_dir():
                    yield from self.folder(found, root=root)
                else:
                    yield from self.file(found, root=root)
        else:
            yield self.missing(text, path.name, "no such file or directory")

    def piped(self, data: bytes) -> Iterator[PageRef]:
        """The pages of the document piped in, once (its pages are counted from its bytes,
        with ``list_only`` too: they are in memory already)."""
        refs = stdin_refs(data, pdf_passwords=self.passwords)
        if refs[0].id in self.seen_ids:
            return
        self.seen_ids.update(ref.id for ref in refs)
        yield from refs

    def missing(self, source: str, name: str, reason: str) -> PageRef:
        source, name = as_file(source), as_file(name)
        ref_id = f"{utf8_text(name)}#1@{path_digest(source)}"
        self.seen_ids.add(ref_id)
        return PageRef(
            ref_id,
            source,
            1,
            "unknown",
            f"{show_path(source)}: {reason}",
            path=os.path.abspath(source),
        )

    def folder(self, top: Path, *, root: Path) -> Iterator[PageRef]:
        """
        Walk a folder in sorted path order (files and subfolders interleaved by name).
        """
        # An explicit stack instead of recursion: very deep trees must not hit the
        # recursion limit.  Each level is an iterator over its sorted entries.
        stack: list[Iterator[os.DirEntry[str]]] = []
        opened = self.enter(top)
        if isinstance(opened, PageRef):
            yield opened
            return
        if opened is not None:
            stack.append(opened)
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                self.skip(entry.path, "hidden")
                continue
            if _is_dir(entry):
                if not self.recursive:
                    self.skip(entry.path, "subfolder (recursive=False)")
                    continue
                opened = self.enter(Path(entry.path))
                if isinstance(opened, PageRef):
                    yield opened
                elif opened is not None:
                    stack.append(opened)
                continue
            if os.path.splitext(entry.name)[1].lower() not in self.suffixes:
                self.skip(entry.path, "not a document file name")
                continue
            yield from self.file(Path(entry.path), root=root)

    def enter(self, folder: Path) -> Iterator[os.DirEntry[str]] | PageRef | None:
        """
        List a folder once: its sorted entries, a problem ref, or ``None`` if already seen.
        """
        try:
            info = folder.stat()
            key = (info.st_dev, info.st_ino)
            if key in self.seen_dirs:
                self.skip(str(folder), REPEATED_FOLDER)
                return None
            self.seen_dirs.add(key)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            return self.missing(str(folder), folder.name, f"cannot list folder: {describe(exc)}")
        return iter(entries)

    def file(self, path: Path, *, root: Path) -> Iterator[PageRef]:
        try:
            info = path.stat()
            key: object = (info.st_dev, info.st_ino)
        except OSError:
            key = os.path.abspath(path)
        if key in self.seen_files:
            # Said, as a folder walked twice is: the user gave it on purpose, or twice by
            # mistake, and may count the records against the inputs.
            self.skip(str(path), REPEATED_FILE)
            return
        self.seen_files.add(key)
        if self.list_only:
            self.listed.append(path)
            return
        # A file named ``<stdin>`` is ``./<stdin>``: it is not the document piped in.
        source = as_file(str(path))
        found = examine(path, shown=show_path(source))
        rel = as_file(utf8_text(Path(os.path.relpath(path, root)).as_posix()))
        locked = False
        if found.problem is None:
            try:
                pages = count_pages(path, found.kind, passwords=self.passwords)
            except (OSError, ValueError) as exc:
                locked = isinstance(exc, LockedPdf)
                problem = f"{show_path(source)}: {describe(exc)}"
                found = type(found)(found.kind, found.digest, problem)
                pages = 1
        else:
            pages = 1
        if f"{rel}#1@{found.digest}" in self.seen_ids:
            rel = self.apart(rel, root, found.digest)
        for page in range(1, pages + 1):
            ref_id = f"{rel}#{page}@{found.digest}"
            self.seen_ids.add(ref_id)
            yield PageRef(
                ref_id,
                source,
                page,
                found.kind,
                found.problem,
                locked=locked,
                path=os.path.abspath(source),
            )

    def apart(self, rel: str, root: Path, digest: str) -> str:
        """
        The name in the ids of a file whose ``rel`` and ``digest`` an earlier file's ids
        hold (the same name and content under another root): ``rel`` under its root's
        folder name, or under as many of the folders above as tell it apart, up to its
        root's absolute path, which no other file has.
        """
        folders = [utf8_text(part) for part in Path(os.path.abspath(root)).parts[1:]]
        for count in range(1, len(folders) + 1):
            name = "/".join([*folders[-count:], rel])
            if count == len(folders):
                name = "/" + name
            if f"{name}#1@{digest}" not in self.seen_ids:
                return name
        return "/" + "/".join([*folders, rel])


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """
    Whether an entry is a folder (following symbolic links); unreadable entries are files.
    """
    try:
        return entry.is_dir()
    except OSError:
        return False


def _pattern_root(pattern: str) -> Path:
    """
    The longest leading folder of a glob pattern that holds no wildcard.
    """
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()
