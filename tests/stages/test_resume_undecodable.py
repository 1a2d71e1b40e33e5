"""
`python -m asyncpipe run --resume` over real receipts overwritten, since they were read,
with bytes that still sniff as a JPEG but whose pixels do not decode: the good lines stay.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from clirun import run_cli

# Each test runs the command three or four times over real receipts, OCR and all: the
# suite's 120 s is too little for that on a loaded machine.
pytestmark = pytest.mark.timeout(600)


def lines(out: Path) -> dict[str, dict[str, Any]]:
    """The output's records by their file's name."""
    return lines_of(out.read_bytes())


class TestResumeUndecodable:
    def test_a_receipt_that_no_longer_decodes_keeps_its_line(
        self, tmp_path: Path, sroie: Path
    ) -> None:
        """Two receipts are read; then one is cut to its first 400 bytes and the other
        keeps its first 2000 (its headers) over random bytes.  The resume keeps both lines as
        they were, names each file and why at the walk and in the summary, and counts
        them skipped (each load error record replaced its good line). A resume again
        changes nothing; a receipt put back as other good bytes is read again."""
        folder, out = tmp_path / "in", tmp_path / "out.jsonl"
        folder.mkdir()
        for stem in ("000", "002"):
            (folder / f"{stem}.jpg").write_bytes((sroie / "img" / f"{stem}.jpg").read_bytes())
        first = run_cli(folder, "--out", out)
        assert first.returncode == 0, first.stderr
        before = out.read_bytes()
        assert [r["status"] for r in lines(out).values()] == ["ok", "ok"]

        cut = folder / "000.jpg"
        cut.write_bytes(cut.read_bytes()[:400])
        garbled = folder / "002.jpg"
        data = garbled.read_bytes()
        noise = random.Random(0).randbytes(len(data) - 2002)  # markers where data should be
        garbled.write_bytes(data[:2000] + noise + data[-2:])
        resumed = run_cli(folder, "--out", out, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert out.read_bytes() == before
        said = resumed.stderr
        for path in (cut, garbled):
            assert f"{path} cannot be read now (cannot decode JPEG" in said, said
            assert f"  {path}: cannot decode JPEG" in said, said
        assert "2 inputs cannot be read now; the output keeps their 2 pages from before" in said
        assert "0 ok, 0 failed, 2 skipped (written by an earlier run)" in said
        assert "changed since" not in said

        again = run_cli(folder, "--out", out, "--resume")
        assert again.returncode == 0, again.stderr
        assert out.read_bytes() == before

        cut.write_bytes((sroie / "img" / "004.jpg").read_bytes())
        replaced = run_cli(folder, "--out", out, "--resume")
        assert replaced.returncode == 0, replaced.stderr
        now = lines(out)
        assert now["000.jpg"]["status"] == "ok"
        assert now["000.jpg"]["id"] != lines_of(before)["000.jpg"]["id"]
        assert now["002.jpg"] == lines_of(before)["002.jpg"]
        assert "1 input cannot be read now; the output keeps its 1 page from before" in (
            replaced.stderr
        )

    def test_fail_on_error_exits_3_when_a_receipt_cannot_be_read_now(
        self, tmp_path: Path, sroie: Path
    ) -> None:
        """A receipt read, then cut to its first 400 bytes: a resume with --fail-on-error
        keeps its line and exits 3 (it could not be read); put back as it was, the resume
        exits 0."""
        folder, out = tmp_path / "in", tmp_path / "out.jsonl"
        folder.mkdir()
        receipt = folder / "000.jpg"
        data = (sroie / "img" / "000.jpg").read_bytes()
        receipt.write_bytes(data)
        first = run_cli(folder, "--out", out, "--fail-on-error")
        assert first.returncode == 0, first.stderr
        before = out.read_bytes()

        receipt.write_bytes(data[:400])
        resumed = run_cli(folder, "--out", out, "--resume", "--fail-on-error")
        assert resumed.returncode == 3, resumed.stderr
        assert out.read_bytes() == before
        assert f"  {receipt}: cannot decode JPEG" in resumed.stderr

        receipt.write_bytes(data)
        again = run_cli(folder, "--out", out, "--resume", "--fail-on-error")
        assert again.returncode == 0, again.stderr
        assert out.read_bytes() == before


def lines_of(data: bytes) -> dict[str, dict[str, Any]]:
    """``data``'s records by their file's name."""
    records = [orjson.loads(line) for line in data.splitlines()]
    return {Path(record["source"]).name: record for record in records}
