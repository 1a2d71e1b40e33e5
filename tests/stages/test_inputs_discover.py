"""
Finding documents: a file's type by its magic bytes, folders walked in order with stable
ids, files and globs given by name, links, permissions and special files.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pillow_heif
import pytest
from corpus import receipt_images
from inputfiles import copy_receipt, one_page, receipt_tiff
from PIL import Image

from stages._page import PageRef
from stages.inputs import InputError, discover, load_page, sniff
from stages.inputs._sniff import KINDS_SHOWN

ID = re.compile(r"^(?P<rel>.+)#(?P<page>\d+)@(?P<hash>[0-9a-f]{12})$", re.DOTALL)


class TestSniff:
    """Type by magic bytes."""

    @pytest.mark.parametrize(
        ("head", "kind"),
        [
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
            (b"\x89PNG\r\n\x1a\n\x00", "png"),
            (b"II*\x00\x08\x00", "tiff"),
            (b"MM\x00*\x00\x00", "tiff"),
            (b"II+\x00\x08\x00\x00\x00", "tiff"),
            (b"MM\x00+\x00\x08\x00\x00", "tiff"),
            (b"%PDF-1.7\n", "pdf"),
            (b"\r\n%PDF-1.4\n", "pdf"),
            (b" " * 1019 + b"%PDF-", "pdf"),
            (b" " * 1020 + b"%PDF-", "unknown"),
            (b"GIF89a", "gif"),
            (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
            (b"\x00\x00\x00\x18ftypheic\x00\x00", "heif"),
            (b"\x00\x00\x00\x18ftypisom\x00\x00", "unknown"),
            (b"", "unknown"),
        ],
    )
    def test_magic(self, head: bytes, kind: str) -> None:
        """Each supported signature is recognised and nothing else is; a PDF's header
        within its first 1024 bytes, as PDF readers accept it."""
        assert sniff(head) == kind

    def test_a_pdf_after_a_blank_line_is_read(self, sroie: Path, tmp_path: Path) -> None:
        """A scanned PDF with a blank line before its header (a mail gateway's) is a PDF,
        and its page loads (it used to be "not a JPEG, PNG, TIFF or PDF file")."""
        pdf = tmp_path / "scan.pdf"
        Image.open(sroie / "img" / "000.jpg").save(pdf, "PDF", resolution=200)
        pdf.write_bytes(b"\r\n" + pdf.read_bytes())
        (ref,) = discover([pdf])
        assert (ref.kind, ref.problem) == ("pdf", None)
        image = load_page(ref).image
        assert image is not None and image.shape[0] > 1000


class TestDiscoverFolders:
    """Folders, order, filtering and ids."""

    def test_recursive_sorted_with_ids(self, sroie: Path, tmp_path: Path) -> None:
        """A folder yields its documents in sorted path order with stable content ids."""
        copy_receipt(sroie, 0, tmp_path / "d.jpg")
        copy_receipt(sroie, 1, tmp_path / "b" / "c.jpg")
        copy_receipt(sroie, 2, tmp_path / "a.JPEG")
        refs = list(discover([tmp_path]))
        assert [Path(ref.source).relative_to(tmp_path).as_posix() for ref in refs] == [
            "a.JPEG",
            "b/c.jpg",
            "d.jpg",
        ]
        for ref in refs:
            match = ID.match(ref.id)
            assert match is not None, ref.id
            assert match["rel"] == Path(ref.source).relative_to(tmp_path).as_posix()
            digest = hashlib.sha256(Path(ref.source).read_bytes()).hexdigest()[:12]
            assert match["hash"] == digest
            assert (ref.page, ref.kind, ref.problem) == (1, "jpeg", None)
        assert [ref.id for ref in discover([tmp_path])] == [ref.id for ref in refs]

    def test_not_recursive(self, sroie: Path, tmp_path: Path) -> None:
        """recursive=False stays in the folder itself."""
        copy_receipt(sroie, 0, tmp_path / "top.jpg")
        copy_receipt(sroie, 1, tmp_path / "sub" / "deep.jpg")
        refs = list(discover([tmp_path], recursive=False))
        assert [Path(ref.source).name for ref in refs] == ["top.jpg"]

    def test_non_documents_skipped_and_reported(self, sroie: Path, tmp_path: Path) -> None:
        """In folders, hidden files and non-document names are skipped but reported."""
        copy_receipt(sroie, 0, tmp_path / "scan.jpg")
        (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (tmp_path / "notes.txt").write_text("hello")
        copy_receipt(sroie, 1, tmp_path / ".hidden" / "x.jpg")
        skipped: list[tuple[str, str]] = []
        refs = list(discover([tmp_path], on_skip=lambda path, why: skipped.append((path, why))))
        assert [Path(ref.source).name for ref in refs] == ["scan.jpg"]
        assert sorted(Path(path).name for path, _ in skipped) == [
            ".DS_Store",
            ".hidden",
            "notes.txt",
        ]

    def test_empty_folder_yields_nothing(self, tmp_path: Path) -> None:
        """An empty folder (or one without documents) yields no refs at all."""
        (tmp_path / "empty").mkdir()
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "readme.md").write_text("# nothing here")
        assert list(discover([tmp_path / "empty", tmp_path / "other"])) == []

    def test_single_path_is_a_type_error(self, tmp_path: Path) -> None:
        """A bare path instead of a list is refused rather than iterated per character."""
        with pytest.raises(TypeError, match="sequence of paths"):
            list(discover(str(tmp_path)))  # a str is a Sequence[str], so mypy allows it


class TestDiscoverFiles:
    """Explicit files, globs, sniffing and duplicates."""

    def test_sniffing_not_extension(self, sroie: Path, tmp_path: Path) -> None:
        """A text file named .png is a problem ref; a PNG named .jpg is a PNG and loads."""
        fake = tmp_path / "fake.png"
        fake.write_text("this is not an image\n")
        real = tmp_path / "real.jpg"
        receipt_images(sroie, 1)[0].save(real, "PNG")
        bad, good = list(discover([fake, real]))
        assert bad.kind == "unknown"
        assert bad.problem is not None
        assert str(fake) in bad.problem
        assert f"not a {KINDS_SHOWN} file (starts with b'this is " in bad.problem
        assert (good.kind, good.problem) == ("png", None)
        with pytest.raises(InputError, match=f"not a {KINDS_SHOWN}"):
            load_page(bad)
        image = load_page(good).image
        assert image is not None
        assert image.shape[2] == 3

    @pytest.mark.parametrize(
        ("name", "kind"),
        [("photo.heic", "heif"), ("page.webp", "webp"), ("scan.bmp", "bmp"), ("one.gif", "gif")],
    )
    def test_other_picture_formats(self, sroie: Path, tmp_path: Path, name: str, kind: str) -> None:
        """A phone's HEIC photo, a WebP, a BMP and a GIF in a folder: taken, known by their
        content and loaded at their size (they used to be left out, or refused by name)."""
        receipt = receipt_images(sroie, 1)[0].convert("RGB")
        path = tmp_path / "in" / name
        path.parent.mkdir()
        if kind == "heif":
            pillow_heif.from_pillow(receipt).save(path, quality=90)
        else:
            receipt.save(path, kind.upper())
        (ref,) = discover([tmp_path / "in"])
        assert (ref.kind, ref.problem) == (kind, None)
        image = load_page(ref).image
        assert image is not None
        assert image.shape == (receipt.height, receipt.width, 3)

    @pytest.mark.parametrize("kind", ["PNG", "WEBP"])
    def test_a_photo_stored_sideways_is_turned_by_its_tag(
        self, sroie: Path, tmp_path: Path, kind: str
    ) -> None:
        """A PNG or WebP whose EXIF orientation says its pixels lie a quarter turned (6)
        loads upright, as a JPEG does."""
        receipt = receipt_images(sroie, 1)[0].convert("RGB")
        stored = receipt.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = 6
        path = tmp_path / f"turned.{kind.lower()}"
        stored.save(path, kind, exif=exif.tobytes())
        image = load_page(next(iter(discover([path])))).image
        assert image is not None
        assert image.shape == (receipt.height, receipt.width, 3)

    def test_a_tiff_cut_short_keeps_its_whole_pages(self, sroie: Path, tmp_path: Path) -> None:
        """A 3-page TIFF cut to 80 % of its bytes: its whole first page loads, and one more
        page says what is wrong (the file used to be one error record)."""
        path = receipt_tiff(sroie, tmp_path / "pages.tif", 3)
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 4 // 5])
        refs = list(discover([path]))
        assert [ref.problem for ref in refs] == [None] * len(refs)
        assert len(refs) >= 2
        image = load_page(refs[0]).image
        assert image is not None and image.shape[2] == 3
        with pytest.raises(
            InputError,
            match=rf"pages\.tif: truncated TIFF: the file ends at byte \d+, "
            rf"before page {len(refs)}'s directory",
        ):
            load_page(refs[-1])

    def test_explicit_file_is_always_accounted(self, tmp_path: Path) -> None:
        """A file named explicitly is yielded even with a non-document name."""
        notes = tmp_path / "notes.txt"
        notes.write_text("hello")
        ref = one_page(list(discover([notes])))
        assert ref.id.startswith("notes.txt#1@")
        assert ref.problem is not None

    def test_globs(self, sroie: Path, tmp_path: Path) -> None:
        """Glob patterns expand in sorted order, ** crosses folders, ids are pattern-relative."""
        copy_receipt(sroie, 0, tmp_path / "scans" / "a.jpg")
        copy_receipt(sroie, 1, tmp_path / "scans" / "b.jpg")
        copy_receipt(sroie, 2, tmp_path / "scans" / "deep" / "c.jpg")
        (tmp_path / "scans" / "readme.txt").write_text("x")
        flat = list(discover([str(tmp_path / "scans" / "*.jpg")]))
        assert [ref.id.split("#")[0] for ref in flat] == ["a.jpg", "b.jpg"]
        deep = list(discover([str(tmp_path / "scans" / "**" / "*.jpg")]))
        assert [ref.id.split("#")[0] for ref in deep] == ["a.jpg", "b.jpg", "deep/c.jpg"]

    def test_unmatched_glob_and_missing_path(self, tmp_path: Path) -> None:
        """A typo becomes one problem ref each, not an exception that stops the run."""
        missing, unmatched = list(discover([tmp_path / "nope.jpg", str(tmp_path / "nothing*.pdf")]))
        assert missing.problem == f"{tmp_path / 'nope.jpg'}: no such file or directory"
        assert unmatched.problem is not None
        assert "no file matches this pattern" in unmatched.problem
        assert ID.match(missing.id) is not None
        with pytest.raises(InputError, match="no such file"):
            load_page(missing)

    def test_same_file_yielded_once(self, sroie: Path, tmp_path: Path) -> None:
        """The same file given twice, by glob and through a symlink, is yielded once."""
        scan = copy_receipt(sroie, 0, tmp_path / "scan.jpg")
        (tmp_path / "link.jpg").symlink_to(scan)
        inputs: list[str | os.PathLike[str]] = [
            scan,
            str(scan),
            str(tmp_path / "*.jpg"),
            tmp_path,
            tmp_path / "." / "scan.jpg",
        ]
        assert [ref.source for ref in discover(inputs)] == [str(scan)]

    def test_same_name_and_content_in_two_roots(self, sroie: Path, tmp_path: Path) -> None:
        """Two copies with the same relative name and content in two roots are both read:
        the second's id holds its root's folder name."""
        copy_receipt(sroie, 0, tmp_path / "one" / "scan.jpg")
        copy_receipt(sroie, 0, tmp_path / "two" / "scan.jpg")
        copy_receipt(sroie, 1, tmp_path / "three" / "scan.jpg")
        skipped: list[str] = []
        refs = list(
            discover(
                [tmp_path / "one", tmp_path / "two", tmp_path / "three"],
                on_skip=lambda path, why: skipped.append(path),
            )
        )
        assert len({ref.id for ref in refs}) == len(refs) == 3
        assert [ref.id.split("#")[0] for ref in refs] == ["scan.jpg", "two/scan.jpg", "scan.jpg"]
        assert skipped == []

    def test_odd_names(self, sroie: Path, tmp_path: Path) -> None:
        """Spaces, non-ASCII and a newline in file names work end to end."""
        names = ["with space.jpg", "ünïcødé 收据.jpg", "new\nline.jpg"]
        for number, name in enumerate(names):
            copy_receipt(sroie, number, tmp_path / name)
        refs = list(discover([tmp_path]))
        assert sorted(Path(ref.source).name for ref in refs) == sorted(names)
        for ref in refs:
            assert ref.problem is None
            assert ID.match(ref.id) is not None
            image = load_page(ref).image
            assert image is not None
            assert image.ndim == 3

    def test_empty_file(self, tmp_path: Path) -> None:
        """A zero-byte file is one problem ref, and loading it fails clearly."""
        empty = tmp_path / "empty.jpg"
        empty.touch()
        ref = one_page(list(discover([tmp_path])))
        assert ref.problem == f"{empty}: empty file (0 bytes)"
        with pytest.raises(InputError, match=r"empty\.jpg: empty file"):
            load_page(ref)


class TestDiscoverLinksAndPermissions:
    """Symlink loops, broken links, unreadable and special files."""

    def test_symlink_loop_terminates(self, sroie: Path, tmp_path: Path) -> None:
        """A link back to an ancestor does not hang; each file comes once."""
        copy_receipt(sroie, 0, tmp_path / "a" / "scan.jpg")
        (tmp_path / "a" / "loop").symlink_to(tmp_path)
        (tmp_path / "a" / "self").symlink_to(tmp_path / "a")
        refs = list(discover([tmp_path]))
        assert [Path(ref.source).name for ref in refs] == ["scan.jpg"]

    def test_broken_symlink(self, tmp_path: Path) -> None:
        """A dangling link with a document name is an error-bearing ref."""
        (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
        ref = one_page(list(discover([tmp_path])))
        assert ref.problem == f"{tmp_path / 'gone.jpg'}: broken symbolic link"
        with pytest.raises(InputError, match="broken symbolic link"):
            load_page(ref)

    def test_unreadable_file_chmod(self, sroie: Path, tmp_path: Path) -> None:
        """chmod 000 makes a problem ref (not checkable as root, who reads anyway)."""
        if os.geteuid() == 0:
            pytest.skip("running as root: chmod 000 does not stop root from reading a file")
        locked = copy_receipt(sroie, 0, tmp_path / "locked.jpg")
        locked.chmod(0)
        try:
            ref = one_page(list(discover([locked])))
        finally:
            locked.chmod(0o644)
        assert ref.problem == f"{locked}: cannot read: permission denied"

    def test_unreadable_file_simulated(
        self, sroie: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A read that fails with EACCES (simulated, so it also fails as root) is translated."""
        locked = copy_receipt(sroie, 0, tmp_path / "locked.jpg")
        real_open = Path.open

        def refuse(self: Path, *args: object, **kwargs: object) -> object:
            if self.name == "locked.jpg":
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "open", refuse)
        ref = one_page(list(discover([locked])))
        assert ref.problem == f"{locked}: cannot read: permission denied"
        assert ID.match(ref.id) is not None
        manual = PageRef("locked.jpg#1@000000000000", str(locked), 1, "jpeg")
        with pytest.raises(InputError, match=r"locked\.jpg: cannot read: permission denied"):
            load_page(manual)

    def test_fifo_is_not_opened(self, tmp_path: Path) -> None:
        """A FIFO named explicitly is refused without blocking on open()."""
        fifo = tmp_path / "pipe.jpg"
        os.mkfifo(fifo)
        ref = one_page(list(discover([fifo])))
        assert ref.problem == f"{fifo}: not a regular file (device, FIFO...)"
