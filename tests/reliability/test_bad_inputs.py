"""
A corpus of bad inputs, generated here, run end to end through the CLI: each bad file
gives one clear error record naming the file and the reason, and every good file of the
same run still completes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from corpus import blank_pdf, bomb_png, corrupt_pdf, encrypted_pdf
from reliability_helpers import (
    RECEIPTS,
    cli_env,
    count_lines,
    make_receipt,
    read_lines,
    run_cli,
    spawn_cli,
)

GOOD = ["good.png", "with space.png", "ünïcødé €.png", "new\nline.png"]

# name → the words its error message must hold (besides the file name).
BAD: dict[str, tuple[str, ...]] = {
    "truncated.jpg": ("truncated",),
    "empty.jpg": ("empty file",),
    "notes.png": ("not a JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF",),
    "bomb.png": ("30000x30000", "decompression bomb"),
    "locked.pdf": ("encrypted PDF",),
    "corrupt.pdf": ("corrupt",),
}


def build_corpus(folder: Path) -> None:
    """Write the good and bad files, a blank PDF, an unreadable file and a symlink loop."""
    for i, name in enumerate(GOOD):
        make_receipt(folder / name, list(RECEIPTS.values())[i])
    jpeg = make_receipt(folder / "whole.jpg.tmp.jpg", list(RECEIPTS.values())[4])
    data = jpeg.read_bytes()
    jpeg.unlink()
    (folder / "truncated.jpg").write_bytes(data[: data.index(b"\xff\xda") + 200])
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("these are my notes, not an image\n")
    bomb_png(folder / "bomb.png")
    encrypted_pdf(folder / "locked.pdf")
    corrupt_pdf(folder / "corrupt.pdf")
    blank_pdf(folder / "blank.pdf")
    make_receipt(folder / "private.png", list(RECEIPTS.values())[5]).chmod(0)
    (folder / "sub").mkdir()
    (folder / "sub" / "loop").symlink_to("..", target_is_directory=True)


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(r["source"]).name: r for r in records}


class TestBadInputs:
    """One error record per bad file; the good files of the same run are unaffected."""

    def test_corpus(self, tmp_path: Path) -> None:
        """Each bad file → one error record naming it and the reason; good files → ok."""
        folder = tmp_path / "in"
        build_corpus(folder)
        out = tmp_path / "out" / "r.jsonl"
        good = folder / "good.png"
        # The folder, plus one of its files given twice more: processed once.
        result = run_cli(
            ["run", str(folder), str(good), str(good), "--out", str(out), "--progress", "none"],
            log=tmp_path / "cli.log",
        )
        assert result.returncode == 0, result.output
        records, torn = read_lines(out)
        assert torn == 0
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids))
        names = _by_name(records)
        # Every file once: good, bad, blank, private; the symlink loop adds nothing.
        assert sorted(names) == sorted([*GOOD, *BAD, "blank.pdf", "private.png", "cut.jpg"])
        assert len(records) == len(names)
        for i, name in enumerate(GOOD):
            assert names[name]["status"] == "ok", names[name]
            assert list(RECEIPTS.values())[i][0] in names[name]["text"]
        # Half a JPEG: its top half is read, and the record says it is truncated.
        cut = names["cut.jpg"]
        assert cut["status"] == "ok" and cut["warnings"][0].startswith("truncated: "), cut
        assert list(RECEIPTS.values())[4][0].split()[0] in cut["text"]
        blank = names["blank.pdf"]
        assert blank["status"] == "ok" and blank["text"] == "", blank
        for name, words in BAD.items():
            record = names[name]
            assert record["status"] == "error", record
            error = record["error"]
            assert error["stage"] == "load"
            assert error["type"] == "InputError"
            assert error["message"].startswith(str(folder / name)), error
            for word in words:
                assert word in error["message"], error
            assert "Traceback" not in error["message"]
        private = names["private.png"]
        if os.geteuid() == 0:
            # Root reads a mode-000 file anyway: the honest result is a normal page.
            assert private["status"] == "ok", private
        else:
            assert private["status"] == "error"
            assert "permission denied" in private["error"]["message"]
        assert "Traceback" not in result.output
        # The odd names come back exactly, newline included.
        assert str(folder / "new\nline.png") in {r["source"] for r in records}

    def test_empty_folder(self, tmp_path: Path) -> None:
        """An empty input folder: a clear message and exit code 2, as documented, said
        once; and before the output is opened, so --overwrite keeps an earlier run's
        lines (helper-89's check: a share not mounted emptied them)."""
        folder = tmp_path / "empty"
        folder.mkdir()
        out = tmp_path / "r.jsonl"
        out.write_text('{"id": "earlier", "status": "ok"}\n')
        result = run_cli(
            ["run", str(folder), "--out", str(out), "--progress", "none", "--overwrite"],
            log=tmp_path / "cli.log",
        )
        assert result.returncode == 2, result.output
        assert result.output.count(f"no documents found in: {folder}") == 1, result.output
        assert "Traceback" not in result.output
        records, _ = read_lines(out)
        assert [record["id"] for record in records] == ["earlier"]

    def test_resume_after_the_inputs_are_gone(self, tmp_path: Path) -> None:
        """--resume of a run whose input folder is gone (moved, a share not mounted):
        exit 2, saying so, and the output as it was (round 23's audit: an error record
        for the folder was appended to a finished run's output)."""
        folder = tmp_path / "in"
        make_receipt(folder / "good.png", RECEIPTS["kedai.png"])
        out = tmp_path / "r.jsonl"
        args = ["run", str(folder), "--out", str(out), "--progress", "none"]
        assert run_cli(args, log=tmp_path / "cli.log").returncode == 0
        before = out.read_bytes()
        (folder / "good.png").unlink()
        folder.rmdir()
        result = run_cli([*args, "--resume"], log=tmp_path / "cli.log")
        assert result.returncode == 2, result.output
        assert f"nothing to read: {folder}: no such file or directory" in result.output
        assert f"nothing written: {out} is as it was" in result.output
        assert out.read_bytes() == before

    def test_resume_after_one_finished_input_is_gone(self, tmp_path: Path) -> None:
        """--resume after one named file, already read, was moved away: the output keeps
        its finished line and gains no error line; a gone file that was never read is
        an error record (round 24's audit: the finished file came back as an error
        record, its key being made from content no longer there)."""
        folder = tmp_path / "in"
        make_receipt(folder / "a.png", RECEIPTS["kedai.png"])
        make_receipt(folder / "b.png", RECEIPTS["kedai.png"][1:])
        out = tmp_path / "r.jsonl"
        args = ["run", str(folder / "a.png"), str(folder / "b.png")]
        tail = ["--out", str(out), "--progress", "none"]
        assert run_cli([*args, *tail], log=tmp_path / "cli.log").returncode == 0
        before = out.read_bytes()
        (folder / "b.png").unlink()
        never = folder / "c.png"
        # The gone file named another way than before (round 25's re-check: only the
        # same spelling was recognised).
        again = ["run", str(folder / "a.png"), str(folder / ".." / "in" / "b.png"), str(never)]
        result = run_cli([*again, *tail, "--resume"], log=tmp_path / "cli.log")
        assert f"{folder / '..' / 'in' / 'b.png'} is gone; the output has its pages" in (
            result.output
        )
        records, _ = read_lines(out)
        assert out.read_bytes().startswith(before)
        assert [(r["source"], r["status"]) for r in records] == [
            (str(folder / "a.png"), "ok"),
            (str(folder / "b.png"), "ok"),
            (str(never), "error"),
        ]

    def test_resume_after_finished_inputs_changed(self, tmp_path: Path) -> None:
        """--resume after two files, already read, were replaced in place (same path, new
        content) while the run was down before its last page: each is read again and its
        new line replaces the old one, the unchanged file's line stays as it was, the
        unfinished page is written once, and the log names the changed files (audit
        F5: both lines stayed, the old content's beside the new, with no word)."""
        folder = tmp_path / "in"
        names = ["a.png", "b.png", "c.png", "d.png"]
        texts = [RECEIPTS["kedai.png"], RECEIPTS["restoran.png"], RECEIPTS["kopi.png"]]
        for name, text in zip(names, [*texts, RECEIPTS["buku.png"]], strict=True):
            make_receipt(folder / name, text)
        out = tmp_path / "r.jsonl"
        args = ["run", str(folder), "--out", str(out), "--progress", "none"]
        assert run_cli(args, log=tmp_path / "cli.log").returncode == 0
        # A crash before d.png's line reached the disk: the output is the record of what
        # is done, so the resume writes it.
        lines = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(lines[:3]))
        make_receipt(folder / "b.png", RECEIPTS["farmasi.jpg"])
        make_receipt(folder / "c.png", RECEIPTS["hardware.png"])
        result = run_cli([*args, "--resume"], log=tmp_path / "cli.log")
        assert result.returncode == 0, result.output
        records, torn = read_lines(out)
        assert torn == 0
        assert out.read_bytes().startswith(lines[0])
        assert sorted(Path(r["source"]).name for r in records) == names
        read = {Path(r["source"]).name: r["text"] for r in records}
        assert "FARMASI" in read["b.png"] and "BESI" in read["c.png"], read
        for name in ("b.png", "c.png"):
            assert f"{folder / name} changed since its pages were written" in result.output
        assert "a.png changed" not in result.output
        # Done: a resume now reads nothing again and keeps every line.
        again = run_cli([*args, "--resume"], log=tmp_path / "cli.log")
        assert again.returncode == 0, again.output
        assert "changed since" not in again.output
        assert read_lines(out)[0] == records

    def test_resume_keeps_finished_pages_of_inputs_now_unreadable(self, tmp_path: Path) -> None:
        """SIGKILL once two pages are written; then one of those files is overwritten
        with bytes that are no document and the other becomes a symbolic link whose file
        is gone.  The resume keeps both pages as read, adds no error record beside
        them, names both, and finishes the rest (round 27 left these: the bytes' error
        record replaced the good line, and the link's joined it)."""
        folder = tmp_path / "in"
        names = [f"{letter}.png" for letter in "abcdefgh"]
        texts = [*RECEIPTS.values()] * 2
        for name, text in zip(names, texts, strict=False):
            make_receipt(folder / name, text)
        out, log = tmp_path / "r.jsonl", tmp_path / "cli.log"
        args = ["run", str(folder), "--out", str(out), "--progress", "none"]
        run = spawn_cli([*args, "--workers", "ocr=1"], log=log)
        try:
            deadline = time.monotonic() + 100
            while count_lines(out) < 2 and run.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.02)
        finally:
            run.kill()
            run.wait()
        assert run.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        before = {Path(r["source"]).name: r for r in read_lines(out)[0]}
        assert {"a.png", "b.png"} <= set(before), before
        (folder / "a.png").write_bytes(b"these bytes are no image\n" * 40)
        (folder / "b.png").unlink()
        (folder / "b.png").symlink_to(tmp_path / "moved" / "b.png")
        result = run_cli([*args, "--resume"], log=log)
        assert result.returncode == 0, result.output
        records, torn = read_lines(out)
        assert torn == 0
        assert sorted(Path(r["source"]).name for r in records) == names
        after = {Path(r["source"]).name: r for r in records}
        assert after["a.png"] == before["a.png"] and after["b.png"] == before["b.png"]
        assert [r["status"] for r in records] == ["ok"] * len(names)
        for name in ("a.png", "b.png"):
            assert f"{folder / name} cannot be read now" in result.output
        assert "broken symbolic link" in result.output
        # A resume again changes nothing.
        again = run_cli([*args, "--resume"], log=log)
        assert again.returncode == 0, again.output
        assert read_lines(out)[0] == records
        # The unreadable file alone: its page is written, so skipped (it was left out,
        # and the resume said "no input items found", exit 2; hK's review).
        alone = [*args[:1], str(folder / "a.png"), *args[2:], "--resume"]
        only = run_cli(alone, log=log)
        assert only.returncode == 0, only.output
        assert "1 skipped (written by an earlier run)" in only.output
        assert read_lines(out)[0] == records

    def test_missing_input(self, tmp_path: Path) -> None:
        """A path that does not exist is an error record, not a crash; others still run."""
        folder = tmp_path / "in"
        make_receipt(folder / "good.png", RECEIPTS["kedai.png"])
        out = tmp_path / "r.jsonl"
        missing = tmp_path / "nope.jpg"
        result = run_cli(
            ["run", str(folder), str(missing), "--out", str(out), "--progress", "none"],
            log=tmp_path / "cli.log",
        )
        assert result.returncode == 0, result.output
        records, _ = read_lines(out)
        by_status = {r["status"]: r for r in records}
        assert set(by_status) == {"ok", "error"}
        assert by_status["error"]["error"]["message"] == f"{missing}: no such file or directory"

    def test_nothing_there_at_all(self, tmp_path: Path) -> None:
        """When no input is there (a mistyped path, a pattern that matches nothing), the
        command is wrong: exit 2, each named, nothing written (round 23's audit: exit 0
        and an error record)."""
        out = tmp_path / "r.jsonl"
        typo, pattern = tmp_path / "recipts", tmp_path / "none" / "*.jpg"
        result = run_cli(
            ["run", str(typo), str(pattern), "--out", str(out), "--progress", "none"],
            log=tmp_path / "cli.log",
        )
        assert result.returncode == 2, result.output
        assert f"{typo}: no such file or directory" in result.output
        assert f"{pattern}: no file matches this pattern" in result.output
        assert "Traceback" not in result.output
        assert not out.exists()

    def test_names_that_are_not_utf8(self, tmp_path: Path) -> None:
        """Latin-1 file names (from a Windows zip or share), a good one and a truncated
        one, beside a good UTF-8 one: one record each, the names shown with ``\\xNN``;
        a resumed run finds them done (the run used to stop on the journal's first line)."""
        folder = tmp_path / "in"
        make_receipt(folder / os.fsdecode(b"re\xe7u.png"), RECEIPTS["kedai.png"])
        make_receipt(folder / "good.png", list(RECEIPTS.values())[1])
        jpeg = make_receipt(tmp_path / "whole.jpg", list(RECEIPTS.values())[2])
        (folder / os.fsdecode(b"cass\xe9.jpg")).write_bytes(jpeg.read_bytes()[:300])
        out = tmp_path / "out" / "r.jsonl"
        args = ["run", str(folder), "--out", str(out), "--progress", "none"]
        result = run_cli(args, log=tmp_path / "cli.log")
        assert result.returncode == 0, result.output
        records, torn = read_lines(out)
        assert torn == 0
        names = _by_name(records)
        assert sorted(names) == ["cass\\xe9.jpg", "good.png", "re\\xe7u.png"]
        assert names["re\\xe7u.png"]["status"] == "ok"
        assert names["re\\xe7u.png"]["id"].startswith("re\\xe7u.png#1@")
        assert RECEIPTS["kedai.png"][0] in names["re\\xe7u.png"]["text"]
        assert names["good.png"]["status"] == "ok"
        broken = names["cass\\xe9.jpg"]
        assert broken["status"] == "error"
        assert broken["error"]["message"].startswith(f"{folder}/cass\\xe9.jpg: cannot decode")
        again = run_cli([*args, "--resume"], log=tmp_path / "cli.log")
        assert again.returncode == 0, again.output
        assert read_lines(out)[0] == records

    def test_files_left_out_are_counted(self, tmp_path: Path) -> None:
        """Files a folder holds that are not documents by name (a phone's videos, notes)
        are counted in the summary by their ending; hidden files are not."""
        folder = tmp_path / "in"
        make_receipt(folder / "good.png", RECEIPTS["kedai.png"])
        (folder / "phone").mkdir()
        for name in ("phone/IMG_0001.MOV", "phone/IMG_0002.mov", "notes.txt", ".DS_Store"):
            (folder / name).write_bytes(b"not read")
        out = tmp_path / "r.jsonl"
        result = run_cli(
            ["run", str(folder), "--out", str(out), "--progress", "none"], log=tmp_path / "cli.log"
        )
        assert result.returncode == 0, result.output
        assert "left out of the folders: .mov 2, .txt 1\n" in result.output
        assert len(read_lines(out)[0]) == 1


class TestFailuresAsTheyHappen:
    """A page that fails is told as it fails: one WARNING line naming it and its error."""

    @staticmethod
    def bad_folder(folder: Path) -> dict[str, str]:
        """Write a truncated PNG, random bytes named .jpg and an empty .jpg; return each
        file's name and the words its line must hold."""
        png = make_receipt(folder / "cut.png", RECEIPTS["kedai.png"])
        png.write_bytes(png.read_bytes()[:80])
        (folder / "noise.jpg").write_bytes(random.Random(7).randbytes(5000))
        (folder / "empty.jpg").write_bytes(b"")
        return {
            "cut.png": "cannot decode PNG",
            "noise.jpg": "not a JPEG, PNG, TIFF, HEIC, WebP, BMP, GIF or PDF",
            "empty.jpg": "empty file",
        }

    def test_one_warning_line_per_bad_page(self, tmp_path: Path) -> None:
        """At the default level each bad page has one WARNING line with its stage, its
        page id and its error, and no traceback (it was only '3 failed' in the progress
        line until the summary at the end)."""
        folder = tmp_path / "in"
        folder.mkdir()
        bad = self.bad_folder(folder)
        out = tmp_path / "r.jsonl"
        result = run_cli(["run", str(folder), "--out", str(out)], log=tmp_path / "cli.log")
        assert result.returncode == 0, result.output
        records = _by_name(read_lines(out)[0])
        lines = [line for line in result.output.splitlines() if " WARNING asyncpipe: " in line]
        assert len(lines) == len(bad), result.output
        for name, words in bad.items():
            record = records[name]
            said = [line for line in lines if f"on {record['id']!r}: " in line]
            assert len(said) == 1, lines
            assert said[0].endswith(
                f"WARNING asyncpipe: stage load failed on {record['id']!r}: InputError: "
                f"{record['error']['message']}"
            )
            assert words in said[0]
        assert "Traceback" not in result.output

    def test_json_progress_keeps_stdout_json(self, tmp_path: Path) -> None:
        """With --progress json the lines go to stderr: stdout holds only the progress
        objects, as that mode promises."""
        folder = tmp_path / "in"
        folder.mkdir()
        bad = self.bad_folder(folder)
        out = tmp_path / "r.jsonl"
        command = [sys.executable, "-m", "asyncpipe", "run", str(folder), "--out", str(out)]
        done = subprocess.run(
            [*command, "--progress", "json"],
            capture_output=True,
            text=True,
            timeout=100,
            env=cli_env(),
        )
        assert done.returncode == 0, done.stderr
        events = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert events[-1]["event"] == "finished" and events[-1]["failed"] == len(bad)
        assert done.stderr.count(" WARNING asyncpipe: stage load failed on ") == len(bad)
