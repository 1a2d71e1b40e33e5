"""
A resumed run's inputs weighed against its output (stages._resumed): which earlier lines
an input replaced in place supersedes, and when.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncpipe import ConfigError
from stages import _resumed as resumed
from stages._page import PageRef
from stages._resumed import Changes, against_output, read_records
from stages.inputs import InputError, load_page


def ref(id: str, source: str) -> PageRef:
    return PageRef(id=id, source=source, page=1, kind="png")


def written(out: Path, lines: list[dict[str, str]]) -> None:
    """Make ``out`` an output holding ``lines``, one JSON line each."""
    out.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


class TestChanges:
    def test_an_old_line_waits_for_all_that_replace_it(self) -> None:
        """Each earlier line of a changed input is superseded by every id the walk gave
        that input: the output drops it once those are all written (round 27's
        re-check: a Ctrl-C during the resume left neither version)."""
        changes = Changes()
        changes.changed("r1/b.pdf", ["b.pdf#1@old", "b.pdf#2@old"])
        for page in (1, 2, 3):
            changes.walked(ref(f"b.pdf#{page}@new", "r1/b.pdf"))
        changes.walked(ref("c.pdf#1@same", "r1/c.pdf"))
        new = ["b.pdf#1@new", "b.pdf#2@new", "b.pdf#3@new"]
        assert changes.superseded() == {"b.pdf#1@old": new, "b.pdf#2@old": new}

    def test_an_id_still_walked_is_kept(self) -> None:
        """An earlier line whose id the walk still gives, under another path (the same
        content in a second folder, which discovery had skipped as a duplicate of the
        changed file), is kept: it is that input's line too (round 27's re-check lost
        its page, and the run said it was done)."""
        changes = Changes()
        changes.changed("r1/a.pdf", ["a.pdf#1@old"])
        changes.walked(ref("a.pdf#1@new", "r1/a.pdf"))
        changes.walked(ref("a.pdf#1@old", "r2/a.pdf"))
        assert changes.superseded() == {}


class TestEarlier:
    def test_the_output_is_read_once_for_the_ceiling_and_the_walk(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A resume under a cost ceiling asks for the ids written, then walks the inputs
        against the lines of each: one read of the output serves both (it was read
        twice, 0.5 s per 100,000 lines each)."""
        out = tmp_path / "out.jsonl"
        a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
        written(
            out,
            [
                {"id": "a.png#1@aaa", "source": a, "status": "ok"},
                {"id": "b.png#1@old", "source": b, "status": "ok"},
            ],
        )
        reads: list[Path] = []

        def counted(path: Path) -> Iterator[dict[str, Any]]:
            reads.append(path)
            return read_records(path)

        monkeypatch.setattr(resumed, "read_records", counted)
        changes = Changes()
        assert changes.written_ids(out) == {"a.png#1@aaa", "b.png#1@old"}
        walked = list(against_output([ref("a.png#1@aaa", a), ref("b.png#1@new", b)], out, changes))
        assert [page.id for page in walked] == ["a.png#1@aaa", "b.png#1@new"]
        assert changes.superseded() == {"b.png#1@old": ["b.png#1@new"]}
        assert reads == [out]

    def test_a_file_named_stdin_is_not_the_document_piped_before(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file named ``<stdin>`` given to a resume (its source ``./<stdin>``) is not
        the document piped into the run before (source ``<stdin>``): the piped page's
        line stays, where the file was taken for that document replaced in place and
        the line left the output."""
        monkeypatch.chdir(tmp_path)
        out = tmp_path / "out.jsonl"
        piped = {"id": "<stdin>#1@aaaaaaaaaaaa", "source": "<stdin>", "status": "ok"}
        written(out, [piped])
        changes = Changes()
        walked = list(against_output([ref("./<stdin>#1@bbb", "./<stdin>")], out, changes))
        assert [page.id for page in walked] == ["./<stdin>#1@bbb"]
        assert changes.superseded() == {}
        assert changes.written_ids(out) == {piped["id"]}

    def test_only_a_pdf_that_did_not_open_is_locked(self, tmp_path: Path) -> None:
        """A resume refuses to go on without the password of an encrypted PDF it read
        pages of (`PageRef.locked`), not of a file whose problem merely holds the words
        "encrypted PDF" (its name, here): that one is weighed as any input unreadable
        now, and its page read before is kept. It was told by those words, and the
        resume refused to go on.
        """
        out = tmp_path / "out.jsonl"
        named = str(tmp_path / "encrypted PDF scans")
        line = {"id": "x#1@aaaaaaaaaaaa", "source": named, "status": "ok"}
        written(out, [line])
        problem = f"{named}: cannot read: permission denied"
        unreadable = PageRef("x#1@cccccccccccc", named, 1, "pdf", problem)
        kept = [page.id for page in against_output([unreadable], out, Changes())]
        assert kept == ["x#1@aaaaaaaaaaaa"]  # the page written, which the run skips
        opened = {"id": "y#1@bbbbbbbbbbbb", "source": named + "2", "status": "ok"}
        written(out, [opened])
        locked = PageRef("y#1@bbbbbbbbbbbb", named + "2", 1, "pdf", "locked", locked=True)
        with pytest.raises(ConfigError, match="give --pdf-password-env again"):
            list(against_output([locked], out, Changes()))

    def test_an_input_unreadable_now_keeps_only_pages_read(self, tmp_path: Path) -> None:
        """An input discovery cannot read now is walked under its pages' earlier ids when
        the output holds a page of it as read, so the run finds them written and skips
        them (they were left out, and a resume of that input alone said "no input items
        found", exit 2); it is walked as it is when the output holds only its error
        records (those the new error record, or --retry-failed, replaces)."""
        out = tmp_path / "out.jsonl"
        read, failed = str(tmp_path / "read.png"), str(tmp_path / "failed.png")
        for path in (read, failed):
            Path(path).write_bytes(b"no image")  # there, but no document
        written(
            out,
            [
                {"id": "read.png#1@aaa", "source": read, "status": "ok"},
                {"id": "failed.png#1@bbb", "source": failed, "status": "error"},
            ],
        )
        problem = ": not a JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF file"
        refs = [
            PageRef("read.png#1@ccc", read, 1, "png", read + problem),
            PageRef("failed.png#1@ddd", failed, 1, "png", failed + problem),
        ]
        walked = list(against_output(refs, out, Changes()))
        assert [page.id for page in walked] == ["read.png#1@aaa", "failed.png#1@ddd"]


class TestUndecodable:
    def test_a_receipt_replaced_by_one_cut_short_keeps_its_page(
        self, tmp_path: Path, sroie: Path
    ) -> None:
        """A receipt read before, overwritten with its first 400 bytes (still a JPEG by
        its header, but no pixels decode), is walked under its page's earlier id, as an
        input discovery cannot read is: its load error record replaced the good line.
        One whose new bytes decode is read again, and replaces its line."""
        out = tmp_path / "out.jsonl"
        cut, other = str(tmp_path / "cut.jpg"), str(tmp_path / "other.jpg")
        whole = (sroie / "img" / "000.jpg").read_bytes()
        Path(cut).write_bytes(whole[:400])
        Path(other).write_bytes((sroie / "img" / "002.jpg").read_bytes())
        written(
            out,
            [
                {"id": "cut.jpg#1@aaa", "source": cut, "status": "ok"},
                {"id": "other.jpg#1@bbb", "source": other, "status": "ok"},
            ],
        )
        refs = [
            PageRef("cut.jpg#1@ccc", cut, 1, "jpeg"),
            PageRef("other.jpg#1@ddd", other, 1, "jpeg"),
        ]
        changes = Changes()
        walked = list(against_output(refs, out, changes, loads=load_page))
        assert [page.id for page in walked] == ["cut.jpg#1@aaa", "other.jpg#1@ddd"]
        assert changes.superseded() == {"other.jpg#1@bbb": ["other.jpg#1@ddd"]}
        ((source, (reason, pages)),) = changes.kept_inputs().items()
        assert (source, pages) == (cut, 1)
        assert reason.startswith("cannot decode JPEG")

    def test_an_input_is_kept_only_when_no_page_of_it_loads(self, tmp_path: Path) -> None:
        """The pages of an input replaced in place are tried in turn until one loads: a
        document whose first page is damaged but whose second loads is read again as it
        is now (its first page an error record); one no page of which loads keeps its
        pages from before."""
        out = tmp_path / "out.jsonl"
        some, none = str(tmp_path / "some.tif"), str(tmp_path / "none.tif")
        for path in (some, none):
            Path(path).write_bytes(b"II*\x00")  # there (`loads` says what decodes)
        written(
            out,
            [
                {"id": "some.tif#1@aaa", "source": some, "status": "ok"},
                {"id": "none.tif#1@bbb", "source": none, "status": "ok"},
                {"id": "none.tif#2@bbb", "source": none, "status": "ok"},
            ],
        )
        loadable = {"some.tif#2@ccc"}
        tried: list[str] = []

        def loads(page: PageRef) -> None:
            tried.append(page.id)
            if page.id not in loadable:
                raise InputError(f"{page.source}: cannot decode TIFF: frame {page.page} damaged")

        refs = [
            PageRef(f"{name}.tif#{page}@{digest}", source, page, "tiff")
            for name, source, digest in (("some", some, "ccc"), ("none", none, "ddd"))
            for page in (1, 2, 3)
        ]
        changes = Changes()
        walked = [page.id for page in against_output(refs, out, changes, loads=loads)]
        some_now = [f"some.tif#{page}@ccc" for page in (1, 2, 3)]
        assert walked == [*some_now, "none.tif#1@bbb", "none.tif#2@bbb"]
        assert tried == [
            "some.tif#1@ccc",
            "some.tif#2@ccc",
            *(f"none.tif#{p}@ddd" for p in (1, 2, 3)),
        ]
        assert changes.superseded() == {"some.tif#1@aaa": some_now}
        assert changes.kept_inputs() == {none: ("cannot decode TIFF: frame 1 damaged", 2)}

    def test_only_inputs_read_before_and_replaced_are_tried(self, tmp_path: Path) -> None:
        """An input unchanged, new, or whose earlier lines are all error records is not
        loaded by the walk (the load stage reads it once); its refs pass as they are."""
        out = tmp_path / "out.jsonl"
        same, failed = str(tmp_path / "same.png"), str(tmp_path / "failed.png")
        written(
            out,
            [
                {"id": "same.png#1@aaa", "source": same, "status": "ok"},
                {"id": "failed.png#1@bbb", "source": failed, "status": "error"},
            ],
        )
        tried: list[str] = []

        def loads(page: PageRef) -> None:
            tried.append(page.id)
            raise InputError(f"{page.source}: cannot decode PNG")

        refs = [
            ref("same.png#1@aaa", same),
            ref("failed.png#1@ccc", failed),
            ref("new.png#1@ddd", str(tmp_path / "new.png")),
        ]
        walked = [page.id for page in against_output(refs, out, Changes(), loads=loads)]
        assert walked == [page.id for page in refs]
        assert tried == []
