"""A ``--config`` file takes every option under the name the command line gives it."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asyncpipe import ConfigError, load_app
from asyncpipe._args import build_parser, parse
from asyncpipe._config import config_defaults

ROOT = Path(__file__).resolve().parent.parent


def _flags(run: argparse.ArgumentParser) -> list[str]:
    """The ``run`` parser's listed flags (``--unordered``, ``--no-orient``)."""
    return [
        option
        for action in run._actions
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
        and action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]


class TestConfigKeys:
    def test_every_flag_is_a_key_under_its_own_name(self, tmp_path: Path) -> None:
        """``name = true`` in the file does what ``--name`` does, for each flag of the
        document app's ``run`` (``unordered = true`` was an unknown option, as was
        ``no-llm-feedback``: they set values of other names); ``false`` leaves it off."""
        app = load_app("documents")
        _, run = build_parser(app)
        flags = _flags(run)
        assert {"--unordered", "--no-llm-feedback", "--no-orient", "--resume"} <= set(flags)
        config = tmp_path / "c.toml"
        base = ["run", "a.jpg", "--out", str(tmp_path / "o.jsonl")]
        plain, _ = parse(base, app)
        for flag in flags:
            typed, _ = parse([*base, flag], app)
            config.write_text(f"{flag[2:]} = true\n")
            read, _ = parse([*base, "--config", str(config)], app)
            assert vars(read) == {**vars(typed), "config": config}, flag
            config.write_text(f"{flag[2:]} = false\n")
            off, _ = parse([*base, "--config", str(config)], app)
            assert vars(off) == {**vars(plain), "config": config}, flag

    def test_every_option_is_a_key_under_its_own_name(self, tmp_path: Path) -> None:
        """Each long option of ``run`` but --config and --app is a key: a file naming it
        may give it a wrong value, but never meets "unknown option"."""
        app = load_app("documents")
        _, run = build_parser(app)
        names = [
            option[2:]
            for action in run._actions
            if action.dest not in ("app", "config", "help")
            for option in action.option_strings
            if option.startswith("--")
        ]
        assert len(names) > 40
        config = tmp_path / "c.toml"
        unknown = []
        for name in names:
            config.write_text(f"{name} = true\n")
            try:
                config_defaults(config, run)
            except ConfigError as exc:
                if "unknown option" in str(exc):
                    unknown.append(name)
        assert unknown == []

    def test_an_unknown_key_names_the_closest(self, tmp_path: Path) -> None:
        """A misspelt key is refused naming the option meant; a name far from any is
        refused alone."""
        app = load_app("documents")
        _, run = build_parser(app)
        config = tmp_path / "c.toml"
        for text, said in [
            ("unorderd = true", "unknown option 'unorderd'; did you mean 'unordered'?"),
            ('worker = "ocr=2"', "unknown option 'worker'; did you mean 'workers'?"),
            ("no-orientation = true", "did you mean 'no-orient'?"),
            ("zzzz = 1", "unknown option 'zzzz'"),
        ]:
            config.write_text(text + "\n")
            with pytest.raises(ConfigError, match=re.escape(said) + "$"):
                config_defaults(config, run)

    def test_a_flag_takes_true_or_false_and_one_option_once(self, tmp_path: Path) -> None:
        """``no-crop = "no"`` is refused (a string was a true value), and so are two keys
        of one option (``unordered`` and ``ordered``); a string where a list goes is the
        list of it."""
        app = load_app("documents")
        _, run = build_parser(app)
        config = tmp_path / "c.toml"
        for text, said in [
            ('no-crop = "no"', "no-crop is a flag: give true or false, not 'no'"),
            ("unordered = true\nordered = true", "unordered and ordered set the same option"),
        ]:
            config.write_text(text + "\n")
            with pytest.raises(ConfigError, match=re.escape(said)):
                config_defaults(config, run)
        config.write_text('pdf-password-env = "PW"\nordered = false\nllm_feedback = false\n')
        assert config_defaults(config, run) == {
            "pdf_password_env": ["PW"],
            "ordered": False,
            "llm_feedback": False,
        }

    def test_unordered_in_a_config_file_runs(self, tmp_path: Path) -> None:
        """``asyncpipe run --config c.toml`` with ``unordered = true`` runs (it exited 2,
        ``unknown option 'unordered'``)."""
        source = tmp_path / "n.txt"
        source.write_text("".join(f"{n}\n" for n in range(5)))
        config = tmp_path / "c.toml"
        config.write_text(f'unordered = true\nout = "{tmp_path / "o.jsonl"}"\n')
        done = subprocess.run(
            [
                *(sys.executable, "-m", "asyncpipe", "--app", "cliapp:app", "run", str(source)),
                *("--side", str(tmp_path / "side"), "--config", str(config)),
            ],
            cwd=ROOT,
            env={"PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 5
