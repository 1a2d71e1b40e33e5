from __future__ import annotations

import os
import subprocess
import sys

# Prints its pid and X, then asks for X=1: the restarted process prints again, with the
# same pid and X set, and does not restart a second time (nor when X is there already).
_SCRIPT = """
import os, sys
from asyncpipe._restart import restart_with
print(os.getpid(), os.environ.get("X"), sys.argv[1:], flush=True)
restart_with({"X": "1"})
restart_with({"X": "2"})
print("done", flush=True)
"""


def test_restart_once_with_the_same_pid_and_arguments() -> None:
    """One exec: same pid, same arguments, the variable set; never a second restart."""
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, "a b", "c"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == 3, out
    first, second = out[0].split(" ", 2), out[1].split(" ", 2)
    assert first[0] == second[0]
    assert (first[1], second[1]) == ("None", "1")
    assert first[2] == second[2] == "['a b', 'c']"
    assert out[2] == "done"


def test_no_restart_when_nothing_is_missing() -> None:
    """X already set as asked: the script runs straight through."""
    script = _SCRIPT.replace('restart_with({"X": "2"})\n', "")
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "X": "1"},
    ).stdout.splitlines()
    assert len(out) == 2 and out[1] == "done"
