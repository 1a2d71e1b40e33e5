"""Two files of one name and content under two input roots are two pages, under two ids."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import clirun
import orjson
from PIL import Image

from stages.inputs import discover


def _copy(sroie: Path, number: int, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((sroie / "img" / f"{number:03d}.jpg").read_bytes())
    return target


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class TestTwoRoots:
    def test_a_copy_under_a_second_root_is_kept_under_its_roots_name(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """``d1/x.jpg`` and ``d2/x.jpg`` holding the same bytes are both yielded, the
        second under ``d2/``, nothing left out (it was skipped, "same id as an earlier
        file"); other content under the same name keeps its plain id."""
        one = _copy(sroie, 0, tmp_path / "d1" / "x.jpg")
        two = _copy(sroie, 0, tmp_path / "d2" / "x.jpg")
        three = _copy(sroie, 1, tmp_path / "d3" / "x.jpg")
        skipped: list[str] = []
        roots = [tmp_path / "d1", tmp_path / "d2", tmp_path / "d3"]
        refs = list(discover(roots, on_skip=lambda path, why: skipped.append(path)))
        same, other = _digest(one), _digest(three)
        assert [(ref.id, ref.source) for ref in refs] == [
            (f"x.jpg#1@{same}", str(one)),
            (f"d2/x.jpg#1@{same}", str(two)),
            (f"x.jpg#1@{other}", str(three)),
        ]
        assert skipped == []
        # The order of the inputs says which one keeps the plain id, every time.
        backwards = [ref.id for ref in discover(roots[::-1])]
        assert backwards == [f"x.jpg#1@{other}", f"x.jpg#1@{same}", f"d1/x.jpg#1@{same}"]
        assert [ref.id for ref in discover(roots[::-1])] == backwards

    def test_named_files_and_every_page(self, tmp_path: Path) -> None:
        """Two files named on the command line are told apart by their folders, and
        each page of a TIFF of two pages takes the same name."""
        pictures = [Image.new("RGB", (64, 48), shade) for shade in ("white", "grey")]
        for folder in ("a", "b"):
            (tmp_path / folder).mkdir()
            pictures[0].save(
                tmp_path / folder / "scan.tif", save_all=True, append_images=pictures[1:]
            )
        digest = _digest(tmp_path / "a" / "scan.tif")
        refs = list(discover([tmp_path / "a" / "scan.tif", tmp_path / "b" / "scan.tif"]))
        assert [ref.id for ref in refs] == [
            f"scan.tif#1@{digest}",
            f"scan.tif#2@{digest}",
            f"b/scan.tif#1@{digest}",
            f"b/scan.tif#2@{digest}",
        ]

    def test_roots_of_one_name_take_the_folders_above(self, sroie: Path, tmp_path: Path) -> None:
        """Roots named alike (``a/data``, ``b/data``, ``c/data``) are told apart by as many
        folders above as it takes, the third by ``c/data``."""
        roots = [tmp_path / name / "data" for name in ("a", "b", "c")]
        for root in roots:
            _copy(sroie, 0, root / "x.jpg")
        digest = _digest(roots[0] / "x.jpg")
        assert [ref.id for ref in discover(roots)] == [
            f"x.jpg#1@{digest}",
            f"data/x.jpg#1@{digest}",
            f"c/data/x.jpg#1@{digest}",
        ]

    def test_one_file_given_twice_is_read_once(self, sroie: Path, tmp_path: Path) -> None:
        """The same file by its path twice, or by a link in another folder, is still one
        page: a repeat, not a second file."""
        scan = _copy(sroie, 0, tmp_path / "d1" / "x.jpg")
        (tmp_path / "d2").mkdir()
        (tmp_path / "d2" / "x.jpg").symlink_to(scan)
        skipped: list[str] = []
        inputs = [tmp_path / "d1", tmp_path / "d2", scan]
        refs = list(discover(inputs, on_skip=lambda path, why: skipped.append(path)))
        assert [ref.source for ref in refs] == [str(scan)]
        assert skipped == [str(tmp_path / "d2" / "x.jpg"), str(scan)]

    def test_ids_without_a_collision_are_as_before(self, sroie: Path, tmp_path: Path) -> None:
        """Guard: a folder, a subfolder, a file named and a pattern keep their ids of
        ``<path under its root>#<page>@<hash>``, so journals of earlier runs resume."""
        _copy(sroie, 0, tmp_path / "in" / "top.jpg")
        _copy(sroie, 1, tmp_path / "in" / "sub" / "deep.jpg")
        named = _copy(sroie, 2, tmp_path / "other" / "named.jpg")
        _copy(sroie, 3, tmp_path / "globbed" / "g" / "p.jpg")
        inputs: list[str | Path] = [
            tmp_path / "in",
            named,
            str(tmp_path / "globbed" / "*" / "*.jpg"),
        ]
        refs = list(discover(inputs))
        assert [ref.id for ref in refs] == [
            f"sub/deep.jpg#1@{_digest(tmp_path / 'in' / 'sub' / 'deep.jpg')}",
            f"top.jpg#1@{_digest(tmp_path / 'in' / 'top.jpg')}",
            f"named.jpg#1@{_digest(named)}",
            f"g/p.jpg#1@{_digest(tmp_path / 'globbed' / 'g' / 'p.jpg')}",
        ]


class TestRun:
    def test_a_run_over_two_folders_writes_both_copies(self, sroie: Path, tmp_path: Path) -> None:
        """``asyncpipe run d1 d2`` writes a line for each of two identical files (the
        second was left out), and a resume finds both written."""
        one = _copy(sroie, 0, tmp_path / "d1" / "x.jpg")
        two = _copy(sroie, 0, tmp_path / "d2" / "x.jpg")
        out = tmp_path / "out.jsonl"
        args: list[str | Path] = [
            tmp_path / "d1",
            tmp_path / "d2",
            "--out",
            out,
            "--max-side",
            "800",
        ]
        done = clirun.run_cli(*args)
        assert done.returncode == 0, done.stderr
        lines = _lines(out)
        digest = _digest(one)
        assert [(line["id"], line["source"], line["status"]) for line in lines] == [
            (f"x.jpg#1@{digest}", str(one), "ok"),
            (f"d2/x.jpg#1@{digest}", str(two), "ok"),
        ]
        assert "left out" not in done.stderr + done.stdout
        again = clirun.run_cli(*args, "--resume")
        assert again.returncode == 0, again.stderr
        assert _lines(out) == lines
        assert os.path.getsize(out) == sum(len(orjson.dumps(line)) + 1 for line in lines)

    def test_a_resume_after_the_first_copy_changed(self, tmp_path: Path) -> None:
        """``d1/x.png`` replaced in place before a resume: ``d2/x.png``, its old twin, is
        not written again under the twin's old id (which kept that stale line of
        ``d1``): the output holds one line per file, the new one for ``d1``."""
        for folder in ("d1", "d2"):
            (tmp_path / folder).mkdir()
            Image.new("RGB", (200, 100), "white").save(tmp_path / folder / "x.png")
        out = tmp_path / "out.jsonl"
        args: list[str | Path] = [tmp_path / "d1", tmp_path / "d2", "--out", out]
        done = clirun.run_cli(*args)
        assert done.returncode == 0, done.stderr
        old = _digest(tmp_path / "d1" / "x.png")
        Image.new("RGB", (200, 100), "grey").save(tmp_path / "d1" / "x.png")
        new = _digest(tmp_path / "d1" / "x.png")
        again = clirun.run_cli(*args, "--resume")
        assert again.returncode == 0, again.stderr
        assert sorted((line["id"], line["source"]) for line in _lines(out)) == [
            (f"d2/x.png#1@{old}", str(tmp_path / "d2" / "x.png")),
            (f"x.png#1@{new}", str(tmp_path / "d1" / "x.png")),
        ]
