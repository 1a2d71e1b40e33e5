"""
A real multi-node Ray cluster that loses a node in the middle of a run.

`ray.cluster_utils.Cluster` starts a head and two worker nodes as separate raylets on
this machine; run inside a loopback-only network namespace (see `tests/netns.py`), every
one of them binds 127.0.0.1.  The driver is the real command line in a subprocess,
running the document app with each stage execution traced (`tests/traceapp.py`), while
this test follows the journal as it is written (`JournalWatch`): together they show that
no stage runs again for an item once its result is journaled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from netns import require_loopback_namespace, two_worker_cluster

require_loopback_namespace()

ray = pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")
pytest.importorskip("ray.cluster_utils")

__all__: list[str] = []

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]

ROOT = Path(__file__).resolve().parents[1]
RECEIPTS = ["000", "001", "002", "003", "004", "005"]


def _sroie() -> Path:
    return Path(os.environ.get("ASYNCPIPE_SROIE", ROOT.parent / "shared" / "data" / "sroie"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """
    A head with no CPUs (so no actor lands on it) and two 1-CPU worker nodes, shared by
    the tests below in order: the fault-free run first, then the one that loses a node.
    """
    with two_worker_cluster() as cluster:
        yield cluster


#: The closing line that reports lost actors, e.g. "ray: 1 actor lost (its process or
#: node died); 1 call ran again after its actor was lost".
LOSS_LINE = re.compile(r"^ray: (\d+) actors? lost \(.*?\)(?:; (\d+) calls? ran again)?", re.M)


class JournalWatch(threading.Thread):
    """
    Follow a journal while a run writes it, and note when each event was first seen.

    ``seen[(stage, key)]`` is when a ``ckpt`` or ``fail`` line of that stage and item
    appeared, ``seen[("done", key)]`` when the item's ``done`` line did: wall times taken
    after the read, so never before the line was in the file (the check is sound), and at
    most one poll (20 ms) after it.  A compaction replaces the file: it is read again
    from the start, and lines seen before keep their first time.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.seen: dict[tuple[str, str], float] = {}
        self.halt = threading.Event()
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

    def run(self) -> None:
        while not self.halt.is_set():
            self.poll()
            time.sleep(0.02)
        self.poll()

    def poll(self) -> None:
        try:
            with self.path.open("rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                if inode != self._inode:
                    self._inode, self._offset, self._partial = inode, 0, b""
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        now = time.time()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            event = orjson.loads(line)
            if event["ev"] in ("ckpt", "fail"):
                self.seen.setdefault((event["s"], event["k"]), now)
            elif event["ev"] == "done":
                self.seen.setdefault(("done", event["k"]), now)


def _redone(trace: list[dict[str, Any]], seen: dict[tuple[str, str], float]) -> list[str]:
    """
    Every execution in ``trace`` that started after its (stage, item) was journaled, or
    after its item was journaled as done.
    """
    bad = []
    for run in trace:
        for mark in ((run["s"], run["k"]), ("done", run["k"])):
            if mark in seen and run["t"] > seen[mark]:
                bad.append(
                    f"{run['s']} ran for {run['k']} at {run['t']:.3f} (pid {run['pid']}), "
                    f"{run['t'] - seen[mark]:.3f} s after its {mark[0]!r} was journaled"
                )
    return bad


def _run_driver(
    cluster: Any, tmp_path: Path, receipts: list[str], *, remove_node: bool
) -> tuple[int, str, JournalWatch, list[dict[str, Any]]]:
    """
    Run ``asyncpipe run`` on ``receipts`` against ``cluster``, following its journal and
    tracing its stages; with ``remove_node``, take a worker node away (and add a fresh
    one) once the first page's OCR result is journaled.  Returns the exit code, the
    driver's stderr, the journal watch and the trace.
    """
    out = tmp_path / "out.jsonl"
    trace = tmp_path / "trace.jsonl"
    paths = [str(_sroie() / "img" / f"{stem}.jpg") for stem in receipts]
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
    env = {
        **os.environ,
        "ASYNCPIPE_APP": "traceapp:app",
        "ASYNCPIPE_TRACE": str(trace),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RAY_ADDRESS", None)
    watch = JournalWatch(tmp_path / "out.jsonl.journal")
    watch.start()
    log = tmp_path / "driver.log"
    try:
        with log.open("wb") as stderr:
            driver = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
            try:
                if remove_node:
                    deadline = time.monotonic() + 300
                    # The first OCR result journaled, not the output's first line: in
                    # input order that can wait for a first page finished last.
                    while not any(stage == "ocr" for stage, _ in list(watch.seen)):
                        assert driver.poll() is None, log.read_text()[-3000:]
                        assert time.monotonic() < deadline, "no page read in 300 s"
                        time.sleep(0.05)
                    # Both actors are busy with later pages now: take one node away, with
                    # its actor and the call running on it, and give the cluster a fresh
                    # node.
                    victim = next(iter(cluster.worker_nodes))
                    cluster.remove_node(victim, allow_graceful=False)
                    cluster.add_node(num_cpus=1)
                code = driver.wait(timeout=400)
            finally:
                if driver.poll() is None:
                    driver.kill()
                    driver.wait()
    finally:
        watch.halt.set()
        watch.join()
    runs = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    return code, log.read_text(), watch, runs


def _check_pages(tmp_path: Path, receipts: list[str], stderr_text: str) -> list[dict[str, Any]]:
    """Every page ends ok exactly once, in the output and in the journal."""
    out = tmp_path / "out.jsonl"
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    sources = [Path(record["source"]).stem for record in records]
    assert sorted(sources) == receipts, sources
    errors = [record.get("error") for record in records if record["status"] != "ok"]
    assert not errors, errors
    # Each page is done once in the journal (the run compacts it on close, dropping
    # the checkpoints of finished pages; the done lines stay).
    events = [
        orjson.loads(line) for line in (tmp_path / "out.jsonl.journal").read_bytes().splitlines()
    ]
    done = [e["k"] for e in events if e.get("ev") == "done"]
    assert sorted(done) == sorted(record["id"] for record in records), done
    return records


def _check_nothing_redone(
    records: list[dict[str, Any]], watch: JournalWatch, runs: list[dict[str, Any]]
) -> None:
    """
    No stage ran for an item after its result (or the item's end) was journaled; and the
    check had something to check: every remote stage traced and journaled for every page.
    """
    keys = {record["id"] for record in records}
    for stage in ("load", "preprocess", "ocr", "correct", "fix", "structure"):
        assert {run["k"] for run in runs if run["s"] == stage} == keys, stage
    for stage in ("ocr", "correct", "fix", "structure"):
        assert {(stage, key) for key in keys} <= watch.seen.keys(), stage
    assert {("done", key) for key in keys} <= watch.seen.keys()
    redone = _redone(runs, watch.seen)
    assert not redone, "\n".join(redone)


class TestFaultFree:
    """A run on the same cluster that loses nothing reports no loss."""

    @pytest.mark.timeout(600)
    def test_no_loss_line(self, cluster: Any, tmp_path: Path) -> None:
        """Two pages on an intact cluster: all ok, nothing redone, no "ray:" line."""
        receipts = RECEIPTS[:2]
        code, stderr_text, watch, runs = _run_driver(cluster, tmp_path, receipts, remove_node=False)
        assert code == 0, stderr_text[-3000:]
        records = _check_pages(tmp_path, receipts, stderr_text)
        _check_nothing_redone(records, watch, runs)
        assert LOSS_LINE.search(stderr_text) is None, stderr_text[-3000:]
        assert "restarted" not in stderr_text, stderr_text[-3000:]
        # Each stage ran exactly once per page.
        assert len(runs) == len(receipts) * 7, runs


class TestNodeLoss:
    """A worker node removed mid-run, and a fresh one added, loses and repeats no page."""

    @pytest.mark.timeout(600)
    def test_node_removed_mid_run(self, cluster: Any, tmp_path: Path) -> None:
        """
        Every page ends ok exactly once, in the output and in the journal; no stage runs
        again for a page once its result was journaled; and the summary reports the loss.
        """
        code, stderr_text, watch, runs = _run_driver(cluster, tmp_path, RECEIPTS, remove_node=True)
        assert code == 0, stderr_text[-3000:]
        records = _check_pages(tmp_path, RECEIPTS, stderr_text)
        _check_nothing_redone(records, watch, runs)
        # The summary's closing lines report the loss (the log says how it went).
        report = LOSS_LINE.search(stderr_text)
        assert report is not None, stderr_text[-3000:]
        assert int(report.group(1)) >= 1, report.group(0)
        # An actor runs one call at a time, so each lost actor took one started call at
        # most with it: no more pages ran their stages on two processes than actors were
        # lost.  (The count of calls run again says less: a call sent to the lost actor
        # after its node went, before Ray noticed, fails before it starts and runs once;
        # and one Ray itself ran again on a restarted actor is not counted.)
        again = [
            key
            for key in {run["k"] for run in runs}
            if len({run["pid"] for run in runs if run["k"] == key and run["s"] == "load"}) > 1
        ]
        assert len(again) <= int(report.group(1)), (report.group(0), again, runs)
