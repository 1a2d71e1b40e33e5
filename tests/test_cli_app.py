from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest
from cliapp import CountingApp
from killing import kill_when

import asyncpipe
from asyncpipe import (
    ConfigError,
    Journal,
    JournalError,
    Pipeline,
    RateLimit,
    RunOptions,
    Stage,
    load_app,
)
from asyncpipe._args import build_parser, parse, run_options
from asyncpipe._cli import main

ROOT = Path(__file__).resolve().parent.parent
APP_RUN = ("--app", "cliapp:app", "run")
TESTS = Path(__file__).resolve().parent


def cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asyncpipe --app cliapp:app ARGS`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "asyncpipe", *map(str, args)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCPIPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


async def _identity(value: object) -> object:
    return value


def numbers(path: Path, count: int) -> Path:
    path.write_text("".join(f"{n}\n" for n in range(count)))
    return path


def run_three(tmp_path: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    """Run the counting app over three numbers in ``tmp_path``, with ``extra`` options."""
    source = numbers(tmp_path / "n.txt", 3)
    return cli(*APP_RUN, source, "--out", tmp_path / "o.jsonl", "--side", tmp_path / "side", *extra)


def usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    """What ``run a --out o --side s OPTIONS`` says on stderr as it exits 2."""
    argv = ["run", "a", "--out", str(tmp_path / "o"), "--side", "s", *options]
    with pytest.raises(SystemExit) as raised:
        parse(argv, CountingApp())
    assert raised.value.code == 2
    return capsys.readouterr().err


def read_lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class TestCountingApp:
    """A non-document app runs through the real command line."""

    def test_restarts_once_with_the_apps_start_environment(self, tmp_path: Path) -> None:
        """The command restarts itself (same pid) with the app's variables, and runs once."""
        source = numbers(tmp_path / "n.txt", 3)
        log, out = tmp_path / "env.log", tmp_path / "out.jsonl"
        args = ["--app", "cliapp:app", "run", source, "--out", out, "--side", tmp_path / "side"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "asyncpipe", *map(str, args), "--env-log", str(log)],
            cwd=ROOT,
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert log.read_text().split() == [str(proc.pid), "1"]
        assert len(read_lines(out)) == 3

    def test_run_applies_overrides_by_name(self, tmp_path: Path) -> None:
        """Items come out in input order; --workers and --rate-limit reach stages by name."""
        source = numbers(tmp_path / "n.txt", 30)
        out = tmp_path / "out.jsonl"
        done = cli(
            "--app",
            "cliapp:app",
            "run",
            source,
            "--out",
            out,
            "--side",
            tmp_path / "side",
            "--workers",
            "math=3,parse=1",
            "--rate-limit",
            "calls=1000/s",
            "--progress",
            "none",
        )
        assert done.returncode == 0, done.stderr
        lines = read_lines(out)
        assert [line["id"] for line in lines] == [f"n.txt:{n + 1}" for n in range(30)]
        assert [line["value"] for line in lines] == [n * n + 1 for n in range(30)]
        assert "square" in done.stderr and "paid" in done.stderr  # the summary table
        usage = cli("--app", "cliapp:app", "run", "--help").stdout
        assert "document" not in (done.stderr + usage).lower()

    def test_an_output_that_cannot_be_written_says_how_to_go_on(self, tmp_path: Path) -> None:
        """A full disk under the output: one line saying so, and the command that finishes
        the run, exit 1 (round 24's audit: a 60-line OSError traceback, twice, and no way
        on)."""
        source = numbers(tmp_path / "n.txt", 30)
        out = tmp_path / "out.jsonl"
        out.symlink_to("/dev/full")  # every write: no space left on device
        done = cli(
            *APP_RUN, source, "--out", out, "--side", tmp_path / "side", "--progress", "none"
        )
        assert done.returncode == 1, done.stderr
        assert f"asyncpipe: OutputError: cannot write the output {out}: No space left" in (
            done.stderr
        )
        assert "Traceback" not in done.stderr
        assert done.stderr.rstrip().endswith(" --progress none --resume")

    def test_a_folder_it_cannot_write_is_said_so(self, tmp_path: Path) -> None:
        """An output in a folder the run cannot write (``/proc``: not even root can) says
        so, exit 2, with no advice to resume a run that wrote nothing (a review: a
        JournalError, exit 1, and "The lines written so far are kept ... --resume")."""
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc")
        source = numbers(tmp_path / "n.txt", 3)
        out = Path("/proc") / f"asyncpipe-{os.getpid()}.jsonl"
        done = cli(*APP_RUN, source, "--out", out, "--side", tmp_path / "side")
        assert done.returncode == 2, done.stderr
        journal = f"{out}.journal"
        assert done.stderr == (
            f"asyncpipe: cannot write in /proc, the folder of the journal {journal} (No such "
            f"file or directory: {journal}.lock): give the run a folder it can write\n"
        )

    def test_resume_and_overwrite_together_are_refused(self, tmp_path: Path) -> None:
        """--resume --overwrite is a contradiction, refused (round 24's audit: --overwrite
        was silently ignored)."""
        source, out = numbers(tmp_path / "n.txt", 3), tmp_path / "out.jsonl"
        done = cli(*APP_RUN, source, "--out", out, "--side", out, "--resume", "--overwrite")
        assert done.returncode == 2 and "--overwrite and --resume say opposite things" in (
            done.stderr
        )

    def test_an_output_that_is_a_folder_is_a_usage_error(self, tmp_path: Path) -> None:
        """``--out`` naming a folder, or ending with a slash, exits 2 before anything is
        written or locked (a review: an IsADirectoryError traceback and a stale
        ``dd.journal.lock``, and ``--out new/`` wrote a file named ``new``)."""
        source, folder = numbers(tmp_path / "n.txt", 3), tmp_path / "dd"
        folder.mkdir()
        before = sorted(tmp_path.iterdir())
        for out, extra in (
            (folder, ["--overwrite"]),
            (folder, []),
            (f"{tmp_path / 'new'}/", []),
        ):
            done = cli(*APP_RUN, source, "--out", out, "--side", tmp_path / "side", *extra)
            name = str(out)
            assert done.returncode == 2, done.stderr
            assert done.stderr == (
                f"asyncpipe: --out {name} is a folder: give a file path, e.g. "
                f"{Path(name) / 'results.jsonl'}\n"
            )
        assert sorted(tmp_path.iterdir()) == before
        assert list(folder.iterdir()) == []
        done = cli(*APP_RUN, source, "--out", tmp_path / "o", "--journal", folder, "--side", "s")
        assert done.returncode == 2 and "--journal " in done.stderr and "is a folder" in done.stderr
        config = tmp_path / "c.toml"
        config.write_text(f'out = "{tmp_path / "new"}/"\n')
        done = cli(*APP_RUN, source, "--config", config, "--side", tmp_path / "side")
        assert done.returncode == 2 and "is a folder: give a file path" in done.stderr
        assert not (tmp_path / "new").exists()
        # A file's name with a slash, and a folder where the journal would go (hK's review:
        # "is a folder" of a file, and "exists from an earlier run" of the folder).
        (tmp_path / "f.jsonl").write_bytes(b"")
        done = cli(*APP_RUN, source, "--out", f"{tmp_path / 'f.jsonl'}/", "--side", "s")
        assert done.returncode == 2, done.stderr
        assert f"but {tmp_path / 'f.jsonl'} is a file: give its path without" in done.stderr
        (tmp_path / "y.jsonl.journal").mkdir()
        done = cli(*APP_RUN, source, "--out", tmp_path / "y.jsonl", "--side", "s", "--overwrite")
        assert done.returncode == 2, done.stderr
        assert f"default path, {tmp_path / 'y.jsonl.journal'}, is a folder" in done.stderr
        assert not (tmp_path / "y.jsonl").exists()

    def test_http_requests_are_logged_only_when_debugging(self, tmp_path: Path) -> None:
        """The HTTP client's INFO line per request (its URL whole, query string too) is
        not logged at the default level, its warnings are; ``--log-level debug`` shows
        both (a review: an ``INFO httpx: HTTP Request`` line per LLM call)."""
        source = numbers(tmp_path / "n.txt", 2)
        run = [*APP_RUN, source, "--side", tmp_path / "side", "--log-http", "--progress", "log"]
        done = cli(*run, "--out", tmp_path / "a.jsonl")
        assert done.returncode == 0, done.stderr
        assert "HTTP Request" not in done.stderr and "api-key" not in done.stderr
        assert done.stderr.count("WARNING httpx: an httpx warning") == 2
        done = cli(*run, "--out", tmp_path / "b.jsonl", "--log-level", "debug")
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("INFO httpx: HTTP Request: POST") == 2

    def test_ctrl_c_while_starting(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Ctrl-C before the run watches for it is exit 130 with the command that finishes
        the run, not a KeyboardInterrupt traceback (round 24's audit: 5 of 52 early stops)."""
        import asyncpipe._cli

        def interrupted(*args: object) -> int:
            raise KeyboardInterrupt

        monkeypatch.setattr(anyio, "run", interrupted)  # as asyncpipe._cli calls it
        monkeypatch.setenv("PYTHONPATH", str(TESTS))
        source, out = numbers(tmp_path / "n.txt", 3), tmp_path / "out.jsonl"
        code = asyncpipe._cli.main(
            ["--app", "cliapp:app", "run", str(source), "--out", str(out), "--side", str(out)]
        )
        said = capsys.readouterr().err
        assert code == 130 and "asyncpipe: interrupted while starting (SIGINT)" in said
        assert said.rstrip().endswith(f"--out {out} --side {out} --resume")

    def test_unknown_stage_in_workers(self, tmp_path: Path) -> None:
        """A name that is no stage or group exits 2 naming the stages and groups."""
        done = run_three(tmp_path, "--workers", "ocr=2")
        assert done.returncode == 2
        assert "no stage or group named 'ocr'" in done.stderr
        assert "stages: parse, square, paid; groups: math" in done.stderr

    def test_unknown_limit_name(self, tmp_path: Path) -> None:
        """A named rate limit that no stage declares exits 2."""
        done = run_three(tmp_path, "--rate-limit", "llm=5/s")
        assert done.returncode == 2
        said = "neither a stage nor the pipeline declares a limit named 'llm' (declared: calls)"
        assert said in done.stderr

    def test_resume_after_sigkill(self, tmp_path: Path) -> None:
        """A run killed mid-way and resumed writes every item once, without paying twice."""
        count = 120
        source = numbers(tmp_path / "n.txt", count)
        out, side = tmp_path / "out.jsonl", tmp_path / "side"
        args = [
            "--app",
            "cliapp:app",
            "run",
            source,
            "--out",
            out,
            "--side",
            side,
            "--delay",
            "0.02",
            "--workers",
            "paid=2",
            "--progress",
            "none",
        ]
        log = tmp_path / "run1.log"
        with open(log, "wb") as sink:
            first = subprocess.Popen(
                [sys.executable, "-m", "asyncpipe", *map(str, args), "--run-id", "1"],
                cwd=ROOT,
                env=_env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        kill_when(
            first,
            lambda: out.exists() and out.read_bytes().count(b"\n") >= 10,
            within=30,
            every=0.02,
            log=log,
        )
        written = {line["id"] for line in read_lines(out)}
        assert 10 <= len(written) < count
        again = cli(*args, "--run-id", "2")
        assert again.returncode == 2 and "--resume" in again.stderr  # never overwrites
        done = cli(*args, "--run-id", "2", "--resume")
        assert done.returncode == 0, done.stderr
        lines = read_lines(out)
        assert sorted(str(line["id"]) for line in lines) == sorted(
            f"n.txt:{n + 1}" for n in range(count)
        )
        calls = [line.split() for line in side.read_text().splitlines()]
        repeated = {key for run, key in calls if run == "2"} & written
        assert repeated == set(), "the resumed run paid again for items already written"
        assert len({key for run, key in calls if run == "2"}) <= count - len(written)


class TestRunOptions:
    """The app gets typed options, and its own options apart."""

    def test_app_options_hold_only_the_apps(self, tmp_path: Path) -> None:
        """RunOptions.app_options holds what the app added, and nothing of the framework's."""
        args, dests = parse(
            [
                "run",
                "x.txt",
                "--out",
                str(tmp_path / "o"),
                "--side",
                "s",
                "--workers",
                "math=2",
                "--rate-limit",
                "9/s",
            ],
            CountingApp(),
        )
        options = run_options(args, dests)
        assert sorted(vars(options.app_options)) == [
            "delay",
            "env_log",
            "log_http",
            "run_id",
            "side",
        ]
        assert options.workers == {"math": 2}
        assert options.ordered is True
        assert options.default_limit is not None and options.default_limit.limit == 9
        assert options.journal == tmp_path / "o.journal"

    def test_inputs_after_an_option(self, tmp_path: Path) -> None:
        """``run a --out o b`` runs both inputs (argparse refused ``b``); an unknown
        option among them is still refused."""
        out = str(tmp_path / "o")
        args, dests = parse(["run", "a", "--out", out, "b", "--side", "s", "c"], CountingApp())
        assert run_options(args, dests).inputs == ["a", "b", "c"]
        with pytest.raises(SystemExit):
            parse(["run", "a", "--out", out, "b", "--bogus"], CountingApp())

    def test_run_options_cache_their_limits_out_of_reach(self, tmp_path: Path) -> None:
        """`RunOptions.limit` gives one object per name, from a cache that is no
        constructor argument (round 32's review: ``_made=`` was one, in a frozen class)."""
        out, journal = tmp_path / "o", tmp_path / "j"
        with pytest.raises(TypeError, match="_made"):
            RunOptions(inputs=[], out=out, journal=journal, _made={})  # type: ignore[call-arg]
        options = RunOptions(inputs=[], out=out, journal=journal, default_limit=RateLimit(5, 1))
        made = options.limit("llm", RateLimit(1, 1))
        assert options.limit("llm", RateLimit(1, 1)) is made and made.limit == 5

    def test_a_space_for_the_equals_sign_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--rate-limit x 10/s`` exits 2 showing the right form, not a run of ``10/s``."""
        said = usage_error(tmp_path, capsys, "--rate-limit", "x", "10/s")
        assert said.startswith("usage: asyncpipe run")
        assert "argument --rate-limit: 'x' is neither a RATE nor NAME=RATE" in said
        assert "e.g. --rate-limit llm=10/s" in said
        assert "Did you mean --rate-limit x=10/s? ('10/s' was read as an INPUT)" in said

    def test_a_log_level_that_is_none_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--log-level verbose`` exits 2 listing the levels, as does a ``--config`` file's
        (round 32's review: a ValueError traceback from logging); any case is a level."""
        source = numbers(tmp_path / "n.txt", 1)
        out = tmp_path / "o.jsonl"
        done = cli(*APP_RUN, source, "--out", out, "--side", "s", "--log-level", "verbose")
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "argument --log-level: 'verbose' is not a log level (choose from DEBUG," in (
            done.stderr
        )
        assert not out.exists()
        config = tmp_path / "c.toml"
        config.write_text('log_level = "loud"\n')
        said = usage_error(tmp_path, capsys, "--config", str(config))
        assert "argument --log-level: 'loud' is not a log level" in said
        args, _ = parse(
            ["run", "a", "--out", str(out), "--side", "s", "--log-level", "debug"], CountingApp()
        )
        assert args.log_level == "DEBUG"

    def test_a_config_files_value_out_of_an_options_choices_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``progress = "bogus"`` in a ``--config`` file is a usage error listing the
        choices, as ``--progress bogus`` is (argparse checks choices on the command line
        only: the run went on with the value); a value among them is taken."""
        config = tmp_path / "c.toml"
        argv = ["run", "a", "--out", str(tmp_path / "o"), "--side", "s", "--config", str(config)]
        for text, said in [
            ('progress = "bogus"', "progress must be one of 'auto', 'rich', 'log', 'json'"),
            ('executor = "dask"', "executor must be one of 'threads', 'ray', not 'dask'"),
        ]:
            config.write_text(text + "\n")
            with pytest.raises(ConfigError, match=re.escape(said)):
                parse(argv, CountingApp())
        config.write_text('progress = "none"\nexecutor = "threads"\n')
        args, _ = parse(argv, CountingApp())
        assert (args.progress, args.executor) == ("none", "threads")
        config.write_text('progress = "bogus"\n')
        done = cli(
            *APP_RUN,
            numbers(tmp_path / "n.txt", 1),
            "--out",
            tmp_path / "o.jsonl",
            "--side",
            "s",
            "--config",
            config,
        )
        assert done.returncode == 2, done.stderr
        assert "progress must be one of" in done.stderr

    def test_a_space_for_the_equals_sign_in_workers(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--workers math 2`` exits 2 showing the right form; a bad count names it."""
        said = usage_error(tmp_path, capsys, "--workers", "math", "2")
        assert "argument --workers: 'math' is not NAME=COUNT; e.g. --workers llm=32" in said
        assert "Did you mean --workers math=2? ('2' was read as an INPUT)" in said
        said = usage_error(tmp_path, capsys, "--workers", "math=x")
        assert "workers for 'math' must be a whole number, not 'x'" in said

    def test_a_space_inside_a_rate_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--rate-limit 10 /s`` and its kin exit 2 saying what was meant (round 29: the
        generic message, with no hint); a rate given whole takes the inputs after it."""
        cases = {
            ("10", "/s"): "--rate-limit 10/s? ('/s' was read as an INPUT)",
            ("10/", "s"): "--rate-limit 10/s? ('s' was read as an INPUT)",
            ("10", "/", "s"): "--rate-limit 10/s? ('/' and 's' were read as INPUTs)",
            ("llm=10", "/min"): "--rate-limit llm=10/min? ('/min' was read as an INPUT)",
        }
        for words, meant in cases.items():
            said = usage_error(tmp_path, capsys, "--rate-limit", *words)
            assert "argument --rate-limit: " in said
            assert f"Did you mean {meant}" in said, words
        said = usage_error(tmp_path, capsys, "--rate-limit=10", "/s")
        assert "Did you mean --rate-limit 10/s?" in said
        args, _ = parse(
            ["run", "a", "--out", str(tmp_path / "o"), "--side", "s", "--rate-limit", "10/s", "/b"],
            CountingApp(),
        )
        assert args.inputs == ["a", "/b"] and args.rate_limit == "10/s"

    def test_a_space_inside_an_app_s_rate_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The document app's ``--token-limit 200000 /min`` exits 2 saying what was meant
        (round 29: 'cannot read rate' once the run began); a whole rate parses."""
        import stages.app

        out = str(tmp_path / "o")
        for words, tail in ((("200000", "/min"), "'/min'"), (("200000/", "min"), "'min'")):
            with pytest.raises(SystemExit) as raised:
                parse(["run", "a.png", "--out", out, "--token-limit", *words], stages.app.app)
            said = capsys.readouterr().err
            assert raised.value.code == 2 and said.startswith("usage: asyncpipe run")
            assert f"argument --token-limit: cannot read rate {words[0]!r}" in said
            assert f"Did you mean --token-limit 200000/min? ({tail} was read as an INPUT)" in said
        argv = ["run", "a.png", "--out", out, "--token-limit", "200000/min", "/b.png"]
        args, _ = parse(argv, stages.app.app)
        assert args.inputs == ["a.png", "/b.png"] and args.token_limit == "200000/min"
        # A malformed rate with nothing to complete it is left to the app, as before.
        args, _ = parse(["run", "a.png", "--out", out, "--token-limit", "200000"], stages.app.app)
        assert args.token_limit == "200000"

    def test_limit_an_app_acquires_itself(self, tmp_path: Path) -> None:
        """options.limit gives one object per name, and the configured pipeline holds it."""
        args, dests = parse(
            ["run", "x", "--out", str(tmp_path / "o"), "--side", "s", "--rate-limit", "9/s"],
            CountingApp(),
        )
        options = run_options(args, dests)
        client_limit = options.limit("api", RateLimit(1, 1))
        assert client_limit is options.limit("api", RateLimit(1, 1))
        assert (client_limit.limit, client_limit.period) == (9, 1.0)
        pipeline = Pipeline([Stage("s", _identity)], limits={"api": RateLimit(1, 1)})
        assert pipeline.limit_names == {"api"}
        assert options.configure(pipeline).limits["api"] is client_limit


class TestJournalCommand:
    """``asyncpipe journal show|compact`` says what each does, and what a path is not."""

    def test_help_describes_each_action(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``journal --help`` describes show and compact (a review: bare names)."""
        with pytest.raises(SystemExit):
            main(["journal", "--help"])
        said = " ".join(capsys.readouterr().out.split())
        assert "show count the journal's events" in said
        # What compact keeps, as it does (it said "the latest checkpoints").
        assert "the latest checkpoint of each stage" in said
        assert "compact rewrite the journal with only what a resume needs" in said

    def test_a_missing_journal_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A path that does not exist exits 2 (``show`` counted 0 events, exit 0), as does
        a folder; nothing is created."""
        for action in ("show", "compact"):
            assert main(["journal", action, str(tmp_path / "nope.journal")]) == 2
            assert capsys.readouterr().err == (
                f"asyncpipe: no such journal: {tmp_path / 'nope.journal'}\n"
            )
            assert main(["journal", action, str(tmp_path)]) == 2
            assert "is a folder: give the journal file" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []

    def test_the_output_is_told_from_a_corrupt_journal(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The output given for its journal exits 2 naming the journal (it said 'corrupt
        ...: move it aside'); a journal corrupt mid-file is still called corrupt."""
        out = tmp_path / "r.jsonl"
        out.write_bytes(b'{"id":"a","status":"ok"}\n')
        journal = tmp_path / "r.jsonl.journal"
        journal.write_bytes(b'{"ev":"done","k":"a","status":"ok"}\n')
        for action in ("show", "compact"):
            assert main(["journal", action, str(out)]) == 2
            assert capsys.readouterr().err == (
                f"asyncpipe: {out} is a run's output, not a journal: its journal is {journal}\n"
            )
        assert out.read_bytes() == b'{"id":"a","status":"ok"}\n'
        assert main(["journal", "show", str(journal)]) == 0
        assert "1 items done (1 ok" in capsys.readouterr().out
        # A journal corrupt mid-file is read as a resume reads it: the corrupt lines named,
        # the rest counted (it exited 1 on "corrupt at line 2: move it aside").
        journal.write_bytes(b'{"ev":"done","k":"a","status":"ok"}\n{"ev":\n{"ev":"done"}\n')
        assert main(["journal", "show", str(journal)]) == 0
        said = capsys.readouterr().out
        assert "1 items done (1 ok" in said
        assert "corrupt (skipped): 2 lines (line 2, line 3)" in said
        # A JSON object with no journal beside it is not called a run's output.
        other = tmp_path / "hello.json"
        other.write_bytes(b'{"hello":1}\n')
        assert main(["journal", "show", str(other)]) == 2
        said = capsys.readouterr().err
        assert f"{other} is not a journal: its first line is a JSON object" in said, said

    def test_a_file_that_is_no_journal_is_never_rewritten(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A JPEG, a CSV or an empty file given to ``journal`` exits 2 and is left as it
        was (a review: ``compact`` rewrote each as a journal of no events, exit 0, a
        98 KB receipt left 68 bytes); the library's ``Journal.compact`` refuses too."""
        files = {
            "scan.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4,
            "notes.csv": b"name,total\nA,1\n",
            "empty.jsonl": b"",
        }
        for name, content in files.items():
            (tmp_path / name).write_bytes(content)
            for action in ("show", "compact"):
                assert main(["journal", action, str(tmp_path / name)]) == 2, name
                said = capsys.readouterr().err
                assert "is not a journal" in said or "holds no journal event" in said, said
            assert (tmp_path / name).read_bytes() == content
        refused = r"it is not a journal \(line 1 is no journal event\)"
        with pytest.raises(JournalError, match=refused):
            anyio.run(Journal.compact, tmp_path / "notes.csv")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


class TestAppDiscovery:
    """Apps are found by entry point or by module:attribute."""

    def test_registered_document_app_is_the_default(self) -> None:
        """With only the document app installed, it is the default and found by name."""
        import stages.app

        assert load_app(None) is stages.app.app
        assert load_app("documents") is stages.app.app

    def test_unknown_app(self) -> None:
        """An unknown name lists the installed apps; a bad module path says so."""
        with pytest.raises(ConfigError, match=r"no app named 'nope' \(installed apps: documents\)"):
            load_app("nope")
        with pytest.raises(ConfigError, match="cannot load app 'no_such_module:app'"):
            load_app("no_such_module:app")

    def test_journal_command_needs_no_app(self, tmp_path: Path) -> None:
        """`asyncpipe journal show` works whatever app is (or is not) installed."""
        journal = tmp_path / "j"
        journal.write_bytes(b'{"ev":"done","k":"a","status":"ok"}\n')
        done = cli("--app", "no_such_module:app", "journal", "show", journal)
        assert done.returncode == 0, done.stderr
        assert "1 items done (1 ok" in done.stdout

    def test_help_names_the_readme_s_exit_codes(self) -> None:
        """``--help`` and ``run --help`` list the exit codes of the README's table, no more
        and no fewer (a review: both left out 4, a cost ceiling's stop)."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        table = readme.split("Exit codes:", 1)[1].split("\n\n", 2)[1]
        rows = re.findall(r"^\| ([\d /]+) \|", table, flags=re.MULTILINE)
        documented = {int(code) for row in rows for code in row.split("/")}
        assert documented >= {0, 1, 2, 3, 4, 130, 143}
        for parser in build_parser(CountingApp()):
            said = " ".join(parser.format_help().split()).split("exit codes: ", 1)[1]
            listed = re.findall(r"(?:^|, )(\d+)(?:/(\d+))? ", said)
            assert {int(code) for pair in listed for code in pair if code} == documented

    def test_no_bench_subcommand(self) -> None:
        """Benchmarks are not a framework command."""
        assert cli("bench").returncode == 2
        assert not hasattr(asyncpipe, "bench")
