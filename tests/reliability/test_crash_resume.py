"""
Crash and resume, randomized: SIGKILL the document CLI at seeded random moments and
resume it until it finishes, then check nothing was lost, duplicated or paid for twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    count_lines,
    llm_checkpoints,
    llm_run_args,
    read_lines,
    request_key,
    run_cli,
    spawn_cli,
    write_receipts,
)

from stages.testing.llm_server.testing import ServerHandle, run_server

SERVER = {"latency": 0.05, "latency_max": 0.3, "seed": 11}
COMPARED = ("status", "source", "page", "text", "corrected", "fields")

# (seed, --workers, ordered).  Seeds fix the kill moments and modes; the process's own
# timing still varies from run to run, so the checks are about invariants, not counts.
CAMPAIGNS = [
    (101, "ocr=1,llm=1", True),
    (202, "ocr=2,llm=8", False),
    (303, "ocr=2,llm=4", True),
    (404, "ocr=1,llm=8", False),
    (505, "ocr=2,llm=2,load=1", True),
    (606, "ocr=1,llm=16", False),
    (707, "ocr=2,llm=1,preprocess=1", False),
]
MAX_KILLS = 8
# startup: during start-up, before the journal opens; time: a random moment after the
# journal opens; journal/output: just after the file grows (a batch was written);
# tear-*: in the middle of writing a batch.
MODES = ("startup", "time", "time", "journal", "journal", "output", "tear-journal", "tear-sink")

KILLS: dict[int, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight small synthetic receipts."""
    folder = tmp_path_factory.mktemp("crash-inputs")
    write_receipts(folder)
    return folder


def cli_args(
    inputs: Path, out: Path, server: ServerHandle, workers: str, ordered: bool
) -> list[str]:
    return llm_run_args(
        inputs, out, server.url, *([] if ordered else ["--unordered"]), workers=workers
    )


@pytest.fixture(scope="module")
def reference(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The records of one uninterrupted run."""
    tmp = tmp_path_factory.mktemp("crash-reference")
    with run_server(workdir=tmp, **SERVER) as server:
        result = run_cli(
            cli_args(inputs, tmp / "r.jsonl", server, "ocr=2,llm=8", True), log=tmp / "cli.log"
        )
    assert result.returncode == 0, result.output
    records, torn = read_lines(tmp / "r.jsonl")
    assert torn == 0
    assert all(r["status"] == "ok" for r in records), records
    return {r["id"]: r for r in records}


def _wait_for(process: subprocess.Popen[bytes], ready: Any, limit: float = 30.0) -> None:
    """Poll every 2 ms until ``ready()`` or the process ends."""
    give_up = time.monotonic() + limit
    while process.poll() is None and not ready() and time.monotonic() < give_up:
        time.sleep(0.002)


def _check_files(out: Path, journal: Path) -> None:
    """Both files parse (a torn last line allowed) and no output id appears twice."""
    read_lines(journal)
    records, _ = read_lines(out)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"duplicate output lines: {ids}"


class TestCrashResume:
    """SIGKILL at random moments, resume until done."""

    @pytest.mark.slow
    @pytest.mark.timeout(240)
    @pytest.mark.parametrize(("seed", "workers", "ordered"), CAMPAIGNS)
    def test_campaign(
        self,
        seed: int,
        workers: str,
        ordered: bool,
        inputs: Path,
        reference: dict[str, dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        """Every input ends with exactly one line, equal to the uninterrupted run's."""
        rng = random.Random(seed)
        out = tmp_path / "r.jsonl"
        journal = tmp_path / "r.jsonl.journal"
        log = tmp_path / "cli.log"
        kills: list[str] = []
        spawns: list[tuple[float, set[tuple[str, str]]]] = []
        with run_server(workdir=tmp_path, **SERVER) as server:
            args = cli_args(inputs, out, server, workers, ordered)
            while True:
                mode = rng.choice(MODES) if len(kills) < MAX_KILLS else "none"
                env = {}
                if mode == "tear-journal":
                    env["RELIABILITY_TEAR_JOURNAL"] = str(rng.randint(2, 10))
                elif mode == "tear-sink":
                    env["RELIABILITY_TEAR_SINK"] = str(rng.randint(1, 2))
                checkpoints = llm_checkpoints(journal)
                journal_base, out_base = count_lines(journal), count_lines(out)
                delay = rng.uniform(0.0, 0.02)
                spawns.append((time.time(), checkpoints))
                process = spawn_cli(
                    args if not spawns[:-1] else [*args, "--resume"], env=env, log=log
                )
                if mode == "startup":
                    _wait_for(process, lambda: False, rng.uniform(0.2, 2.5))
                elif mode == "time":
                    _wait_for(process, lambda base=journal_base: count_lines(journal) > base)
                    _wait_for(process, lambda: False, rng.uniform(0.0, 2.0))
                elif mode == "journal":
                    target = journal_base + 1 + rng.randint(1, 4)
                    _wait_for(process, lambda n=target: count_lines(journal) >= n)
                elif mode == "output":
                    _wait_for(process, lambda base=out_base: count_lines(out) > base)
                if mode in ("startup", "time", "journal", "output"):
                    time.sleep(delay)
                    process.send_signal(signal.SIGKILL)
                code = process.wait(60)
                if code == -signal.SIGKILL:
                    kills.append(mode)
                    _check_files(out, journal)
                    continue
                assert code == 0, log.read_text(errors="replace")[-3000:]
                break
            requests = server.read_log()

        # Exactly one line per input, equal to the uninterrupted run's.
        records, torn = read_lines(out)
        assert torn == 0
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), f"duplicates: {sorted(ids)}"
        assert set(ids) == set(reference), f"lost: {set(reference) - set(ids)}"
        for record in records:
            expected = reference[record["id"]]
            assert {k: record[k] for k in COMPARED} == {k: expected[k] for k in COMPARED}

        # No LLM call for an (item, task) whose result was journaled before that run.
        repeated = []
        for request in requests:
            before = [ck for started, ck in spawns if started <= request["ts"]]
            if before and request_key(request) in before[-1]:
                repeated.append((request_key(request), request["id"]))
        assert not repeated, f"paid twice after checkpoint: {repeated}"

        KILLS[seed] = {"kills": kills, "spawns": len(spawns), "requests": len(requests)}
        print(
            f"\nseed {seed}: {len(kills)} kills {kills}, {len(spawns)} processes, "
            f"{len(requests)} LLM requests"
        )
        assert len(kills) >= 5, f"only {len(kills)} kills: {kills}"

    @pytest.mark.slow
    def test_total_kills(self) -> None:
        """The campaigns above made at least 50 kills between them (run the whole class)."""
        if len(KILLS) < len(CAMPAIGNS):
            pytest.skip("needs every campaign of this module to have run first")
        total = sum(len(v["kills"]) for v in KILLS.values())
        by_mode: dict[str, int] = {}
        for value in KILLS.values():
            for mode in value["kills"]:
                by_mode[mode] = by_mode.get(mode, 0) + 1
        print(
            f"\ncrash campaigns: {total} kills {by_mode}; "
            f"{sum(v['spawns'] for v in KILLS.values())} processes"
        )
        assert total >= 50
