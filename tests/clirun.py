"""
``python -m asyncpipe run`` as a subprocess, run to its end: the one place the tests of
the real command say which Python runs it, from where, with which path and environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PROJECT", "cli_env", "run_cli"]

PROJECT = Path(__file__).resolve().parents[1]


def cli_env(
    env: Mapping[str, str | None] | None = None, *, test_apps: bool = False
) -> dict[str, str]:
    """
    The test run's environment for the command, this checkout first on its path.

    Args:
        env: variables to set; one given as ``None`` is removed.
        test_apps: put ``tests/`` on the path too, for an app of the tests' own
            (``ASYNCPIPE_APP=progressapp:app``).

    Returns:
        The environment.
    """
    variables = dict(os.environ)
    paths = [str(PROJECT / "tests")] if test_apps else []
    variables["PYTHONPATH"] = os.pathsep.join([*paths, str(PROJECT)])
    for name, value in (env or {}).items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    return variables


def run_cli(
    *args: str | Path,
    progress: str | None = "none",
    cwd: Path = PROJECT,
    env: Mapping[str, str | None] | None = None,
    test_apps: bool = False,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """
    ``asyncpipe run ARGS --progress PROGRESS`` to its end, its output captured as text.

    Args:
        *args: the arguments after ``run``.
        progress: the ``--progress`` mode; ``None`` leaves it to ``args`` (or the default).
        cwd: the working directory.
        env: variables set (or, as ``None``, removed) in the test run's environment.
        test_apps: put ``tests/`` on the path, for an app of the tests' own.
        timeout: seconds before the run is killed and `subprocess.TimeoutExpired` raised.

    Returns:
        What the run did: its exit code, stdout and stderr.
    """
    command = [sys.executable, "-m", "asyncpipe", "run", *map(str, args)]
    if progress is not None:
        command += ["--progress", progress]
    return subprocess.run(
        command,
        cwd=cwd,
        env=cli_env(env, test_apps=test_apps),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
