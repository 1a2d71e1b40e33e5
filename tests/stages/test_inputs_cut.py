"""
Damaged scans, made from real receipts: a TIFF (classic or BigTIFF) cut short says what
it lacks, or is read down to where it ends.
"""

from __future__ import annotations

import io
import re
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from corpus import bigtiff, receipt_images
from PIL import Image

from asyncpipe import Item
from stages._page import PageRef
from stages.inputs import InputError, discover, load_page
from stages.inputs._damage import jpeg_damage
from stages.inputs._tiff_cut import tiff_cut
from stages.pipeline import output_record


def _bgr(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _cut(path: Path, share: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: int(len(data) * share)])
    return cut


def _refs(path: Path) -> list[PageRef]:
    return list(discover([path]))


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
class TestTruncatedTiff:
    """A TIFF that ends early says so plainly, or gives the rows that arrived."""

    def test_directory_lost(self, sroie: Path, tmp_path: Path) -> None:
        """A compressed TIFF (its directory after its pixels, as libtiff writes it) cut in
        half says the file ends before the directory, not "Missing dimensions"."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.tif"
        first.save(whole, "TIFF", compression="tiff_deflate")
        cut = _cut(whole, 0.5)
        (ref,) = _refs(cut)
        size = cut.stat().st_size
        assert ref.problem is not None
        assert ref.problem.startswith(
            f"{cut}: truncated TIFF: the file ends at byte {size}, before its directory (at byte "
        )
        assert "nothing of the page can be read" in ref.problem
        with pytest.raises(InputError, match=r"cut-scan\.tif: truncated TIFF: the file ends"):
            load_page(ref)

    def test_second_page_directory_lost(self, sroie: Path, tmp_path: Path) -> None:
        """A two-page TIFF cut in its second page: the first is read whole, the second
        says the file ends before its directory."""
        first, second = receipt_images(sroie, 2)
        whole = tmp_path / "stack.tif"
        first.save(whole, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
        cut = _cut(whole, 0.75)
        one, two = _refs(cut)
        assert one.problem is None and two.problem is None
        page = load_page(one)
        assert page.image is not None and (page.image == _bgr(first)).all()
        assert "load" not in page.notes
        with pytest.raises(
            InputError,
            match=rf"cut-stack\.tif: truncated TIFF: the file ends at byte {cut.stat().st_size}, "
            r"before page 2's directory \(at byte \d+\)",
        ):
            load_page(two)

    def test_strips_that_arrived_are_read(self, sroie: Path, tmp_path: Path) -> None:
        """A TIFF with its directory first and its rows in strips (a scanner's way), cut in
        half, is read down to its last whole strip, and the page says how much was read;
        cut inside its first strip, it says so."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.tif"
        first.save(whole, "TIFF", tiffinfo={278: 64})  # 64 rows a strip
        cut = _cut(whole, 0.5)
        page = load_page(*_refs(cut))
        assert page.image is not None
        rows = page.image.shape[0]
        assert rows % 64 == 0 and 0.4 * first.height < rows < 0.5 * first.height
        assert (page.image == _bgr(first)[:rows]).all()
        assert page.notes["load"]["truncated"] == round(rows / first.height, 3)
        small = tmp_path / "small.tif"
        small.write_bytes(whole.read_bytes()[: 200 + 463 * 3 * 32])  # half its first strip
        with pytest.raises(
            InputError, match=r"small\.tif: truncated TIFF: .*its first strip \(rows 1 to 64\)"
        ):
            load_page(*_refs(small))

    def test_second_page_strips_are_read(self, sroie: Path, tmp_path: Path) -> None:
        """A two-page TIFF with its directories first, cut in its second page: the first
        page is read whole, the second down to its last whole strip."""
        first, second = receipt_images(sroie, 2)
        whole = tmp_path / "stack.tif"
        first.save(whole, "TIFF", save_all=True, append_images=[second], tiffinfo={278: 64})
        cut = _cut(whole, 0.8)
        one, two = _refs(cut)
        page = load_page(one)
        assert page.image is not None and (page.image == _bgr(first)).all()
        page = load_page(two)
        assert page.image is not None
        rows = page.image.shape[0]
        assert 0.5 * second.height < rows < 0.7 * second.height
        assert (page.image == _bgr(second)[:rows]).all()
        assert page.notes["load"]["truncated"] == round(rows / second.height, 3)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
class TestTruncatedBigTiff:
    """A BigTIFF that ends early is read down to its last whole strip, as a classic TIFF
    is (it was an error record: "cannot decode TIFF page 1: image file is truncated")."""

    @pytest.mark.parametrize("writer", ["pillow", "none", "deflate"])
    def test_the_strips_that_arrived_are_read(
        self, sroie: Path, tmp_path: Path, writer: str
    ) -> None:
        """A receipt saved as BigTIFF in strips of 64 rows (by Pillow, uncompressed, or
        with its strips stored plain or deflated) and cut at 30, 60 and 90 % of the file:
        its top strips are read, pixel for pixel the whole page's, and the page says what
        share of its rows it has."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.tif"
        if writer == "pillow":
            first.save(whole, "TIFF", big_tiff=True, tiffinfo={278: 64})
        else:
            whole.write_bytes(bigtiff([first], "<", 1 if writer == "none" else 8, 64))
        assert whole.read_bytes()[:4] == b"II+\x00"
        full = load_page(*_refs(whole)).image
        assert full is not None and np.array_equal(full, _bgr(first))
        for share in (0.3, 0.6, 0.9):
            page = load_page(*_refs(_cut(whole, share)))
            assert page.image is not None
            rows = page.image.shape[0]
            assert rows % 64 == 0 and share - 0.25 < rows / first.height < share
            assert np.array_equal(page.image, full[:rows])
            assert page.notes["load"]["truncated"] == round(rows / first.height, 3)

    @pytest.mark.parametrize("order", ["<", ">"])
    def test_both_byte_orders(self, sroie: Path, order: str) -> None:
        """Cut at 60 %, a BigTIFF of either byte order keeps its whole strips, the page
        as tall as they are: libtiff reads them as the uncut page's top rows.  (Pillow
        reads no big-endian BigTIFF, whole or not, so libtiff is asked here.)"""
        (first,) = receipt_images(sroie, 1)
        data = bigtiff([first], order, 8, 64)
        cut = tiff_cut(data[: len(data) * 6 // 10], 1)
        assert cut is not None and cut.readable is not None
        assert cut.reason.startswith(f"truncated TIFF: the file ends at byte {len(data) * 6 // 10}")
        full = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        read = cv2.imdecode(np.frombuffer(cut.readable, np.uint8), cv2.IMREAD_COLOR)
        assert full is not None and read is not None
        rows = read.shape[0]
        assert rows % 64 == 0 and cut.share == rows / first.height
        assert 0.4 < cut.share < 0.6
        assert np.array_equal(read, full[:rows])
        assert tiff_cut(data, 1) is None

    def test_second_page_strips_are_read(self, sroie: Path, tmp_path: Path) -> None:
        """A two-page BigTIFF cut in its second page: the first page is read whole, the
        second down to its last whole strip."""
        first, second = receipt_images(sroie, 2)
        whole = tmp_path / "stack.tif"
        whole.write_bytes(bigtiff([first, second], "<", 8, 64))
        one, two = _refs(_cut(whole, 0.8))
        page = load_page(one)
        assert page.image is not None and np.array_equal(page.image, _bgr(first))
        assert "load" not in page.notes
        page = load_page(two)
        assert page.image is not None
        rows = page.image.shape[0]
        assert 0.3 < rows / second.height < 0.8
        assert np.array_equal(page.image, _bgr(second)[:rows])

    def test_too_little_is_an_error_record(self, sroie: Path, tmp_path: Path) -> None:
        """Cut before its directory, inside it, inside its first strip or with under a
        tenth of its rows, a BigTIFF is an error record saying so, as a classic TIFF is."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.tif"
        whole.write_bytes(bigtiff([first], "<", 1, 64))
        strip = first.width * 3 * 64
        # The header, the directory, where the strips lie and their sizes: then the strips.
        pixels = 16 + 8 + 10 * 20 + 8 + 16 * -(-first.height // 64)
        assert first.height / 10 > 64  # so one strip is under a tenth of the rows
        for end, says in [
            (20, r"before its directory \(at byte 16\)"),
            (100, r"inside its directory \(at byte 16\); nothing of the page can be read"),
            (2000, r"its first strip \(rows 1 to 64\) did not arrive whole"),
            (pixels + strip * 3 // 2, r"with under 10% of the page in it"),  # one strip
        ]:
            cut = tmp_path / f"cut-{end}.tif"
            cut.write_bytes(whole.read_bytes()[:end])
            with pytest.raises(
                InputError, match=rf"cut-{end}\.tif: truncated TIFF: the file ends at byte {end}"
            ) as refused:
                load_page(*_refs(cut))
            assert re.search(says, str(refused.value)), refused.value


class TestTruncatedPng:
    """A PNG that ends early gives the rows that arrived whole, as a JPEG does."""

    @pytest.mark.parametrize("mode", ["RGB", "L", "P"])
    def test_the_rows_that_arrived_are_read(self, sroie: Path, tmp_path: Path, mode: str) -> None:
        """A receipt saved as PNG and cut at 30, 60 and 90 % of the file was an error
        record ("image file is truncated"): its top rows are read, pixel for pixel the
        whole page's, and the page says what share of them it has."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.png"
        first.convert(mode).save(whole, "PNG")
        full = load_page(_refs(whole)[0]).image
        assert full is not None
        for share in (0.3, 0.6, 0.9):
            cut = _cut(whole, share)
            page = load_page(_refs(cut)[0])
            assert page.image is not None
            read = page.notes["load"]["truncated"]
            assert share - 0.25 < read < 1
            assert page.image.shape[0] / full.shape[0] == pytest.approx(read, abs=0.002)
            assert np.array_equal(page.image, full[: page.image.shape[0]])
            assert "damaged" not in page.notes["load"]

    def test_at_ocr_size_too(self, sroie: Path, tmp_path: Path) -> None:
        """Shrunk for OCR (``max_side``), the part read says its scale, which takes its
        pixels back to the whole page's."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.png"
        first.save(whole, "PNG")
        page = load_page(_refs(_cut(whole, 0.5))[0], max_side=300)
        assert page.image is not None and page.scale < 1
        assert max(page.image.shape[:2]) <= 300
        assert page.image.shape[1] / page.scale == pytest.approx(first.width, rel=0.01)
        read = page.notes["load"]["truncated"]
        assert page.image.shape[0] / page.scale == pytest.approx(read * first.height, rel=0.01)

    def test_too_little_or_interlaced_is_an_error_record(self, sroie: Path, tmp_path: Path) -> None:
        """Under a tenth of the rows, or none (cut in its header), is an error that says
        the file ends early; an interlaced PNG, whose first bytes are no rows of the top,
        stays Pillow's error."""
        (first,) = receipt_images(sroie, 1)
        whole = tmp_path / "scan.png"
        first.save(whole, "PNG")
        for share in (0.003, 0.04):
            with pytest.raises(
                InputError, match=r"cannot decode PNG: the file ends early \(truncated\), "
            ):
                load_page(_refs(_cut(whole, share))[0])
        # Pillow writes no interlaced PNG: the header says so, which is what is looked at.
        data = whole.read_bytes()
        header = data[12:29][:-1] + b"\x01"
        woven = tmp_path / "woven.png"
        woven.write_bytes(data[:12] + header + zlib.crc32(header).to_bytes(4, "big") + data[33:])
        with pytest.raises(InputError, match=r"cannot decode PNG: ") as refused:
            load_page(_refs(_cut(woven, 0.6))[0])
        assert "ends early" not in str(refused.value)


def _garbled(source: Path, target: Path, seed: int, at: float = 0.6) -> Path:
    """``source`` with 64 random bytes written over its compressed data at ``at`` of it."""
    data = bytearray(source.read_bytes())
    start = int(len(data) * at)
    data[start : start + 64] = np.random.default_rng(seed).integers(0, 256, 64, np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


class TestGarbledJpeg:
    """A JPEG with bytes overwritten in the middle decodes whole, smeared below the damage:
    the page is read, and says it is damaged."""

    def test_the_receipts_as_scanned_are_not_damaged(self, sroie: Path) -> None:
        """No false alarm on any of the 40 real scans."""
        for path in sorted((sroie / "img").glob("*.jpg")):
            (ref,) = _refs(path)
            assert "damaged" not in load_page(ref, max_side=2000).notes.get("load", {}), path

    def test_bytes_overwritten_are_found(self, sroie: Path, tmp_path: Path) -> None:
        """Of ten development receipts garbled at 60 % of the file, libjpeg's warning is
        kept for those that decode; none is refused for it."""
        found = 0
        for number in range(0, 20, 2):
            path = _garbled(sroie / "img" / f"{number:03d}.jpg", tmp_path / f"{number}.jpg", 7)
            try:
                page = load_page(_refs(path)[0], max_side=2000)
            except InputError:
                continue  # damage Pillow cannot decode past: an error record, as before
            warning = page.notes.get("load", {}).get("damaged")
            assert warning is None or warning.startswith("libjpeg: Corrupt JPEG data"), warning
            found += warning is not None
        assert found >= 7

    def test_the_check_decodes_an_eighth_of_the_page(self, sroie: Path) -> None:
        """libjpeg's look at the data decodes the page at an eighth of its sides, as it
        says: a receipt whose header claims 8000 x 8000 pixels costs 1 MB there, not the
        64 MB of the whole page (``min_factor`` alone scaled nothing, and a header of
        60000 x 60000 took 3.5 GB)."""
        data = bytearray((sroie / "img" / "000.jpg").read_bytes())
        frame = data.index(b"\xff\xc0")  # the baseline frame: its height, then its width
        data[frame + 5 : frame + 9] = struct.pack(">HH", 8000, 8000)
        tracemalloc.start()
        try:
            warning = jpeg_damage(bytes(data))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert warning is not None and warning.startswith("Corrupt JPEG data")
        assert peak < 8_000_000, peak

    def test_a_jpeg_is_read_from_its_file_once(
        self, sroie: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Its decode and libjpeg's look at its data share one read of the file (they
        read it twice: the decode, then `jpeg_damage` again)."""
        path = sroie / "img" / "000.jpg"
        (ref,) = _refs(path)
        read: list[int] = []
        opened = Path.open

        class Counted(io.BufferedReader):
            def read(self, size: int | None = -1, /) -> bytes:
                data = super().read(size)
                read.append(len(data))
                return data

            def readinto(self, buffer: Any, /) -> int:
                count = super().readinto(buffer)
                read.append(count)
                return count

        def counted(self: Path, *args: Any, **kwargs: Any) -> Any:
            stream = opened(self, *args, **kwargs)
            if self == path and isinstance(stream, io.BufferedReader):
                raw = stream.detach()
                return Counted(raw)
            return stream

        monkeypatch.setattr(Path, "open", counted)
        load_page(ref, max_side=2000)
        assert sum(read) == path.stat().st_size

    def test_a_marker_in_the_picture_data_cuts_the_page_there(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """``FF 36`` written at 60 % of a receipt (a marker no picture data holds) stopped
        Pillow ("broken data stream"): the page was an error record.  It is read down to
        the marker, pixel for pixel the page's top; written near the start, too little is
        left and the error says why."""
        data = (sroie / "img" / "010.jpg").read_bytes()
        whole = load_page(_refs(sroie / "img" / "010.jpg")[0]).image
        assert whole is not None
        at = len(data) * 6 // 10
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(data[:at] + b"\xff\x36" + data[at + 2 :])
        page = load_page(_refs(broken)[0])
        assert page.notes["load"]["damaged"] == (
            f"a marker where picture data should be, at byte {at}"
        )
        assert 0.4 < page.notes["load"]["read"] < 0.8
        assert "truncated" not in page.notes["load"]
        assert page.image is not None
        rows = page.image.shape[0]
        assert rows / whole.shape[0] == pytest.approx(page.notes["load"]["read"], abs=0.01)
        # The last row of blocks, reached in part, may keep some of libjpeg's grey filler.
        assert np.array_equal(page.image[: rows - 16], whole[: rows - 16])
        early = tmp_path / "early.jpg"
        start = len(data) // 50
        early.write_bytes(data[:start] + b"\xff\x36" + data[start + 2 :])
        with pytest.raises(InputError, match=r"its data is damaged .* under 10% of its page"):
            load_page(_refs(early)[0])


class TestPillowWarnings:
    """Pillow's warnings about a damaged TIFF are not printed: a page's own become its
    record's warnings."""

    @staticmethod
    def _gradient() -> Image.Image:
        return Image.fromarray(np.tile(np.arange(0, 256, 2, dtype=np.uint8), (96, 1)))

    def test_a_cut_stack_prints_nothing(self, tmp_path: Path) -> None:
        """A two-page TIFF cut before its second page's directory: discovery counts its
        pages and the first loads, with no warning left to print."""
        whole = tmp_path / "stack.tif"
        first = self._gradient()
        first.save(whole, "TIFF", save_all=True, append_images=[first.rotate(180)])
        data = whole.read_bytes()
        (directory,) = struct.unpack_from("<I", data, 4)
        (entries,) = struct.unpack_from("<H", data, directory)
        (second,) = struct.unpack_from("<I", data, directory + 2 + 12 * entries)
        cut = tmp_path / "cut.tif"
        cut.write_bytes(data[:second])  # the file ends where the second page's directory starts
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            one, two = discover([cut])
            page = load_page(one)
            with pytest.raises(InputError, match=r"cut\.tif: "):
                load_page(two)
        assert [str(warning.message) for warning in seen] == []
        assert page.image is not None and "load" not in page.notes

    def test_a_damaged_tag_is_the_page_s_warning(self, tmp_path: Path) -> None:
        """A tag whose value lies past the file's end: the page loads whole, and what
        Pillow warned of is in its record's warnings, not printed."""
        image = self._gradient()
        buffer = io.BytesIO()
        image.save(buffer, "TIFF", tiffinfo={315: "A" * 40})  # Artist, after the strips'
        data = bytearray(buffer.getvalue())
        (ifd,) = struct.unpack_from("<I", data, 4)
        (count,) = struct.unpack_from("<H", data, ifd)
        tags = [struct.unpack_from("<H", data, ifd + 2 + 12 * n)[0] for n in range(count)]
        struct.pack_into("<I", data, ifd + 2 + 12 * tags.index(315) + 8, len(data) + 1000)
        damaged = tmp_path / "tag.tif"
        damaged.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            (ref,) = discover([damaged])
            page = load_page(ref)
        assert [str(warning.message) for warning in seen] == []
        assert page.image is not None
        assert (page.image.reshape(96, 128, -1)[:, :, 0] == np.asarray(image)).all()
        (warned,) = page.notes["load"]["pillow"]
        (warning,) = output_record(Item("p", 0, page))["warnings"]
        assert warning == f"decoder: Pillow warned while reading the page: {warned}"
