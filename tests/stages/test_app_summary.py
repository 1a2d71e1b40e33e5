"""The run summary's words on the files discovery left out, and on those given twice."""

from __future__ import annotations

from pathlib import Path

import clirun
from PIL import Image

HINT = "(--log-level INFO names each file)"


def _folder(tmp_path: Path) -> Path:
    """A folder of one blank page (not read by OCR: quick) and a note."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (200, 100), "white").save(folder / "a.png")
    (folder / "notes.txt").write_text("not a document\n")
    return folder


def _summary(tmp_path: Path, *args: str | Path) -> list[str]:
    """The lines a real run over ``args`` printed, exit 0."""
    out = tmp_path / "out.jsonl"
    done = clirun.run_cli(*args, "--out", out, "--overwrite")
    assert done.returncode == 0, done.stderr
    return (done.stdout + done.stderr).splitlines()


class TestLeftOutLines:
    def test_repeats_have_their_own_words(self, tmp_path: Path) -> None:
        """A file and a folder given twice are "given twice, read once", not counted with
        the files left out of the folders (``file already given ... 1`` was)."""
        folder = _folder(tmp_path)
        lines = _summary(tmp_path, folder, folder / "a.png", folder)
        assert "left out of the folders: .txt 1" in lines
        assert "given twice, read once: 1 file, 1 folder" in lines
        again = _summary(tmp_path, folder / "a.png", folder / "a.png", folder / "a.png")
        assert "given twice, read once: 2 files" in again
        assert not any(line.startswith("left out of the folders") for line in again)

    def test_the_hint_only_when_the_level_hides_the_names(self, tmp_path: Path) -> None:
        """At the default level (INFO) the log names each file already, and no hint says
        to turn it on; at WARNING the lines are not logged, and the hint says how."""
        folder = _folder(tmp_path)
        lines = _summary(tmp_path, folder, folder / "a.png")
        assert any(
            line.endswith(f"skipped {folder / 'notes.txt'}: not a document file name")
            for line in lines
        )
        assert not any(HINT in line for line in lines)
        quiet = _summary(tmp_path, folder, folder / "a.png", "--log-level", "WARNING")
        assert not any(f"skipped {folder}" in line for line in quiet)
        assert f"left out of the folders: .txt 1 {HINT}" in quiet
        assert f"given twice, read once: 1 file {HINT}" in quiet
