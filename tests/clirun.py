"""
``python -m asyncpipe run`` as a subprocess: the one place the tests of the real command
say which Python runs it, from where, with which path and environment, and how a
document run meets the real llama.cpp server of `stages.testing.llama_server`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "LLM_TIMEOUTS",
    "PROJECT",
    "cli_command",
    "cli_env",
    "llm_args",
    "llm_env",
    "records",
    "run_cli",
    "run_llm",
]

PROJECT = Path(__file__).resolve().parents[1]

LLM_TIMEOUTS = ("--llm-timeout", "300", "--llm-deadline", "900")
"""A real-server run's per-attempt timeouts: generous, as a shared CI machine can be many
times slower than an idle one, and the point is the protocol."""


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


def cli_command(*args: str | Path, progress: str | None = "none") -> list[str]:
    """
    The command line of ``asyncpipe run ARGS --progress PROGRESS``, for a run a test
    starts itself (run it from `PROJECT` in `cli_env`).

    Args:
        *args: the arguments after ``run``.
        progress: the ``--progress`` mode; ``None`` leaves it to ``args`` (or the default).

    Returns:
        The command line.
    """
    command = [sys.executable, "-m", "asyncpipe", "run", *map(str, args)]
    if progress is not None:
        command += ["--progress", progress]
    return command


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
    return subprocess.run(
        cli_command(*args, progress=progress),
        cwd=cwd,
        env=cli_env(env, test_apps=test_apps),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def llm_args(
    inputs: Path, out: Path, url: str, *extra: str, workers: str | None = None
) -> list[str]:
    """
    The arguments of a document run of the folder ``inputs`` into ``out`` against the
    OpenAI-compatible server at ``url`` serving SmolLM2 (as ``smollm2``), with
    `LLM_TIMEOUTS`.

    Args:
        inputs: the folder of pages.
        out: the output file.
        url: the server's ``--llm-url``.
        *extra: more arguments.
        workers: the ``--workers`` given, if any.

    Returns:
        The arguments after ``run``.
    """
    args = [str(inputs), "--out", str(out), "--llm-url", url, "--llm-model", "smollm2"]
    if workers is not None:
        args += ["--workers", workers]
    return [*args, *LLM_TIMEOUTS, *extra]


def llm_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """
    `cli_env` without the environment's API keys (``*API_KEY``): a run against a local
    server is sent none.
    """
    return cli_env(_without_api_keys(env))


def run_llm(
    *args: str | Path,
    progress: str | None = "none",
    env: Mapping[str, str | None] | None = None,
    timeout: float = 800,
) -> subprocess.CompletedProcess[str]:
    """
    `run_cli` in `llm_env`, with a timeout long enough for a tiny model on a slow machine.
    """
    return run_cli(*args, progress=progress, env=_without_api_keys(env), timeout=timeout)


def _without_api_keys(env: Mapping[str, str | None] | None) -> dict[str, str | None]:
    keys: dict[str, str | None] = {name: None for name in os.environ if name.endswith("API_KEY")}
    return {**keys, **(env or {})}


def records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a run's output."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
