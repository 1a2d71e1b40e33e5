"""
`python -m asyncpipe run --resume` from another working directory than the run it
continues, its inputs named relative to each: the same files are matched as the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from clirun import run_cli

# Each test runs the command three or four times over real receipts, OCR and all: the
# suite's 120 s is too little for that on a loaded machine.
pytestmark = pytest.mark.timeout(600)


def records(out: Path) -> list[dict[str, Any]]:
    """The output's records, in order."""
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def two_folders(tmp_path: Path, sroie: Path) -> tuple[Path, Path]:
    """``a/in`` holding two real receipts, and an empty ``b`` beside it."""
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "in").mkdir(parents=True)
    second.mkdir()
    for stem in ("000", "002"):
        (first / "in" / f"{stem}.jpg").write_bytes((sroie / "img" / f"{stem}.jpg").read_bytes())
    return first, second


class TestResumeElsewhere:
    def test_relative_inputs_resumed_from_another_directory(
        self, tmp_path: Path, sroie: Path
    ) -> None:
        """Run from a/ on in/, then resume from b/ on ../a/in/: unchanged, nothing is
        written; one receipt replaced in place and the other cut short, the replaced
        one's line is replaced (not joined by a second) and the cut one's kept (no error
        record beside it)."""
        first, second = two_folders(tmp_path, sroie)
        out = tmp_path / "r.jsonl"
        started = run_cli("in/", "--out", "../r.jsonl", cwd=first)
        assert started.returncode == 0, started.stderr
        before = records(out)
        assert [r["source"] for r in before] == ["in/000.jpg", "in/002.jpg"]

        same = run_cli("../a/in/", "--out", "../r.jsonl", "--resume", cwd=second)
        assert same.returncode == 0, same.stderr
        assert records(out) == before

        replaced, cut = first / "in" / "002.jpg", first / "in" / "000.jpg"
        replaced.write_bytes((sroie / "img" / "004.jpg").read_bytes())
        cut.write_bytes(cut.read_bytes()[:400])
        resumed = run_cli("../a/in/", "--out", "../r.jsonl", "--resume", cwd=second)
        assert resumed.returncode == 0, resumed.stderr
        after = records(out)
        assert [r["id"].partition("#")[0] for r in after] == ["000.jpg", "002.jpg"], after
        assert after[0] == before[0]
        assert after[1]["status"] == "ok"
        assert after[1]["id"] != before[1]["id"]
        assert after[1]["source"] == "../a/in/002.jpg"
        assert after[1]["path"] == str(replaced)
        assert "../a/in/002.jpg changed since its pages were written" in resumed.stderr
        assert "../a/in/000.jpg cannot be read now" in resumed.stderr

    def test_an_output_without_paths_resumes_from_its_own_directory(
        self, tmp_path: Path, sroie: Path
    ) -> None:
        """An output written before lines held their absolute ``path`` (the field taken
        out) resumes from the directory it was written from as it did: a receipt
        replaced in place has its line replaced."""
        first, _ = two_folders(tmp_path, sroie)
        out = tmp_path / "r.jsonl"
        started = run_cli("in/", "--out", "../r.jsonl", cwd=first)
        assert started.returncode == 0, started.stderr
        old = [{k: v for k, v in r.items() if k != "path"} for r in records(out)]
        out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in old))

        (first / "in" / "002.jpg").write_bytes((sroie / "img" / "004.jpg").read_bytes())
        resumed = run_cli("in/", "--out", "../r.jsonl", "--resume", cwd=first)
        assert resumed.returncode == 0, resumed.stderr
        after = records(out)
        assert [r["source"] for r in after] == ["in/000.jpg", "in/002.jpg"]
        assert after[0] == old[0]
        assert after[1]["id"] != old[1]["id"]
