"""
A resume given other values of the options that shape a page's output
(`stages._shaping`): refused, naming each, where it mixed two configurations in one
output.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from asyncpipe import ConfigError
from stages._arguments import add_arguments
from stages._shaping import ENGINE_READS, refuse_changed, shaping_options
from stages.app import _settings
from stages.inputs._sniff import Hidden
from stages.llm import LlmOptions
from stages.ocr import ENGINES

PROJECT = Path(__file__).resolve().parents[2]
STEMS = ["000", "001", "002", "003", "004", "005"]
pytestmark = pytest.mark.timeout(600)


def _args(*argv: str) -> argparse.Namespace:
    """The document app's options as ``argv`` gives them."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _keep(mode_file: Path, *argv: str, extra: dict[str, object] | None = None) -> None:
    """A mode file as a run started with ``argv`` keeps it."""
    kept = {"receipts": True, "finder": 2, "llm": None, "options": shaping_options(_args(*argv))}
    mode_file.write_bytes(orjson.dumps({**kept, **(extra or {})}))


def _command(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "asyncpipe",
        "run",
        str(folder),
        "--out",
        str(out),
        "--workers",
        "ocr=1",
        "--progress",
        "none",
        *extra,
    ]


def _run(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(folder, out, *extra),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stdin=subprocess.DEVNULL,
    )


def _lines(out: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines() if line.strip()]


class TestRefused:
    """Each kept option, changed: refused, with both values and the two ways on."""

    @pytest.mark.parametrize(
        ("started", "resumed", "said", "back"),
        [
            ((), ("--pdf-dpi", "100"), "--pdf-dpi 200 then, 100 now", "--pdf-dpi 200"),
            ((), ("--no-orient",), "--no-orient not given then, given now", "without --no-orient"),
            (("--no-unbend",), (), "--no-unbend given then, not given now", "--no-unbend"),
            ((), ("--no-crop",), "--no-crop not given then", "without --no-crop"),
            ((), ("--keep-red",), "--keep-red not given then", "without --keep-red"),
            ((), ("--read-blank",), "--read-blank not given then", "without --read-blank"),
            ((), ("--deskew",), "--deskew not given then", "without --deskew"),
            ((), ("--denoise", "median"), "--denoise not given then, median now", "without"),
            (("--max-side", "1200"), (), "--max-side 1200 then, not given now", "--max-side 1200"),
            ((), ("--max-pixels", "50"), "--max-pixels 100 then, 50 now", "--max-pixels 100"),
            ((), ("--no-pdf-text",), "--no-pdf-text not given then", "without --no-pdf-text"),
            ((), ("--ocr-engine", "paddle"), "rapidocr then, paddle now", "--ocr-engine rapidocr"),
            ((), ("--llm-url", "http://x/v1"), "--llm-url not given then", "without --llm-url"),
            (("--llm-url", "http://x/v1"), (), "--llm-url given then", "--llm-url URL"),
        ],
    )
    def test_a_changed_option(
        self,
        tmp_path: Path,
        started: tuple[str, ...],
        resumed: tuple[str, ...],
        said: str,
        back: str,
    ) -> None:
        """The message names the option, its value then and now, and how to give it back."""
        mode_file = tmp_path / "out.jsonl.journal.receipts"
        _keep(mode_file, *started)
        with pytest.raises(ConfigError) as refused:
            refuse_changed(mode_file, _args(*resumed), tmp_path / "out.jsonl")
        message = str(refused.value)
        assert said in message and f"({back}" in message
        assert "or start over with --overwrite" in message

    @pytest.mark.parametrize(
        ("changed", "said"),
        [
            (("--llm-model", "b"), "--llm-model a then, b now"),
            (("--llm-stages", "structure"), "--llm-stages correct,fix,structure then, structure"),
            (("--llm-min-similarity", "50"), "--llm-min-similarity 80 then, 50 now"),
            (("--prompts", "p"), "--prompts not given then"),
            (("--schema", "s.json"), "--schema not given then"),
        ],
    )
    def test_a_changed_llm_option(
        self, tmp_path: Path, changed: tuple[str, ...], said: str
    ) -> None:
        """With an LLM both times, the options only it reads are weighed too."""
        mode_file = tmp_path / "m"
        llm = ("--llm-url", "http://x/v1", "--llm-model", "a")
        _keep(mode_file, *llm)
        with pytest.raises(ConfigError, match="other options that shape its pages") as refused:
            refuse_changed(mode_file, _args(*llm, *changed), tmp_path / "out.jsonl")
        assert said in str(refused.value)

    def test_every_change_is_named_at_once(self, tmp_path: Path) -> None:
        """Two options changed: both named, in one message."""
        mode_file = tmp_path / "m"
        _keep(mode_file)
        with pytest.raises(ConfigError) as refused:
            refuse_changed(mode_file, _args("--no-orient", "--pdf-dpi", "100"), tmp_path / "o")
        message = str(refused.value)
        assert "--no-orient not given then, given now; --pdf-dpi 200 then, 100 now" in message
        assert "(without --no-orient, --pdf-dpi 200)" in message


class TestEditedInPlace:
    """A schema or prompts folder edited between the start and the resume, at the same
    path, is a change: the pages before were structured by the other text."""

    def test_a_schema_or_a_prompt_edited_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        schema, prompts = tmp_path / "s.json", tmp_path / "prompts"
        schema.write_text('{"type": "object"}')
        prompts.mkdir()
        (prompts / "structure.txt").write_text("Give the fields.")
        given = ("--llm-url", "http://x/v1", "--schema", "s.json", "--prompts", "prompts")
        mode_file = tmp_path / "m"
        _keep(mode_file, *given)
        refuse_changed(mode_file, _args(*given), tmp_path)  # as it was: resumes
        schema.write_text('{"type": "object", "required": ["total"]}')
        with pytest.raises(ConfigError) as info:
            refuse_changed(mode_file, _args(*given), tmp_path)
        assert f"--schema {schema} holds other text than then" in str(info.value)
        assert "(--schema as it was then)" in str(info.value)
        schema.write_text('{"type": "object"}')
        (prompts / "structure.txt").write_text("Give the fields, briefly.")
        with pytest.raises(ConfigError, match=r"--prompts .* holds other text than then"):
            refuse_changed(mode_file, _args(*given), tmp_path)
        (prompts / "structure.txt").write_text("Give the fields.")
        refuse_changed(mode_file, _args(*given), tmp_path)  # put back: resumes


class TestNotRefused:
    """What a resume may change, and what a mode file does not know."""

    def test_the_same_options_in_another_order(self, tmp_path: Path) -> None:
        """The same values resume, a path given relatively from the same folder too."""
        mode_file = tmp_path / "m"
        llm = ("--llm-url", "http://x/v1", "--schema", "s.json")
        _keep(mode_file, "--pdf-dpi", "300", "--no-orient", *llm)
        refuse_changed(mode_file, _args(*llm, "--no-orient", "--pdf-dpi", "300"), tmp_path)

    def test_speed_limits_and_the_server_may_change(self, tmp_path: Path) -> None:
        """Workers' like options, the LLM's limits and its URL are not weighed."""
        mode_file = tmp_path / "m"
        _keep(mode_file, "--llm-url", "http://x/v1", "--llm-concurrency", "2")
        resumed = _args(
            *("--llm-url", "http://y:8080/v1", "--llm-concurrency", "8"),
            *("--llm-timeout", "5", "--llm-attempts", "2", "--max-stdin", "5"),
            *("--llm-structured", "json_object", "--csv", "x.csv", "--whole-pages"),
        )
        refuse_changed(mode_file, resumed, tmp_path)

    def test_without_an_llm_its_options_are_not_weighed(self, tmp_path: Path) -> None:
        """Offline both times, an LLM option given now (unused, as a warning says) is not
        a change."""
        mode_file = tmp_path / "m"
        _keep(mode_file)
        refuse_changed(mode_file, _args("--llm-model", "other"), tmp_path)

    def test_a_mode_file_that_keeps_no_options_resumes(self, tmp_path: Path) -> None:
        """A mode file written before options were kept: nothing is known, nothing refused."""
        mode_file = tmp_path / "m"
        mode_file.write_bytes(orjson.dumps({"receipts": True, "finder": 2, "llm": None}))
        refuse_changed(mode_file, _args("--no-orient", "--pdf-dpi", "100"), tmp_path)
        refuse_changed(tmp_path / "missing", _args("--no-orient"), tmp_path)
        (tmp_path / "torn").write_bytes(b'{"receipts": tr')
        refuse_changed(tmp_path / "torn", _args("--no-orient"), tmp_path)

    def test_an_option_the_file_lacks_is_not_known(self, tmp_path: Path) -> None:
        """A key missing from the kept options is not weighed; those kept still are."""
        mode_file = tmp_path / "m"
        options = shaping_options(_args())
        del options["--pdf-dpi"]
        mode_file.write_bytes(orjson.dumps({"receipts": True, "options": options}))
        refuse_changed(mode_file, _args("--pdf-dpi", "100"), tmp_path)
        with pytest.raises(ConfigError, match="--no-orient not given then"):
            refuse_changed(mode_file, _args("--pdf-dpi", "100", "--no-orient"), tmp_path)


class TestEngineReads:
    """An option the engine the run started with does not read is not weighed: paddle
    reads a page as it lies, whatever ``--no-orient`` and ``--no-unbend`` say."""

    @pytest.mark.parametrize(
        ("started", "resumed"),
        [
            ((), ("--no-orient",)),
            ((), ("--no-unbend",)),
            (("--no-orient", "--no-unbend"), ()),
            (("--no-orient",), ("--no-unbend",)),
        ],
    )
    def test_paddle_resumes_with_them_changed(
        self, tmp_path: Path, started: tuple[str, ...], resumed: tuple[str, ...]
    ) -> None:
        """Started and resumed with paddle, either changed: resumes."""
        mode_file = tmp_path / "m"
        _keep(mode_file, "--ocr-engine", "paddle", *started)
        refuse_changed(mode_file, _args("--ocr-engine", "paddle", *resumed), tmp_path)

    def test_paddle_refuses_what_it_reads(self, tmp_path: Path) -> None:
        """Started with paddle, an option every engine's pages depend on is still weighed,
        and named alone beside an ignored one."""
        mode_file = tmp_path / "m"
        _keep(mode_file, "--ocr-engine", "paddle")
        with pytest.raises(ConfigError) as refused:
            refuse_changed(
                mode_file,
                _args("--ocr-engine", "paddle", "--no-orient", "--pdf-dpi", "100"),
                tmp_path,
            )
        message = str(refused.value)
        assert "(--pdf-dpi 200 then, 100 now)" in message
        assert "(--pdf-dpi 200)" in message and "--no-orient" not in message

    def test_a_change_of_engine_is_refused(self, tmp_path: Path) -> None:
        """Paddle then, rapidocr now: refused for the engine; rapidocr then with
        ``--no-orient``, paddle now: the engine and ``--no-orient`` both, the way back
        to the pages made then."""
        mode_file = tmp_path / "m"
        _keep(mode_file, "--ocr-engine", "paddle", "--no-orient")
        with pytest.raises(ConfigError) as refused:
            refuse_changed(mode_file, _args(), tmp_path)
        assert "(--ocr-engine paddle then, rapidocr now)" in str(refused.value)
        assert "(--ocr-engine paddle)" in str(refused.value)
        _keep(mode_file, "--no-orient")
        with pytest.raises(ConfigError) as refused:
            refuse_changed(mode_file, _args("--ocr-engine", "paddle"), tmp_path)
        assert "(--ocr-engine rapidocr, --no-orient)" in str(refused.value)

    def test_rapidocr_still_weighs_them(self, tmp_path: Path) -> None:
        """Rapidocr then and now (or an engine the file does not keep): both weighed."""
        mode_file = tmp_path / "m"
        _keep(mode_file, "--ocr-engine", "rapidocr")
        with pytest.raises(ConfigError, match="--no-unbend not given then, given now"):
            refuse_changed(mode_file, _args("--no-unbend"), tmp_path)
        options = shaping_options(_args("--ocr-engine", "paddle"))
        del options["--ocr-engine"]
        mode_file.write_bytes(orjson.dumps({"receipts": True, "options": options}))
        with pytest.raises(ConfigError, match="--no-orient not given then, given now"):
            refuse_changed(mode_file, _args("--ocr-engine", "paddle", "--no-orient"), tmp_path)

    @pytest.mark.parametrize("engine", sorted(ENGINES))
    @pytest.mark.parametrize("flag", sorted(ENGINE_READS))
    def test_the_engines_named_are_those_given_the_option(self, engine: str, flag: str) -> None:
        """The app passes the option to an engine exactly when it is named as reading it."""
        args = _args("--ocr-engine", engine, flag)
        args.inputs_shared = False
        run: Any = SimpleNamespace(executor=None)
        settings = _settings(run, args, LlmOptions.from_args(args), Hidden())
        assert bool(settings.ocr_options) == (engine in ENGINE_READS[flag])

    def test_a_paddle_run_resumed(self, sroie: Path, tmp_path: Path) -> None:
        """A real paddle run, resumed with ``--no-orient --no-unbend``: not refused; with
        ``--pdf-dpi 100`` or another engine: exit 2 naming that alone, nothing written.
        With paddle installed the run finishes and the resume is exit 0; without it the
        run stops at its first OCR worker (exit 2, its options kept), and the resume gets
        past the options to the same stop."""
        folder = tmp_path / "in"
        folder.mkdir()
        for stem in STEMS[:2]:
            (folder / f"{stem}.jpg").symlink_to(sroie / "img" / f"{stem}.jpg")
        out = tmp_path / "results.jsonl"
        paddle = ("--ocr-engine", "paddle")
        first = _run(folder, out, *paddle)
        missing = "the paddle OCR engine is not installed"
        if os.environ.get("ASYNCPIPE_REQUIRE_PADDLE") == "1":  # .ci/paddle's venv
            assert first.returncode == 0, first.stderr[-3000:]
        assert first.returncode == 0 or missing in first.stderr, first.stderr[-3000:]
        mode_file = tmp_path / "results.jsonl.journal.receipts"
        assert orjson.loads(mode_file.read_bytes())["options"]["--ocr-engine"] == "paddle"

        ignored = _run(folder, out, "--resume", *paddle, "--no-orient", "--no-unbend")
        assert "other options that shape its pages" not in ignored.stderr
        if first.returncode == 0:
            assert ignored.returncode == 0, ignored.stderr[-3000:]
            assert sorted(Path(str(r["source"])).stem for r in _lines(out)) == STEMS[:2]
        else:
            assert ignored.returncode == 2 and missing in ignored.stderr, ignored.stderr[-3000:]

        before = {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
        for resumed, said, back in [
            ((*paddle, "--no-orient", "--pdf-dpi", "100"), "--pdf-dpi 200 then, 100 now", ""),
            (("--no-orient",), "--ocr-engine paddle then, rapidocr now", "--ocr-engine paddle"),
        ]:
            refused = _run(folder, out, "--resume", *resumed)
            assert refused.returncode == 2, refused.stderr[-3000:]
            assert f"shape its pages ({said}):" in refused.stderr
            assert f"it started with ({back or '--pdf-dpi 200'})" in refused.stderr
            assert {path: path.read_bytes() for path in before} == before


class TestStoppedRun:
    """A real run stopped by Ctrl-C (SIGINT), then resumed."""

    def test_resumed_with_other_options_then_with_the_same(
        self, sroie: Path, tmp_path: Path
    ) -> None:
        """Resumed with ``--no-orient --pdf-dpi 100``: exit 2 naming both, nothing written,
        the journal as it was (it exited 0, the pages mixing two configurations). Resumed
        as it started: it finishes with each page once."""
        folder = tmp_path / "in"
        folder.mkdir()
        for stem in STEMS:
            (folder / f"{stem}.jpg").symlink_to(sroie / "img" / f"{stem}.jpg")
        out = tmp_path / "results.jsonl"
        journal = tmp_path / "results.jsonl.journal"
        with subprocess.Popen(
            _command(folder, out),
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ) as first:
            give_up = time.monotonic() + 300
            while first.poll() is None and time.monotonic() < give_up:
                if out.exists() and out.read_bytes().count(b"\n") >= 1:
                    break
                time.sleep(0.02)
            first.send_signal(signal.SIGINT)
            _, err = first.communicate(timeout=120)
            assert first.returncode == 130, err.decode(errors="replace")[-3000:]
        written = len(_lines(out))
        assert 1 <= written < len(STEMS), "the stop came too late"
        mode_file = journal.with_name(journal.name + ".receipts")
        before = {path: path.read_bytes() for path in (out, journal, mode_file)}

        refused = _run(folder, out, "--resume", "--no-orient", "--pdf-dpi", "100")
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert (
            "--no-orient not given then, given now; --pdf-dpi 200 then, 100 now" in refused.stderr
        )
        said = "Resume it with the options it started with (without --no-orient, --pdf-dpi 200)"
        assert said in refused.stderr
        assert "or start over with --overwrite" in refused.stderr
        assert f"nothing was written ({out} is as it was)" in refused.stderr
        assert {path: path.read_bytes() for path in before} == before

        done = _run(folder, out, "--resume")
        assert done.returncode == 0, done.stderr[-3000:]
        records = _lines(out)
        assert sorted(Path(str(r["source"])).stem for r in records) == STEMS
        assert len({r["id"] for r in records}) == len(STEMS)
        assert all(r["status"] == "ok" for r in records), records
