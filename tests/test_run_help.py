"""``asyncpipe run --help`` says what the app's INPUT is, and its --workers example runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import clirun
from cliapp import CountingApp
from PIL import Image

from asyncpipe import load_app
from asyncpipe._args import build_parser


def _help(run: argparse.ArgumentParser, dest: str) -> str:
    (action,) = [action for action in run._actions if action.dest == dest]
    assert action.help is not None
    return action.help


class TestRunHelp:
    def test_the_document_apps_workers_example_runs(self, tmp_path: Path) -> None:
        """The document app's INPUT is described as scans and PDFs, and its --workers
        example names its own stages: a run given it exits 0 (``parse=2`` named no
        stage of the app, and exited 2)."""
        _, run = build_parser(load_app("documents"))
        assert _help(run, "inputs").startswith("scans and PDFs: files, folders")
        found = re.search(r"e\.g\. (\S+)$", _help(run, "workers"))
        assert found is not None
        page = tmp_path / "a.png"
        Image.new("RGB", (200, 100), "white").save(page)
        out = tmp_path / "out.jsonl"
        done = clirun.run_cli(page, "--out", out, "--workers", found[1])
        assert done.returncode == 0, done.stderr
        assert len(out.read_bytes().splitlines()) == 1

    def test_an_app_that_says_nothing_gets_words_not_to_copy(self) -> None:
        """An app without ``inputs_help`` or ``workers_example`` gets the generic INPUT
        and a --workers help that gives no value to copy."""
        _, run = build_parser(CountingApp())
        assert _help(run, "inputs") == "the inputs, as the app reads them"
        workers = _help(run, "workers")
        assert "e.g." not in workers
        assert "NAME=COUNT" in workers
