"""
The document app's options through the real CLI: what a setting means with an LLM and
without one, and which settings are refused before anything runs.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import clirun
import orjson
import pytest

from asyncpipe import ConfigError
from asyncpipe._executor import Executor
from stages._arguments import add_arguments
from stages.app import _check_options
from stages.pipeline import DocumentPipeline, DocumentSettings, build_pipeline
from stages.testing.llm_server.testing import ServerHandle, run_server

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "samples" / "receipt_farmasi.jpg"
pytestmark = pytest.mark.timeout(300)


#: A run is killed before the module's 300 s timeout, so a hung one names its command.
run_cli = partial(clirun.run_cli, timeout=240)


def run_help() -> str:
    """``asyncpipe run --help`` at 200 columns."""
    done = run_cli("--help", progress=None, env={"COLUMNS": "200"}, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def statuses(out: Path) -> list[str]:
    """The status of each record of ``out``."""
    return [orjson.loads(line)["status"] for line in out.read_bytes().splitlines() if line]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    """The rule-based OpenAI-compatible server."""
    with run_server(latency=0.01) as handle:
        yield handle


class TestGroups:
    """``--workers`` and ``--rate-limit`` name the ``llm`` and ``text`` groups either way."""

    def test_llm_settings_offline_are_noted_unused(self, tmp_path: Path) -> None:
        """The README's ``--workers ocr=2,llm=32`` and ``--rate-limit llm=RATE`` run
        without --llm-url, each noted as unused (they were exit 2)."""
        out = tmp_path / "out.jsonl"
        done = run_cli(
            SAMPLE, "--out", out, "--workers", "ocr=2,llm=32", "--rate-limit", "llm=10/min"
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert statuses(out) == ["ok"]
        assert "--workers llm=32: no stage of this run is in the 'llm' group" in done.stderr
        assert "--rate-limit llm=10/min: no LLM is called (no --llm-url)" in done.stderr

    def test_text_setting_with_every_stage_on_the_llm(
        self, tmp_path: Path, server: ServerHandle
    ) -> None:
        """With --llm-url and all three stages on the LLM, ``text=2`` is noted as unused."""
        out = tmp_path / "out.jsonl"
        done = run_cli(
            SAMPLE, "--out", out, "--llm-url", server.url, "--llm-model", "t", "--workers", "text=2"
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert statuses(out) == ["ok"]
        assert "--workers text=2: no stage of this run is in the 'text' group" in done.stderr

    def test_a_csv_that_is_a_folder_is_refused_at_the_start(self, tmp_path: Path) -> None:
        """``--csv`` naming a folder is exit 2 before a page is read (hK's review: a
        traceback once every page was read)."""
        out = tmp_path / "out.jsonl"
        done = run_cli(SAMPLE, "--out", out, "--csv", tmp_path)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"--csv {tmp_path} is a folder: give a file path" in done.stderr
        assert not out.exists()

    def test_the_executor_stages_name_an_empty_group_too(self) -> None:
        """``--ray-stages ocr,llm`` offline puts OCR on the executor and notes ``llm`` as
        unused (it was exit 2, as ``--workers llm=32`` was); naming only empty groups
        is refused, saying so."""
        pipeline = build_pipeline(DocumentSettings())
        executor = Executor()
        moved = pipeline.configure(executor=executor, executor_stages=["ocr", "llm"])
        assert [s.name for s in moved.stages if s.executor is executor] == ["ocr"]
        with pytest.raises(ConfigError, match="no stage of this run is in 'llm'"):
            pipeline.configure(executor=executor, executor_stages=["llm"])

    def test_a_configured_pipeline_can_be_configured_again(self) -> None:
        """``configure`` returns a `DocumentPipeline`, so a second ``configure`` still
        notes the empty ``llm`` group as unused (round 32's review: the copy was a plain
        `Pipeline`, and ``workers={'llm': 4}`` then raised 'no stage or group named')."""
        once = build_pipeline(DocumentSettings()).configure(workers={"ocr": 1})
        assert isinstance(once, DocumentPipeline)
        twice = once.configure(workers={"llm": 4})
        assert isinstance(twice, DocumentPipeline)
        assert {s.name: s.workers for s in twice.stages}["ocr"] == 1

    def test_a_typo_is_still_refused(self, tmp_path: Path) -> None:
        """``--workers lmm=2`` is exit 2 before anything runs, the names listed."""
        out = tmp_path / "out.jsonl"
        done = run_cli(SAMPLE, "--out", out, "--workers", "lmm=2")
        assert done.returncode == 2, done.stderr[-3000:]
        assert "no stage or group named 'lmm'" in done.stderr
        assert "groups: llm, text" in done.stderr
        assert not out.exists()


class TestTruth:
    """``--truth`` that is no ground truth, or holds none of the output's pages."""

    @pytest.mark.parametrize("kind", ["img folder", "not a truth file"])
    def test_no_truth_is_refused_at_the_start(self, tmp_path: Path, kind: str) -> None:
        """An SROIE folder's ``img/`` (no ``key/``), or a file that is no truth file, is
        exit 2 before a page is read (it scored 1.000 over 0 pages, exit 0)."""
        if kind == "img folder":
            truth = tmp_path / "img"
            truth.mkdir()
            (truth / "000.jpg").write_bytes(SAMPLE.read_bytes())
            said = "not an SROIE-style folder: it has no key/NNN.json files"
        else:
            truth = SAMPLE
            said = "not a truth file"
        out = tmp_path / "out.jsonl"
        done = run_cli(SAMPLE, "--out", out, "--truth", truth)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"--truth {truth}: {said}" in done.stderr
        assert not out.exists()

    def test_a_truth_of_other_pages_scores_nothing(self, tmp_path: Path) -> None:
        """A truth file of other files' pages gives a warning naming one page of each,
        and no accuracy (it printed 1.000 over 0 pages)."""
        truth = tmp_path / "truth.json"
        truth.write_bytes(orjson.dumps({"000.jpg": [{"lines": ["SHOP"], "fields": {}}]}))
        out = tmp_path / "out.jsonl"
        done = run_cli(SAMPLE, "--out", out, "--truth", truth)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "WARNING" in done.stderr and "no accuracy: no page with ground truth" in done.stderr
        assert "(e.g. 'receipt_farmasi.jpg' page 1)" in done.stderr
        assert f"--truth {truth} holds 1 page, e.g. '000.jpg' page 1" in done.stderr
        assert "character accuracy" not in done.stderr

    def test_truth_of_pages_not_in_the_output_is_counted(self, tmp_path: Path) -> None:
        """A truth file of the page read and one no input gave: the score is over the
        one, and the other is counted and named (it was left out without a word)."""
        truth = tmp_path / "truth.json"
        page = {"lines": ["FARMASI"], "fields": {"company": "FARMASI"}}
        truth.write_bytes(orjson.dumps({SAMPLE.name: [page], "nothere.jpg": [page]}))
        out = tmp_path / "out.jsonl"
        done = run_cli(SAMPLE, "--out", out, "--truth", truth)
        assert done.returncode == 0, done.stderr[-3000:]
        said = done.stdout + done.stderr
        assert "accuracy over 1 page with ground truth" in said
        assert (
            "1 of the 2 pages with ground truth has no page in the output (not scored): "
            "'nothere.jpg' page 1"
        ) in said


class TestKeyEnv:
    """``--llm-key-env`` naming a variable that is not set."""

    def test_the_message_says_what_the_default_reads(self, tmp_path: Path) -> None:
        """Exit 2, and the message names both variables the default reads, in order (it
        named only OPENAI_API_KEY)."""
        assert "MY_UNSET_KEY" not in os.environ
        out = tmp_path / "out.jsonl"
        url = "http://127.0.0.1:9/v1"
        done = run_cli(SAMPLE, "--out", out, "--llm-url", url, "--llm-key-env", "MY_UNSET_KEY")
        assert done.returncode == 2, done.stderr[-3000:]
        assert (
            "--llm-key-env MY_UNSET_KEY: that variable is not set (set it, or leave "
            "--llm-key-env out to read ASYNCPIPE_LLM_API_KEY, then OPENAI_API_KEY)"
        ) in done.stderr


class TestHelp:
    """``asyncpipe run --help``."""

    def test_states_the_defaults(self) -> None:
        """The defaults of --llm-model, --pdf-dpi and --max-side are stated."""
        text = " ".join(run_help().split())
        assert "--llm-model LLM_MODEL the model name to ask for (default gpt-4o-mini)" in text
        assert "--pdf-dpi PDF_DPI PDF render resolution (default 200;" in text
        assert "--max-side MAX_SIDE shrink pages whose longest side is larger, before" in text
        assert "larger, before OCR (default: none)" in text
        assert "--llm-timeout LLM_TIMEOUT seconds one LLM request may take (default 60)" in text

    def test_every_option_is_in_the_readme(self) -> None:
        """Each option ``run --help`` lists is in the README's option table (a review found
        --prompts, --schema, --pdf-dpi, --max-side, --denoise and --llm-concurrency only in
        --help)."""
        text = run_help()
        options = set(re.findall(r"^ {2}(--[a-z][a-z-]*)", text, re.MULTILINE))
        options |= set(re.findall(r", (--[a-z][a-z-]*)", text))
        assert len(options) > 40
        rows = [line for line in (PROJECT / "README.md").read_text().splitlines()]
        table = " ".join(line.split(" | ")[0] for line in rows if line.startswith("| `--"))
        missing = sorted(o for o in options - {"--help"} if not re.search(rf"`{o}\b", table))
        assert missing == []


class TestLlmOptionsOffline:
    """LLM options without ``--llm-url``."""

    def test_named_in_one_warning(self, tmp_path: Path) -> None:
        """The LLM options given are named in one warning, and the offline rules run (they
        were ignored without a word)."""
        out = tmp_path / "out.jsonl"
        done = run_cli(
            SAMPLE,
            "--out",
            out,
            *("--llm-model", "gpt-4o", "--llm-stages", "structure"),
            *("--llm-prices", "1,1", "--max-cost", "1"),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert statuses(out) == ["ok"]
        assert (
            "WARNING asyncpipe.documents: no --llm-url, so the offline fallbacks run, and "
            "--llm-model, --llm-stages, --llm-prices, --max-cost are unused"
        ) in done.stderr

    @pytest.mark.parametrize("online", [False, True])
    def test_a_bad_timeout_is_refused_either_way(self, tmp_path: Path, online: bool) -> None:
        """``--llm-timeout -1`` is exit 2 with --llm-url and without (offline it ran)."""
        out = tmp_path / "out.jsonl"
        url = ("--llm-url", "http://127.0.0.1:9/v1") if online else ()
        done = run_cli(SAMPLE, "--out", out, "--llm-timeout", "-1", *url)
        assert done.returncode == 2, done.stderr[-3000:]
        assert "--llm-timeout: must be more than 0 seconds, got -1" in done.stderr
        assert not out.exists()

    def test_a_resume_without_the_llm_is_refused(
        self, tmp_path: Path, server: ServerHandle
    ) -> None:
        """A run started with --llm-url and resumed without it is refused, as the pages
        left would get the offline rules (it finished them so silently); one started by a
        version that kept no options warns, and finishes."""
        out = tmp_path / "out.jsonl"
        llm = ("--llm-url", server.url, "--llm-model", "t", "--llm-stages", "fix,structure")
        first = run_cli(SAMPLE, "--out", out, *llm)
        assert first.returncode == 0, first.stderr[-3000:]
        refused = run_cli(SAMPLE, "--out", out, "--resume")
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert "--llm-url given then, not given now" in refused.stderr
        assert "(--llm-url URL)" in refused.stderr
        kept = tmp_path / "out.jsonl.journal.receipts"
        mode = orjson.loads(kept.read_bytes())
        assert mode["options"]["--llm-stages"] == ["fix", "structure"]
        del mode["options"]
        kept.write_bytes(orjson.dumps(mode))
        resumed = run_cli(SAMPLE, "--out", out, "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert (
            "this run was started with an LLM (--llm-model t, --llm-stages fix,structure), "
            "and is resumed without --llm-url"
        ) in resumed.stderr
        again = run_cli(SAMPLE, "--out", out, "--resume", *llm)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "resumed without --llm-url" not in again.stderr


class TestCostCeilingBelowOneCall:
    """``--max-cost`` below the worst case of one call."""

    PRICES = ("--llm-prices", "1000,1000")

    def test_known_at_the_start_is_exit_2(self, tmp_path: Path, server: ServerHandle) -> None:
        """A ceiling under one structure call's least worst case (its max_tokens from the
        schema) is exit 2 before a page is read (every page was an error record)."""
        out = tmp_path / "out.jsonl"
        llm = ("--llm-url", server.url, "--llm-model", "m1")
        done = run_cli(SAMPLE, "--out", out, *llm, *self.PRICES, "--max-cost", "0.05")
        assert done.returncode == 2, done.stderr[-3000:]
        assert "--max-cost 0.05 is below what one structure call may cost on any page" in (
            done.stderr
        )
        assert not out.exists()

    def test_known_at_a_call_stops_the_run(self, tmp_path: Path, server: ServerHandle) -> None:
        """A ceiling under a page's correct call (its max_tokens from the page's text)
        stops the run at that call with exit 4, nothing written (each page was an error
        record, exit 0)."""
        out = tmp_path / "out.jsonl"
        llm = ("--llm-url", server.url, "--llm-model", "m1")
        done = run_cli(
            SAMPLE,
            SAMPLE.with_name("receipt_restoran.jpg"),
            "--out",
            out,
            *llm,
            *self.PRICES,
            "--max-cost",
            "0.5",
        )
        assert done.returncode == 4, done.stderr[-3000:]
        assert "Run interrupted by the cost ceiling" in done.stderr
        assert "which can never fit under the cost ceiling of 0.5: raise --max-cost" in (
            done.stderr
        )
        assert re.search(
            r"llm worst-case cost: .* of the 0\.5 ceiling.*\b1 call refused by it", done.stderr
        )
        assert statuses(out) == []


class _LlamaCpp(BaseHTTPRequestHandler):
    """Answers as a llama.cpp server: its model list, its slots, and a chat reply."""

    def do_GET(self) -> None:
        if self.path.startswith("/v1/models"):
            self._json({"data": [{"id": "m", "object": "model", "owned_by": "llamacpp"}]})
        elif self.path.startswith("/props"):
            self._json({"total_slots": 2})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        message = {"role": "assistant", "content": "x"}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        self._json({"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage})

    def _json(self, body: object) -> None:
        data = orjson.dumps(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def llama_cpp() -> Iterator[str]:
    """The base URL of a stub that answers as a llama.cpp server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LlamaCpp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestLlamaCppTimeout:
    """A llama.cpp server with the default ``--llm-timeout``."""

    WARNING = "WARNING stages.llm: the LLM server is llama.cpp: each request may take 60 s"

    def test_warned_once_at_the_start(self, tmp_path: Path, llama_cpp: str) -> None:
        """No --llm-timeout: one warning that 60 s is often too short on CPU, naming
        --llm-timeout 300 (the run went on silently, every page timing out on a slow
        model); a timeout given, even 60, is not warned of."""
        llm = ("--llm-url", llama_cpp, "--llm-model", "m", "--llm-stages", "correct")
        done = run_cli(SAMPLE, "--out", tmp_path / "out.jsonl", *llm)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stderr.count(self.WARNING) == 1, done.stderr[-3000:]
        assert "give --llm-timeout 300 for one" in done.stderr
        given = run_cli(SAMPLE, "--out", tmp_path / "given.jsonl", *llm, "--llm-timeout", "60")
        assert given.returncode == 0, given.stderr[-3000:]
        assert "the llama.cpp server has 2 slots" in given.stderr
        assert self.WARNING not in given.stderr


class TestConfigNumbers:
    """A number in a ``--config`` file goes through its option's conversion and checks,
    as its text on the command line does (argparse converts string defaults only)."""

    @staticmethod
    def defaults(tmp_path: Path, text: str) -> dict[str, object]:
        from asyncpipe._config import config_defaults
        from stages._arguments import add_arguments

        parser = argparse.ArgumentParser()
        add_arguments(parser)
        config = tmp_path / "c.toml"
        config.write_text(text + "\n")
        return config_defaults(config, parser)

    def test_a_number_is_read_in_the_options_unit(self, tmp_path: Path) -> None:
        """``max-pixels = 50`` is 50 megapixels, as ``--max-pixels 50`` is; it was 50
        pixels, and every page was refused as a decompression bomb."""
        got = self.defaults(tmp_path, "max-pixels = 50\nmax-stdin = 2\nllm-timeout = 300")
        assert got == {"max_pixels": 50_000_000, "max_stdin": 2 * 2**20, "llm_timeout": 300.0}

    @pytest.mark.parametrize("text", ["llm-timeout = 0", "max-pixels = -1", "max-stdin = 0.0"])
    def test_a_number_the_option_refuses_is_a_config_error(self, tmp_path: Path, text: str) -> None:
        name = text.split(" ")[0]
        with pytest.raises(ConfigError, match=rf"{name} .*: must be more than 0"):
            self.defaults(tmp_path, text)


class TestEngineOptions:
    """rapidocr's page options given to another engine."""

    @staticmethod
    def _args(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(list(argv))

    @pytest.mark.parametrize(
        ("argv", "said"),
        [
            (
                ("--ocr-engine", "paddle", "--no-orient"),
                "--no-orient is rapidocr's: the paddle engine reads pages as they lie, "
                "so it changes nothing",
            ),
            (
                ("--ocr-engine", "paddle", "--no-orient", "--no-unbend"),
                "--no-orient and --no-unbend are rapidocr's: the paddle engine reads pages "
                "as they lie, so they change nothing",
            ),
            (("--no-orient", "--no-unbend"), None),
            (("--ocr-engine", "paddle"), None),
        ],
    )
    def test_warned_when_the_engine_ignores_them(
        self, argv: tuple[str, ...], said: str | None, caplog: pytest.LogCaptureFixture
    ) -> None:
        """paddle reads pages as they lie: ``--no-orient``/``--no-unbend`` with it are
        named in one warning (they were ignored without a word); with rapidocr, none."""
        with caplog.at_level("WARNING", logger="asyncpipe.documents"):
            _check_options(self._args(*argv))
        warned = [r.getMessage() for r in caplog.records if "rapidocr's" in r.getMessage()]
        assert warned == ([said] if said else [])
