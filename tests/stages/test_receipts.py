"""Several receipts on one scan, side by side or one under the other: found, cut apart,
one ref each."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from clirun import run_cli
from PIL import Image

from asyncpipe import ConfigError, JournalError, RunOptions
from stages._page import Page, PageRef, centre_in
from stages._paper import _receipt_parts, find_receipts
from stages._resumed import Changes
from stages.app import _discovered, receipts_mode, stopped_before_reading
from stages.inputs import discover, load_page
from stages.inputs._receipts import FINDER_VERSION
from stages.offline import read_box_file
from stages.testing.flatbed import cafe_receipt, drawn, in_columns, invoice, note, side_by_side
from stages.testing.pdf import text_pdf


def _load(sroie: Path, stem: str) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(sroie / "img" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _print_of(sroie: Path, stem: str, corner: tuple[int, int]) -> list[list[float]]:
    """The ground-truth text boxes of a receipt laid with its corner at ``corner``."""
    return [
        [
            line.box[0] + corner[0],
            line.box[1] + corner[1],
            line.box[2] + corner[0],
            line.box[3] + corner[1],
        ]
        for line in read_box_file(sroie / "box" / f"{stem}.csv")
    ]


def _turned(box: list[float], width: int) -> list[float]:
    """A box on a page of ``width`` turned a quarter counter-clockwise."""
    x0, y0, x1, y1 = box
    return [y0, width - x1, y1, width - x0]


class TestFindReceipts:
    """Real receipts laid side by side, and single receipts left whole."""

    @pytest.mark.parametrize("stems", [("000", "002"), ("004", "006", "008"), ("030", "032")])
    @pytest.mark.parametrize("turned", [False, True])
    def test_each_receipt_holds_its_own_print(
        self, sroie: Path, stems: tuple[str, ...], turned: bool
    ) -> None:
        """Every ground-truth line of a receipt lies in its box and in no other; on the
        page turned a quarter, the boxes lie one above the other."""
        page, placed = side_by_side([_load(sroie, stem) for stem in stems])
        width = page.shape[1]
        if turned:
            page = np.ascontiguousarray(cv2.rotate(page, cv2.ROTATE_90_COUNTERCLOCKWISE))
        found = find_receipts(page)
        assert len(found) == len(stems)
        for index, (stem, (x0, y0, _, _)) in enumerate(zip(stems, placed, strict=True)):
            for box in _print_of(sroie, stem, (x0, y0)):
                if turned:
                    box = _turned(box, width)
                # Turned counter-clockwise, the first receipt lies at the bottom.
                mine = len(stems) - 1 - index if turned else index
                holders = [k for k, area in enumerate(found) if centre_in(box, area)]
                assert holders == [mine], (stem, box, found)

    @pytest.mark.parametrize(
        "columns",
        [(("030", "032"),), (("000", "002"), ("004", "006"))],
        ids=["2 in a column", "4 in 2 columns"],
    )
    @pytest.mark.parametrize("turned", [False, True])
    def test_receipts_one_under_the_other(
        self, sroie: Path, columns: tuple[tuple[str, ...], ...], turned: bool
    ) -> None:
        """Receipts laid in columns, one under the other a quarter of the widest apart:
        every ground-truth line of a receipt lies in its box and in no other, column by
        column and top to bottom when upright."""
        page, placed = in_columns(
            [[_load(sroie, stem) for stem in column] for column in columns], gap=0.25
        )
        width = page.shape[1]
        if turned:
            page = np.ascontiguousarray(cv2.rotate(page, cv2.ROTATE_90_COUNTERCLOCKWISE))
        found = find_receipts(page)
        stems = [stem for column in columns for stem in column]
        assert len(found) == len(stems)
        owners: list[int] = []
        for stem, (x0, y0, _, _) in zip(stems, placed, strict=True):
            holders = {
                k
                for box in _print_of(sroie, stem, (x0, y0))
                for k, area in enumerate(found)
                if centre_in(_turned(box, width) if turned else box, area)
            }
            assert len(holders) == 1, (stem, holders, found)
            owners += holders
        assert sorted(owners) == list(range(len(stems)))
        if not turned:
            assert owners == list(range(len(stems)))

    @pytest.mark.parametrize(("blank", "parts"), [(3, 0), (7, 2)])
    def test_blank_rows_part_a_column_only_when_wide(self, blank: int, parts: int) -> None:
        """Print with a few blank rows inside is one receipt; 7 blank rows (wider than a
        receipt's blank lines, as wide as two receipts' margins) part two."""
        block = [[(30, f"ITEM NUMBER {n}"), (400, f"{2.5 * n:6.2f}")] for n in range(1, 13)]
        page = drawn([*block, *[[]] * blank, *block])
        assert len(find_receipts(page)) == parts

    @pytest.mark.parametrize("name", ["card slip", "invoice footer", "clinic header", "barcode"])
    def test_a_blank_inside_one_document_does_not_part_it(self, name: str) -> None:
        """Blanks of 5 rows and more inside single documents, with a short block on one
        side (a card slip's signature and the lines under it, an invoice's footer, a
        clinic's header) or a barcode (tall bars, no rows) across: not cut."""
        items = [[(20, f"ITEM {n} NASI LEMAK"), (330, f"{2.5 * n:6.2f}")] for n in range(1, 13)]
        short = [[(20, line)] for line in ("X______________", "TAN AH KOW", "I AGREE TO PAY")]
        short += [[(20, "THE ABOVE TOTAL")], [(60, "MERCHANT COPY")], [(90, "THANK YOU")]]
        if name == "barcode":
            bars = np.full((140, 420, 3), 255, np.uint8)
            for x in range(60, 360, 7):
                bars[:, x : x + 2 + x % 3] = 0
            page = np.vstack([drawn(items, 420), bars, drawn(short, 420)])
        else:
            blank: list[list[tuple[int, str]]] = [[]] * (12 if name == "invoice footer" else 6)
            rows = [*short, *blank, *items] if name == "clinic header" else [*items, *blank, *short]
            page = drawn(rows, width=420)
        assert find_receipts(page) == []
        if name != "barcode":  # the same blank between two receipts' worth of rows: two
            assert len(find_receipts(drawn([*items, *blank, *items], width=420))) == 2

    def test_a_halftone_logo_does_not_shrink_the_print(self, sroie: Path) -> None:
        """A logo of 2-pixel dots above a receipt is no print: the receipt's rows and its
        blank lines are measured on its letters (the dots once made it 3 parts)."""
        receipt = _load(sroie, "000")
        logo = np.full((150, receipt.shape[1], 3), 255, np.uint8)
        middle = receipt.shape[1] // 2
        for y in range(10, 130, 5):
            for x in range(middle - 60, middle + 60, 5):
                if (y - 70) ** 2 + (x - middle) ** 2 < 58**2:
                    logo[y : y + 2, x : x + 2] = 0
        assert find_receipts(np.vstack([logo, receipt])) == []

    @pytest.mark.parametrize(
        "turn", [None, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE]
    )
    def test_a_single_receipt_is_left_whole(self, sroie: Path, turn: int | None) -> None:
        """None of the 40 scans is split, upright, upside down or sideways."""
        for path in sorted((sroie / "img").glob("*.jpg")):
            image = _load(sroie, path.stem)
            if turn is not None:
                image = np.ascontiguousarray(cv2.rotate(image, turn))
            assert find_receipts(image) == [], path.stem

    @pytest.mark.parametrize("name", ["cafe", "cafe, header at the left", "invoice"])
    def test_columns_of_one_document_are_not_receipts(self, name: str) -> None:
        """A blank band from top to bottom between columns that print on the same rows
        (items and amounts, bill-to and ship-to) does not cut the document."""
        page = {
            "cafe": cafe_receipt(),
            "cafe, header at the left": cafe_receipt(30),
            "invoice": invoice(),
        }[name]
        assert find_receipts(page) == []

    def test_drawn_receipts_side_by_side_are_cut(self) -> None:
        """Two such receipts side by side, the second half a row lower, are two."""
        first = cafe_receipt()
        second = np.vstack([np.full((15, first.shape[1], 3), 255, np.uint8), first])
        page, placed = side_by_side([first, second], stagger=0)
        found = find_receipts(page)
        assert len(found) == 2
        assert all(centre_in(list(box), area) for box, area in zip(placed, found, strict=True))

    def test_a_note_beside_a_receipt_is_no_receipt(self, sroie: Path) -> None:
        """Four lines written beside a receipt are not a second receipt."""
        receipt = _load(sroie, "002")
        page, _ = side_by_side([receipt, note()])
        assert find_receipts(page) == []

    def test_on_a_dark_table(self, sroie: Path) -> None:
        """Receipts on a dark table are found too: the table's edges are no print."""
        page, placed = side_by_side([_load(sroie, "000"), _load(sroie, "002")])
        page[page == 246] = 60
        found = find_receipts(page)
        assert len(found) == 2
        for (x0, y0, x1, y1), area in zip(placed, found, strict=True):
            assert centre_in([x0, y0, x1, y1], area)

    def test_parts_that_are_no_receipts_are_joined(self) -> None:
        """A narrow column beside the items is joined to them; so is a wide one whose rows
        are the items' rows (columns of one document); a wide one printed on rows of its own
        (another receipt) stays apart."""

        def block(x0: int, x1: int, offset: int) -> list[list[int]]:
            return [[x, offset + y * 20, 8, 10] for y in range(30) for x in range(x0, x1, 12)]

        items = block(0, 300, 0)
        narrow = np.asarray([*items, *block(400, 460, 10)], dtype=np.int32)
        assert _receipt_parts(narrow, [(0, 296), (400, 456)], 10.0) == [(0, 456)]
        aligned = np.asarray([*items, *block(400, 700, 0)], dtype=np.int32)
        assert _receipt_parts(aligned, [(0, 296), (400, 692)], 10.0) == [(0, 692)]
        apart = np.asarray([*items, *block(400, 700, 10)], dtype=np.int32)
        assert _receipt_parts(apart, [(0, 296), (400, 692)], 10.0) == [(0, 296), (400, 692)]


class TestDiscovery:
    """``discover(receipts=True)`` gives one ref per receipt; ``load_page`` cuts it out."""

    def test_refs_and_regions(self, sroie: Path, tmp_path: Path) -> None:
        page, placed = side_by_side([_load(sroie, "000"), _load(sroie, "002")])
        cv2.imwrite(str(tmp_path / "two.jpg"), page)
        (tmp_path / "one.jpg").symlink_to(sroie / "img" / "004.jpg")
        plain = list(discover([tmp_path]))
        refs = list(discover([tmp_path], receipts=True))
        assert [ref.receipt for ref in refs] == [None, (1, 2), (2, 2)]
        assert refs[0] == plain[0]  # a single receipt keeps its id
        name, _, digest = plain[1].id.rpartition("@")
        assert [ref.id for ref in refs[1:]] == [f"{name}.1@{digest}", f"{name}.2@{digest}"]
        h, w = page.shape[:2]
        for ref, (x0, y0, x1, y1) in zip(refs[1:], placed, strict=True):
            assert ref.region is not None
            loaded = load_page(ref)
            assert loaded.image is not None
            rx0, ry0, rx1, ry1 = loaded.notes["load"]["region"]
            assert rx0 <= x0 and x1 <= rx1 and ry0 <= y0 and y1 <= ry1
            assert loaded.image.shape[:2] == (ry1 - ry0, rx1 - rx0)
            # Decoded small, the region is the same part of the page.
            small = load_page(ref, max_side=800)
            assert small.notes["load"]["region"] == pytest.approx([rx0, ry0, rx1, ry1], abs=3)
            # What a journal keeps of the page brings the receipt back.
            again = Page.from_json(Page(ref=ref).to_json()).ref
            assert again == ref and again.region == ref.region
        assert w > 0 and h > 0

    def test_a_receipt_gets_the_pixels_of_a_page_of_its_own(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """A page too large to decode whole, whose receipts are not, gives each receipt at
        full size; read whole, the page would be shrunk."""
        page, _ = side_by_side([_load(sroie, "000"), _load(sroie, "002")])
        cv2.imwrite(str(tmp_path / "two.jpg"), page)
        refs = list(discover([tmp_path / "two.jpg"], receipts=True))
        limit = page.shape[0] * page.shape[1] * 2 // 3  # the page is over, a half is under
        whole = load_page(refs[0], max_side=200, whole_pixels=limit).image
        assert whole is not None
        x0, y0, x1, y1 = load_page(refs[0]).notes["load"]["region"]
        assert whole.shape[:2] == (y1 - y0, x1 - x0)
        page_ref = next(iter(discover([tmp_path / "two.jpg"])))
        shrunk = load_page(page_ref, max_side=200, whole_pixels=limit).image
        assert shrunk is not None and max(shrunk.shape[:2]) < max(page.shape[:2])

    def test_a_scanned_pdf_page_is_cut_and_a_text_page_is_not(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """A scanner's PDF: its page of two receipts gives two refs, its page of one a
        single ref; a page that shows its own text is read whole."""
        page, placed = side_by_side([_load(sroie, "000"), _load(sroie, "002")])
        scans = [
            Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            for image in (page, _load(sroie, "004"))
        ]
        scans[0].save(
            tmp_path / "scans.pdf", save_all=True, append_images=scans[1:], resolution=150
        )
        refs = list(discover([tmp_path / "scans.pdf"], receipts=True))
        assert [(ref.page, ref.receipt) for ref in refs] == [(1, (1, 2)), (1, (2, 2)), (2, None)]
        whole = load_page(next(iter(discover([tmp_path / "scans.pdf"])))).image
        assert whole is not None
        scale = whole.shape[1] / page.shape[1]  # the page renders at 200 dpi, the scan's 150
        for ref, (x0, _, x1, _) in zip(refs, placed, strict=False):
            loaded = load_page(ref)
            assert loaded.image is not None
            rx0, _, rx1, _ = loaded.notes["load"]["region"]
            # The region is in the pixels of the page as rendered.
            assert rx0 <= x0 * scale and x1 * scale <= rx1
        # Two e-receipts' text side by side on one page: it shows its own text, so it is
        # read whole (its lines lie on the whole page).
        rows = [
            (f"ITEM {row:02d} MAJU JAYA 12.30", x, 30 + 14 * row, 10)
            for row in range(30)
            for x in (20, 330)
        ]
        text_pdf(tmp_path / "text.pdf", rows, 600, 480)
        (ref,) = discover([tmp_path / "text.pdf"], receipts=True)
        assert ref.receipt is None

    def test_an_unreadable_page_stays_one_ref(self, tmp_path: Path) -> None:
        """A corrupt scan is not looked into: its one ref fails at load with the reason."""
        (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
        refs = list(discover([tmp_path], receipts=True))
        assert len(refs) == 1 and refs[0].receipt is None

    def test_old_journal_refs_load(self) -> None:
        """A ref journaled before receipts existed (no ``receipt`` key) reads back whole."""
        ref = PageRef.from_json(
            {"id": "a.jpg#1@0", "source": "a.jpg", "page": 1, "kind": "jpeg", "problem": None}
        )
        assert ref.receipt is None and ref.region is None


class TestResumeMode:
    """A resumed run reads scans as it started (`stages.app.receipts_mode`)."""

    def test_modes(self, tmp_path: Path) -> None:
        journal = tmp_path / "out.jsonl.journal"
        assert receipts_mode(journal, resume=False, whole=False) is True
        assert receipts_mode(journal, resume=False, whole=True) is False
        # A journal of a release that read every page whole has no mode beside it.
        assert receipts_mode(journal, resume=True, whole=False) is False
        kept = journal.with_name(journal.name + ".receipts")
        kept.write_text(json.dumps({"receipts": True, "finder": FINDER_VERSION}))
        assert receipts_mode(journal, resume=True, whole=False) is True
        with pytest.raises(ConfigError, match="without --whole-pages"):
            receipts_mode(journal, resume=True, whole=True)
        kept.write_text(json.dumps({"receipts": True, "finder": FINDER_VERSION + 1}))
        with pytest.raises(ConfigError, match="may cut scans differently"):
            receipts_mode(journal, resume=True, whole=False)
        kept.write_text(json.dumps({"receipts": False, "finder": FINDER_VERSION}))
        assert receipts_mode(journal, resume=True, whole=False) is False

    def test_a_mode_that_cannot_be_kept_stops_the_run(self, tmp_path: Path) -> None:
        """A run that cannot write its mode beside the journal stops before reading a page:
        without it, a resume would read every scan whole."""
        page = tmp_path / "in" / "a.png"
        page.parent.mkdir()
        cv2.imwrite(str(page), np.full((40, 40, 3), 255, np.uint8))
        journal = tmp_path / "out.jsonl.journal"
        # A folder in the file's place: replacing it fails as a full disk would.
        (journal.with_name(journal.name + ".receipts") / "x").mkdir(parents=True)
        options = RunOptions(inputs=[str(page.parent)], out=tmp_path / "out.jsonl", journal=journal)
        pages = _discovered(
            options, lambda path, reason: None, receipts=True, keep=True, changes=Changes()
        )
        with pytest.raises(JournalError, match="cannot keep how this run reads scans"):
            next(pages)


class TestStoppedBeforeReading:
    """A resume of a run stopped before it asked for its first page reads scans as a start
    does (`stages.app.stopped_before_reading`): it kept no mode beside its journal, and a
    missing mode means a version that read every page whole."""

    def test_what_counts_as_stopped_before_reading(self, tmp_path: Path) -> None:
        journal, out = tmp_path / "out.jsonl.journal", tmp_path / "out.jsonl"
        assert stopped_before_reading(journal, out)  # nothing at all
        journal.write_bytes(b'{"ev":"start","at":1.0,"stages":["load","ocr"]}\n')
        out.write_bytes(b"")
        assert stopped_before_reading(journal, out)
        with journal.open("ab") as fh:
            fh.write(b'{"ev":"ckpt","k":"a","s":"load","fp":"x","out":1}\n')
        assert not stopped_before_reading(journal, out)  # it read a page
        journal.write_bytes(b'{"ev":"start","at":1.0,"stages":["load"]}\n{"ev":"ck')
        assert not stopped_before_reading(journal, out)  # a torn line was something
        journal.write_bytes(b'{"ev":"start","at":1.0,"stages":["load"]}\n')
        out.write_bytes(b'{"id":"a.png#1"}\n')
        assert not stopped_before_reading(journal, out)  # it wrote a page
        out.write_bytes(b"")
        journal.with_name(journal.name + ".receipts").write_text("{}")
        assert not stopped_before_reading(journal, out)  # its mode is kept

    def test_its_resume_cuts_scans_and_keeps_the_mode(self, tmp_path: Path) -> None:
        """Two receipts side by side are two pages in the resume, and the mode is kept for
        the next; the resume read the scan whole, as one page, and kept no mode."""
        first = cafe_receipt()
        second = np.vstack([np.full((15, first.shape[1], 3), 255, np.uint8), first])
        page, _ = side_by_side([first, second], stagger=0)
        folder = tmp_path / "in"
        folder.mkdir()
        cv2.imwrite(str(folder / "scan.png"), page)
        out = tmp_path / "out.jsonl"
        journal = out.with_name(out.name + ".journal")
        done = run_cli(folder, "--out", out, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(out.read_bytes().splitlines()) == 2
        # The disk as a run stopped before its first page leaves it: the output opened
        # empty, the journal its start line, nothing kept beside it.
        journal.write_bytes(journal.read_bytes().splitlines(keepends=True)[0])
        assert b'"ev":"start"' in journal.read_bytes()
        out.write_bytes(b"")
        journal.with_name(journal.name + ".receipts").unlink()
        done = run_cli(folder, "--out", out, "--resume", timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(out.read_bytes().splitlines()) == 2
        kept = json.loads(journal.with_name(journal.name + ".receipts").read_text())
        assert kept["receipts"] is True
