"""
A real multi-node Ray cluster that loses a node in the middle of a run.

`ray.cluster_utils.Cluster` starts a head and two worker nodes as separate raylets on
this machine; run inside a loopback-only network namespace (see `tests/netns.py`), every
one of them binds 127.0.0.1.  The driver is the real command line in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from netns import require_loopback_namespace

require_loopback_namespace()

ray = pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")
cluster_utils = pytest.importorskip("ray.cluster_utils")

__all__: list[str] = []

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]

ROOT = Path(__file__).resolve().parents[1]
RECEIPTS = ["000", "001", "002", "003", "004", "005"]


def _sroie() -> Path:
    return Path(os.environ.get("ASYNCPIPE_SROIE", ROOT.parent / "shared" / "data" / "sroie"))


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head with no CPUs (so no actor lands on it) and two 1-CPU worker nodes."""
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


class TestNodeLoss:
    """A worker node removed mid-run, and a fresh one added, loses and repeats no page."""

    @pytest.mark.timeout(600)
    def test_node_removed_mid_run(self, cluster: Any, tmp_path: Path) -> None:
        """
        Every page ends ok exactly once, in the output and in the journal, and the run says
        an actor was restarted.
        """
        out = tmp_path / "out.jsonl"
        paths = [str(_sroie() / "img" / f"{stem}.jpg") for stem in RECEIPTS]
        cmd = [
            sys.executable,
            "-m",
            "asyncpipe",
            "run",
            *paths,
            "--out",
            str(out),
            "--ray-address",
            cluster.address,
            "--workers",
            "ocr=2",
            "--progress",
            "none",
        ]
        env = {**os.environ, "ASYNCPIPE_APP": "stages.app:app"}
        env.pop("RAY_ADDRESS", None)
        log = tmp_path / "driver.log"
        with log.open("wb") as stderr:
            driver = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
            try:
                deadline = time.monotonic() + 300
                while _lines(out) < 1:
                    assert driver.poll() is None, log.read_text()[-3000:]
                    assert time.monotonic() < deadline, "no page finished in 300 s"
                    time.sleep(0.2)
                # Both actors are busy with later pages now: take one node away, with its
                # actor and the call running on it, and give the cluster a fresh node.
                victim = next(iter(cluster.worker_nodes))
                cluster.remove_node(victim, allow_graceful=False)
                cluster.add_node(num_cpus=1)
                code = driver.wait(timeout=400)
            finally:
                if driver.poll() is None:
                    driver.kill()
                    driver.wait()
        stderr_text = log.read_text()
        assert code == 0, stderr_text[-3000:]
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        sources = [Path(record["source"]).stem for record in records]
        assert sorted(sources) == RECEIPTS, sources
        errors = [record.get("error") for record in records if record["status"] != "ok"]
        assert not errors, errors
        # Each page is done once in the journal (the run compacts it on close, dropping
        # the checkpoints of finished pages; the done lines stay).
        events = [
            orjson.loads(line)
            for line in (tmp_path / "out.jsonl.journal").read_bytes().splitlines()
        ]
        done = [e["k"] for e in events if e.get("ev") == "done"]
        assert sorted(done) == sorted(record["id"] for record in records), done
        # The loss is reported: Ray re-ran the call itself, or the executor ran it again.
        assert "an actor was restarted" in stderr_text or "the actor running an item was lost" in (
            stderr_text
        ), stderr_text[-3000:]
