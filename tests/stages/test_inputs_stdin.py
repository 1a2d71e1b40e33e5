"""
The input ``-``: one document piped in on standard input, read once, whole, into memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from PIL import Image

from stages.inputs import (
    STDIN_SOURCE,
    InputError,
    StdinError,
    discover,
    estimate_pages,
    load_page,
    read_stdin,
)

PROJECT = Path(__file__).resolve().parents[2]
HTML = b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n"


def pipe(
    *args: str | Path, stdin: bytes | int, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m asyncpipe run ARGS`` with ``stdin`` piped in (bytes) or as its
    standard input (a file descriptor)."""
    feed: dict[str, Any] = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run(
        [sys.executable, "-m", "asyncpipe", "run", *map(str, args), "--progress", "none"],
        cwd=PROJECT,
        capture_output=True,
        timeout=timeout,
        check=False,
        **feed,
    )


# The number of the read system call, as /proc/<pid>/task/<tid>/syscall shows it.
_READ = {"x86_64": 0, "aarch64": 63}.get(platform.machine())


def _reading_stdin(pid: int) -> bool:
    """Whether a thread of process ``pid`` waits in a read of its standard input (when
    /proc does not tell, after a few seconds, which are enough to start)."""
    if _READ is None:
        time.sleep(5)
        return True
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            call = (task / "syscall").read_text().split()
        except OSError:
            continue
        if call[:2] == [str(_READ), "0x0"]:
            return True
    return False


def _sigint_default() -> None:
    """In the child, before it runs: SIGINT as a terminal's foreground command has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def receipts_file(sroie: Path, names: list[str], kind: str) -> bytes:
    """Receipts as the pages of one PDF or TIFF (a scanner's multi-page file), in memory."""
    first, *rest = [Image.open(sroie / "img" / f"{name}.jpg").convert("RGB") for name in names]
    buffer = io.BytesIO()
    if kind == "PDF":
        first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=150)
    else:
        first.save(buffer, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate")
    return buffer.getvalue()


class TestDiscovery:
    """``discover`` and ``estimate_pages`` take the bytes piped in, never standard input."""

    def test_a_pdf_piped_in_gives_one_ref_per_page_carrying_its_bytes(self, sroie: Path) -> None:
        """Two pages, ``<stdin>#<page>@<hash>``, each with the document's bytes; the
        estimate counts them from the same bytes."""
        data = receipts_file(sroie, ["004", "005"], "PDF")
        refs = list(discover(["-"], stdin=data))
        assert [ref.id for ref in refs] == [f"<stdin>#{n}@{digest(data)}" for n in (1, 2)]
        assert {(ref.source, ref.kind, ref.problem) for ref in refs} == {
            (STDIN_SOURCE, "pdf", None)
        }
        assert all(ref.data is data for ref in refs)
        assert list(estimate_pages(["-"], stdin=data))[-1] == 2

    def test_a_multipage_tiff_piped_in_is_counted_and_read_from_its_bytes(
        self, sroie: Path
    ) -> None:
        """``count_pages`` takes bytes: a TIFF's second page loads as the receipt it is,
        and the bytes do not travel on with the page."""
        data = receipts_file(sroie, ["004", "005"], "TIFF")
        _, second = discover(["-"], stdin=data)
        page = load_page(second)
        assert page.image is not None
        with Image.open(sroie / "img" / "005.jpg") as receipt:
            assert page.image.shape[1::-1] == receipt.size
        assert page.ref.data is None and page.ref.id == second.id

    def test_nothing_or_no_document_piped_in_is_a_problem_naming_stdin(self) -> None:
        """Empty, or a web server's error page, is one ref whose load says why."""
        (empty,) = discover(["-"], stdin=b"")
        assert empty.problem == "<stdin>: nothing was piped in (0 bytes)"
        (html,) = discover(["-"], stdin=HTML)
        with pytest.raises(InputError, match=r"^<stdin>: not a JPEG, PNG, .* b'<!DOCTYP'"):
            load_page(html)

    def test_a_file_named_stdin_never_shares_a_key_with_the_document_piped_in(
        self, sroie: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file named ``<stdin>`` holding the bytes piped in is ``./<stdin>`` (id,
        source, messages), given by name or found in a folder: it had the piped pages'
        very ids and source, so one of them was skipped as a duplicate."""
        data = (sroie / "img" / "000.jpg").read_bytes()
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "<stdin>").write_bytes(data)
        monkeypatch.chdir(folder)
        for named in ("<stdin>", "."):
            piped, found = discover(["-", named], stdin=data, suffixes=("",))
            assert (piped.id, piped.source) == (f"<stdin>#1@{digest(data)}", STDIN_SOURCE)
            assert found.id == f"./<stdin>#1@{digest(data)}"
            assert found.source == "./<stdin>"
            assert found.data is None and found.problem is None
        Path("<stdin>").write_bytes(HTML)
        (ref,) = discover(["<stdin>"])
        assert ref.id == f"./<stdin>#1@{digest(HTML)}"
        with pytest.raises(InputError, match=r"^\./<stdin>: not a JPEG, PNG"):
            load_page(ref)
        Path("<stdin>").unlink()
        (gone,) = discover(["<stdin>"])
        assert gone.id.startswith("./<stdin>#1@")
        assert gone.problem == "./<stdin>: no such file or directory"

    def test_read_stdin_refuses_a_terminal_and_more_than_its_limit(self) -> None:
        """A terminal would wait for typing; more than ``max_bytes`` is not read."""
        assert read_stdin(io.BytesIO(HTML)) == HTML
        with pytest.raises(StdinError, match=r"^standard input holds more than 5.15e-05 MB"):
            read_stdin(io.BytesIO(HTML), max_bytes=len(HTML) - 1)
        assert read_stdin(io.BytesIO(HTML), max_bytes=len(HTML)) == HTML
        leader, follower = pty.openpty()
        try:
            with (
                open(follower, "rb", closefd=False) as terminal,
                pytest.raises(StdinError, match="standard input is a terminal"),
            ):
                read_stdin(terminal)
        finally:
            os.close(leader)
            os.close(follower)


class TestPipedRun:
    """``asyncpipe run -`` reads the document piped in, and resumes by its bytes."""

    def test_piped_pdf_resumed_with_the_same_bytes_then_another_document(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """A 2-page PDF of receipts piped in gives two records; the same bytes again with
        --resume write nothing; a receipt JPEG piped to the resumed run is read beside
        them, and so is an error page, the earlier pages staying."""
        pdf = receipts_file(sroie, ["004", "005"], "PDF")
        out = tmp_path / "r.jsonl"
        done = pipe("-", "--out", out, stdin=pdf)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        first = records(out)
        assert [(r["id"], r["source"], r["page"], r["status"]) for r in first] == [
            (f"<stdin>#{n}@{digest(pdf)}", "<stdin>", n, "ok") for n in (1, 2)
        ]
        assert all(len(r["text"]) > 100 for r in first)
        assert first[0]["text"] != first[1]["text"]
        written = out.read_bytes()

        again = pipe("-", "--out", out, "--resume", stdin=pdf)
        assert again.returncode == 0, again.stderr.decode()[-3000:]
        assert b"0 ok, 0 failed, 2 skipped" in again.stderr
        assert out.read_bytes() == written

        jpeg = (sroie / "img" / "000.jpg").read_bytes()
        other = pipe("-", "--out", out, "--resume", stdin=jpeg)
        assert other.returncode == 0, other.stderr.decode()[-3000:]
        assert b"changed since" not in other.stderr
        *kept, added = records(out)
        assert kept == first
        assert (added["id"], added["source"], added["status"]) == (
            f"<stdin>#1@{digest(jpeg)}",
            "<stdin>",
            "ok",
        )
        assert "TAMAN DAYA" in added["text"]

        error_page = pipe("-", "--out", out, "--resume", stdin=HTML)
        assert error_page.returncode == 0, error_page.stderr.decode()[-3000:]
        assert b"is gone" not in error_page.stderr
        *kept, failed = records(out)
        assert kept == [*first, added]
        assert failed["status"] == "error"
        assert failed["error"]["message"].startswith("<stdin>: not a JPEG, PNG")

    def test_usage_errors_exit_2_before_anything_is_written(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """``-`` twice, a terminal, a closed or empty standard input, or more than
        --max-stdin: exit 2, saying why, and no output."""
        out = tmp_path / "r.jsonl"
        jpeg = (sroie / "img" / "000.jpg").read_bytes()
        twice = pipe("-", "-", "--out", out, stdin=jpeg)
        assert twice.returncode == 2
        assert b"the input - (standard input) is given more than once" in twice.stderr
        leader, follower = pty.openpty()
        try:
            terminal = pipe("-", "--out", out, stdin=follower, timeout=60)
        finally:
            os.close(leader)
            os.close(follower)
        assert terminal.returncode == 2
        assert b"standard input is a terminal: pipe one in" in terminal.stderr
        empty = pipe("-", "--out", out, stdin=b"")
        assert empty.returncode == 2
        assert b"nothing to read: <stdin>: nothing was piped in (0 bytes)" in empty.stderr
        large = pipe("-", "--out", out, "--max-stdin", "0.01", stdin=jpeg)
        assert large.returncode == 2
        assert b"standard input holds more than 0.01 MB" in large.stderr
        closed = subprocess.run(
            ["sh", "-c", 'exec "$0" -m asyncpipe run - --out "$1" 0<&-', sys.executable, out],
            cwd=PROJECT,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert closed.returncode == 2
        assert b"standard input" in closed.stderr and b"closed" in closed.stderr
        assert not out.exists()

    def test_ctrl_c_while_waiting_for_the_pipe_exits_at_once(self, tmp_path: Path) -> None:
        """SIGINT while the writer keeps the pipe open (``sleep 60 | asyncpipe run -``):
        exit 130 at once, not when the pipe closes."""
        out = tmp_path / "r.jsonl"
        command = [sys.executable, "-m", "asyncpipe", "run", "-", "--out", str(out)]
        run = subprocess.Popen(
            command,
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Ctrl-C reaches a command in a terminal; a command started in the background by
            # a script (as CI may be: `.ci/run &`) inherits SIGINT ignored, and Python then
            # leaves it ignored, so this one would wait for the pipe as it should.
            preexec_fn=_sigint_default,
        )
        try:
            deadline = time.monotonic() + 60
            while not _reading_stdin(run.pid):
                assert run.poll() is None, run.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "standard input not read within 60 s"
                time.sleep(0.1)
            run.send_signal(signal.SIGINT)
            # The pipe stays open meanwhile, for as long as the test runs: any exit is
            # one that did not wait for it.
            try:
                code = run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                code = None
        finally:
            run.kill()
            _, err = run.communicate()
        assert code == 130, err.decode()[-2000:]
        assert b"interrupted while starting (SIGINT)" in err
        assert not out.exists()

    def test_nothing_piped_beside_another_input_is_an_error_record(self, tmp_path: Path) -> None:
        """Beside another input, empty standard input is one error record, as a path
        that is not there is: the run goes on."""
        notes = tmp_path / "notes.txt"
        notes.write_text("not a scan\n")
        out = tmp_path / "r.jsonl"
        done = pipe(notes, "-", "--out", out, stdin=b"")
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        got = records(out)
        assert [r["status"] for r in got] == ["error", "error"]
        assert got[1]["id"] == f"<stdin>#1@{digest(b'')}"
        assert got[1]["error"]["message"] == "<stdin>: nothing was piped in (0 bytes)"
