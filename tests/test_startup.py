"""
A Ctrl-C while the command imports the package (`asyncpipe._startup`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncpipe._startup import run_as_command

PROJECT = Path(__file__).resolve().parents[1]


def _sigint_default() -> None:
    """In the child, before it runs: SIGINT as a terminal's foreground command has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TestStartup:
    """A SIGINT before ``main`` runs is answered as one during the rest of the start."""

    def test_ctrl_c_while_the_package_is_imported(self, tmp_path: Path) -> None:
        """SIGINT once the first of the package's modules is imported: the message and
        130, not a ``KeyboardInterrupt`` traceback and death by the signal."""
        notes = tmp_path / "notes.txt"
        notes.write_text("not a scan\n")
        out = tmp_path / "r.jsonl"
        run = subprocess.Popen(
            [sys.executable, "-m", "asyncpipe", "run", str(notes), "--out", str(out)],
            cwd=PROJECT,
            stderr=subprocess.PIPE,
            # Python prints a line to stderr as each import ends: the first of the
            # package's own says the signal lands inside ``import asyncpipe`` (the rest of
            # the package takes about 0.2 s, longer under load).
            env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
            # A command started in the background inherits SIGINT ignored; a terminal's
            # Ctrl-C reaches a command that has Python's handler.
            preexec_fn=_sigint_default,
        )
        assert run.stderr is not None
        try:
            seen = b""
            deadline = time.monotonic() + 60
            for line in run.stderr:
                seen += line
                if b" asyncpipe._" in line:
                    break
                assert time.monotonic() < deadline
            else:
                pytest.fail(f"no asyncpipe import seen: {seen.decode()[-2000:]}")
            run.send_signal(signal.SIGINT)
            err = seen + run.stderr.read()
            code = run.wait(timeout=60)
        finally:
            run.kill()
            run.wait()
            run.stderr.close()
        text = err.decode()
        assert code == 130, text[-3000:]
        assert "asyncpipe: interrupted while starting (SIGINT)" in text
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
        assert not out.exists()

    def test_ctrl_c_while_the_restarted_command_starts(self, tmp_path: Path) -> None:
        """SIGINT while the process `restart_with` restarted is still in ``site`` (held
        there by a ``sitecustomize`` that sleeps): the message and 130, not death by
        the signal or "Fatal Python error: init_import_site"."""
        hold = tmp_path / "hold"
        hold.mkdir()
        reached = tmp_path / "in-site"
        (hold / "sitecustomize.py").write_text(
            "import os, time\n"
            "if os.environ.get('ASYNCPIPE_RESTARTED'):\n"
            f"    open({str(reached)!r}, 'w').close()\n"
            "    time.sleep(3)\n"
        )
        source = tmp_path / "n.txt"
        source.write_text("1\n2\n")
        out = tmp_path / "out.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCPIPE_", "CLIAPP_"))}
        env["PYTHONPATH"] = os.pathsep.join([str(hold), str(PROJECT / "tests")])
        command = ["--app", "cliapp:app", "run", str(source), "--out", str(out)]
        run = subprocess.Popen(
            [sys.executable, "-m", "asyncpipe", *command, "--side", str(tmp_path / "side")],
            cwd=PROJECT,
            env=env,
            stderr=subprocess.PIPE,
            preexec_fn=_sigint_default,
        )
        try:
            deadline = time.monotonic() + 60
            while not reached.exists():
                assert run.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=60)
        finally:
            run.kill()
            run.wait()
        text = err.decode()
        assert run.returncode == 130, text[-3000:]
        assert "asyncpipe: interrupted while starting (SIGINT)" in text
        assert "Traceback" not in text and "Fatal Python error" not in text
        assert not out.exists()

    def test_a_program_importing_the_library_keeps_keyboard_interrupt(self) -> None:
        """``import asyncpipe`` elsewhere leaves SIGINT as Python has it."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import signal, asyncpipe; "
                "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)",
            ],
            cwd=PROJECT,
            capture_output=True,
            timeout=60,
            check=True,
            preexec_fn=_sigint_default,
        )
        assert done.stdout.strip() == b"True"

    @pytest.mark.parametrize(
        ("orig_argv", "argv0", "command"),
        [
            (["python", "-m", "asyncpipe", "run"], "-m", True),
            (["python", "-X", "importtime", "-m", "asyncpipe"], "-m", True),
            (["python", "-masyncpipe"], "-m", True),
            (["python", "/venv/bin/asyncpipe", "run"], "/venv/bin/asyncpipe", True),
            (["python", "-m", "pytest", "asyncpipe"], "-m", False),
            (["python", "-m", "asyncpipe_other"], "-m", False),
            (["python", "app.py"], "app.py", False),
            (["python", "-c", "import asyncpipe"], "-c", False),
        ],
    )
    def test_only_the_command_is_the_command(
        self, orig_argv: list[str], argv0: str, command: bool
    ) -> None:
        """The start-up handler is for ``-m asyncpipe`` and the script, nothing else."""
        assert run_as_command(orig_argv, argv0) is command
