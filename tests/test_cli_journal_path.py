"""``--journal`` names a file: a folder, or a path ending with a slash, is refused as typed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
APP_RUN = ("--app", "cliapp:app", "run")


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asyncpipe ARGS`` in ``cwd`` to the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCPIPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "asyncpipe", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused(typed: str, *options: str, cwd: Path) -> None:
    """A run given ``options`` exits 2 naming ``--journal {typed}`` as typed, and writes
    nothing in ``cwd``."""
    (cwd / "n.txt").write_text("".join(f"{n}\n" for n in range(3)))
    before = sorted(cwd.iterdir())
    done = cli(*APP_RUN, "n.txt", "--out", "o.jsonl", "--side", "s", *options, cwd=cwd)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"asyncpipe: --journal {typed} is a folder: give a file path, e.g. "
        f"{Path(typed) / 'results.jsonl.journal'}\n"
    )
    assert sorted(cwd.iterdir()) == before


class TestJournalPath:
    def test_a_folder_journal_is_named_as_typed(self, tmp_path: Path) -> None:
        """``--journal dd/`` of a folder says ``--journal dd/ is a folder``, with its slash
        (it said ``dd``); ``--journal new/`` of no folder yet exits 2 alike, where it was
        taken as the file ``new``, and the run wrote its journal there."""
        (tmp_path / "dd").mkdir()
        for typed in ("dd/", "new/"):
            refused(typed, "--journal", typed, cwd=tmp_path)

    def test_a_config_files_journal_keeps_its_slash(self, tmp_path: Path) -> None:
        """``journal = "new/"`` in a ``--config`` file is refused as ``--journal new/`` is
        (the config made it a Path, which drops the slash, and the run wrote its journal
        as the file ``new``)."""
        (tmp_path / "run.toml").write_text('journal = "new/"\n')
        refused("new/", "--config", "run.toml", cwd=tmp_path)
