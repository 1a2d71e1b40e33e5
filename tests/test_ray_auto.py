"""
``--ray-address auto``: the cluster it finds, or a quick exit 2 that says where it looked.

Each run is the first process of a PID namespace of its own (`netns.in_own_pid_namespace`),
so Ray's search for running raylets sees only the cluster the test starts there, never the
session cluster of `tests/test_ray.py`; and its Ray temp directory is one of the test's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import in_own_pid_namespace, require_loopback_namespace

require_loopback_namespace()

pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ray_tmpdir() -> Iterator[Path]:
    """A short ``$RAY_TMPDIR`` (Ray's socket paths under it must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_auto(
    tmp_path: Path, ray_tmpdir: Path, *, before: str = "", timeout: float, **env: str
) -> subprocess.CompletedProcess[str]:
    """
    ``asyncpipe run --ray-address auto`` of three numbers (`tests/cliapp.py`, its
    ``square`` stage on Ray), after the shell command ``before``, in a PID namespace of
    its own.
    """
    (tmp_path / "nums.txt").write_text("1\n2\n3\n")
    run = [sys.executable, "-m", "asyncpipe", "run", "--app", "cliapp:app", "nums.txt"]
    run += ["--out", "out.jsonl", "--side", "side.txt", "--ray-address", "auto"]
    run += ["--ray-stages", "square", "--progress", "none"]
    script = f"{before}\n{shlex.join(run)}"
    environment = {
        **{name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"},
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
        "RAY_TMPDIR": str(ray_tmpdir),
        # Token mode would write ~/.ray/auth_token, which other users of this machine share.
        "RAY_AUTH_MODE": "disabled",
        **env,
    }
    return subprocess.run(
        in_own_pid_namespace(script),
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TestAutoAddress:
    """What ``--ray-address auto`` finds."""

    @pytest.mark.timeout(120)
    def test_no_cluster_says_where_it_looked(self, tmp_path: Path, ray_tmpdir: Path) -> None:
        """With no cluster it exits 2 naming $RAY_ADDRESS, the file ``ray start`` writes and
        the raylets it looked for; Ray said only that it found no running instance."""
        done = _run_auto(tmp_path, ray_tmpdir, timeout=100)
        assert done.returncode == 2, done.stderr[-3000:]
        record = ray_tmpdir / "ray" / "ray_current_cluster"
        assert "cannot connect to the Ray cluster at 'auto'" in done.stderr, done.stderr
        assert f"$RAY_ADDRESS is not set, {record} does not exist" in done.stderr, done.stderr
        assert "no raylet runs here" in done.stderr, done.stderr

    @pytest.mark.timeout(120)
    def test_a_stale_record_fails_at_once(self, tmp_path: Path, ray_tmpdir: Path) -> None:
        """The address a stopped cluster left in ``ray_current_cluster`` exits 2 naming the
        file and the address; ray.init retried it for over ten minutes, deaf to SIGTERM."""
        record = ray_tmpdir / "ray" / "ray_current_cluster"
        record.parent.mkdir()
        address = f"127.0.0.1:{_free_port()}"
        record.write_text(address)
        done = _run_auto(tmp_path, ray_tmpdir, timeout=90)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"at 'auto' ({address}, recorded in {record}" in done.stderr, done.stderr
        assert f"nothing accepts a connection at {address}" in done.stderr, done.stderr

    @pytest.mark.timeout(120)
    def test_a_dead_ray_address_fails_at_once(self, tmp_path: Path, ray_tmpdir: Path) -> None:
        """``$RAY_ADDRESS`` naming a head that is gone exits 2 naming it; ray.init retried
        it for over ten minutes, deaf to SIGTERM."""
        address = f"127.0.0.1:{_free_port()}"
        done = _run_auto(tmp_path, ray_tmpdir, timeout=90, RAY_ADDRESS=address)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"at 'auto' ({address}, from $RAY_ADDRESS)" in done.stderr, done.stderr
        assert f"nothing accepts a connection at {address}" in done.stderr, done.stderr

    @pytest.mark.timeout(240)
    def test_a_live_head_is_joined(self, tmp_path: Path, ray_tmpdir: Path) -> None:
        """The head that ``ray start --head`` runs on this machine is found and joined."""
        ray = Path(sys.executable).parent / "ray"
        start = [str(ray), "start", "--head", f"--port={_free_port()}", "--num-cpus=2"]
        start += ["--include-dashboard=false", "--disable-usage-stats"]
        done = _run_auto(tmp_path, ray_tmpdir, before=f"{shlex.join(start)} || exit 9", timeout=200)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        assert "ray: connected to auto" in done.stderr, done.stderr[-4000:]
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert len(lines) == 3 and all('"status":"ok"' in line for line in lines), lines
