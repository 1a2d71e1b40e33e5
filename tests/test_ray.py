from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson
import pytest
from netns import require_loopback_namespace

from asyncpipe import ConfigError, Item, Pipeline, Retry, Stage, StageCall, WorkerLosses
from asyncpipe._ray import RayExecutor
from asyncpipe._ray_connect import import_ray
from stages._page import PageRef
from stages.inputs import discover
from stages.pipeline import DocumentSettings, build_pipeline, output_record

require_loopback_namespace()

ray = pytest.importorskip(
    "ray", reason="the Ray executor tests need ray: pip install 'asyncpipe[ray]'"
)

__all__: list[str] = []

pytestmark = [
    # Ray's own test utilities and workers leave sockets and subprocess pipes to the
    # garbage collector; those ResourceWarnings come from ray, not from asyncpipe.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

RECEIPTS = ["000", "002"]
# Eight, so that pages are still in the OCR when the first line is out: with four, a
# loaded machine once finished the rest between two looks at the output, and the kill
# came after the run.
KILLED_RECEIPTS = [f"{index:03d}" for index in range(8)]


def _ocr_journaled(journal: Path) -> bool:
    """Whether ``journal`` holds a page's OCR checkpoint (its last line may be torn)."""
    try:
        lines = journal.read_bytes().split(b"\n")[:-1]
    except FileNotFoundError:
        return False
    return any(
        event.get("ev") == "ckpt" and event.get("s") == "ocr" for event in map(orjson.loads, lines)
    )


ROOT = Path(__file__).resolve().parents[1]


def sroie_dir() -> Path:
    """Where the SROIE receipts are: $ASYNCPIPE_SROIE, else ../shared/data/sroie."""
    return Path(os.environ.get("ASYNCPIPE_SROIE", ROOT.parent / "shared" / "data" / "sroie"))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A real local Ray cluster with 2 CPUs for the whole session (about 5-9 s to start)."""
    # The actors cannot import this test module (tests/ is not a package on their path):
    # send its functions by value, as a user would for a script's own functions.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def _refs(stems: list[str]) -> list[PageRef]:
    paths = [str(sroie_dir() / "img" / f"{stem}.jpg") for stem in stems]
    return list(discover(paths))


def _key(ref: PageRef) -> str:
    return ref.id


async def _run_records(pipeline: Pipeline, refs: list[PageRef]) -> list[dict[str, Any]]:
    items: list[Item] = []

    async def collect(item: Item) -> None:
        items.append(item)

    await pipeline.run(refs, sink=collect, ordered=True, key=_key)
    records = [output_record(item) for item in items]
    for record in records:
        record.pop("timings")
    return records


def _on_ray(pipeline: Pipeline, names: set[str], executor: RayExecutor) -> Pipeline:
    stages = [s.replace(executor=executor) if s.name in names else s for s in pipeline.stages]
    return Pipeline(stages, max_buffer_size=pipeline.max_buffer_size)


def _die_once(marker_dir: str, value: int) -> int:
    """Kill the actor process on value 3, the first time only; otherwise double the value."""
    if value == 3:
        try:
            fd = os.open(os.path.join(marker_dir, "died"), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    time.sleep(0.05)
    return value * 2


def _noop(value: int) -> int:
    return value


def _divide(value: int) -> int:
    return 10 // value


def _model_once(marker_dir: str) -> str:
    """A resource factory whose model file is gone once an actor has died (see `_die_once`)."""
    if os.path.exists(os.path.join(marker_dir, "died")):
        raise FileNotFoundError("model.onnx not found")
    return "model"


def _die_once_with(marker_dir: str, model: str, value: int) -> int:
    return _die_once(marker_dir, value)


def _missing_model(built: str) -> object:
    """A resource factory that records each time it runs, then finds no model file."""
    with open(built, "a") as log:
        log.write("built\n")
    raise FileNotFoundError("model.onnx not found")


def _use_model(model: object, value: int) -> int:
    return value


def _hang(started: str, value: int) -> int:
    """Mark that the call began, then run far longer than any test."""
    with open(started, "w"):
        pass
    time.sleep(600)
    return value


class _Locked(Exception):
    """An exception that holds a lock, so it cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def _raise_locked(value: str) -> str:
    if value == "raise":
        raise _Locked("the stage's own reason")
    return value


def _return_lock(value: str) -> object:
    return threading.Lock() if value == "lock" else value


class TestRayExecutor:
    """The Ray executor against a real local Ray cluster."""

    async def test_ocr_matches_threads(self, ray_cluster: None) -> None:
        """The document pipeline with OCR on Ray writes the same records as with threads."""
        pipeline = build_pipeline(DocumentSettings())
        refs = await anyio.to_thread.run_sync(_refs, RECEIPTS)
        local = await _run_records(pipeline, refs)
        remote = await _run_records(_on_ray(pipeline, {"ocr"}, RayExecutor()), refs)
        # On a failure, name the error: a rare error record here under heavy load was
        # once seen without its message.
        failed = [r.get("error") for r in remote if r["status"] != "ok"]
        assert [r["status"] for r in remote] == ["ok"] * len(RECEIPTS), failed
        assert all(r["text"] for r in remote)
        assert remote == local

    async def test_cpu_part_runs_fused_from_bytes(self, ray_cluster: None) -> None:
        """With pages carrying their bytes, the CPU part is one Ray call per page that
        ships the encoded file out and no pixels back, and writes what threads write."""
        sent: list[Any] = []

        class Watching(RayExecutor):
            @asynccontextmanager
            async def open(self, stage: Stage) -> AsyncIterator[StageCall]:
                async with super().open(stage) as call:

                    async def watched(value: Any) -> Any:
                        sent.append((stage.name, value))
                        return await call(value)

                    yield watched

        local = build_pipeline(DocumentSettings(ship_bytes=True))
        refs = await anyio.to_thread.run_sync(_refs, RECEIPTS)
        expected = await _run_records(local, refs)
        remote = await _run_records(local.configure(executor=Watching()), refs)
        assert remote == expected
        assert [r["status"] for r in remote] == ["ok"] * len(RECEIPTS)
        assert {name for name, _ in sent} == {"load+preprocess+ocr+correct+fix+structure"}
        assert len(sent) == len(RECEIPTS)
        for _, (offset, ref) in sent:
            assert offset == 0
            assert isinstance(ref, PageRef)
            assert ref.data == await anyio.Path(ref.source).read_bytes()

    async def test_actor_death_is_retried(self, ray_cluster: None, tmp_path: Path) -> None:
        """An actor killed mid-call loses no item: the stage retries it on a new actor."""
        executor = RayExecutor(max_restarts=0, max_task_retries=0, max_call_retries=0)
        stage = Stage(
            "die",
            partial(_die_once, str(tmp_path)),
            kind="thread",
            workers=2,
            retry=Retry(attempts=3, base=0.01, cap=0.01),
            executor=executor,
        )
        pipeline = Pipeline([stage])
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        summary = await pipeline.run(range(10), sink=collect, ordered=True)
        assert await anyio.Path(tmp_path / "died").exists()
        assert [item.value for item in out] == [v * 2 for v in range(10)]
        assert all(item.ok for item in out)
        assert summary.stages[0].retried == 1
        # No restarts allowed: the dead actor was replaced; the stage's retry re-ran it.
        assert summary.worker_losses == {"ray": WorkerLosses(lost=1, rerun=0, replaced=1)}

    async def test_warnings_name_the_fused_stages(
        self, ray_cluster: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A lost actor of two stages fused into one call is logged with the stages' own
        names, not the fused group's ('die+keep', a stage no one wrote)."""
        executor = RayExecutor(max_restarts=0, max_task_retries=0, max_call_retries=1)
        stages = [
            Stage("die", partial(_die_once, str(tmp_path)), kind="thread", executor=executor),
            Stage("keep", _noop, kind="thread", executor=executor),
        ]

        async def drop(item: Item) -> None:
            pass

        with caplog.at_level(logging.WARNING, logger="asyncpipe.ray"):
            summary = await Pipeline(stages).run(range(5), sink=drop)
        assert summary.ok == 5
        warnings = [r.getMessage() for r in caplog.records if r.name == "asyncpipe.ray"]
        assert any("the actor running an item was lost" in w for w in warnings), warnings
        assert all("stages 'die' and 'keep' (run in one call)" in w for w in warnings), warnings

    async def test_actor_death_absorbed_by_ray(self, ray_cluster: None, tmp_path: Path) -> None:
        """With the default max_task_retries Ray re-runs the lost call itself."""
        stage = Stage(
            "die",
            partial(_die_once, str(tmp_path)),
            kind="thread",
            workers=2,
            retry=Retry(attempts=1),
            executor=RayExecutor(),
        )
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        summary = await Pipeline([stage]).run(range(10), sink=collect, ordered=True)
        assert await anyio.Path(tmp_path / "died").exists()
        assert [item.value for item in out] == [v * 2 for v in range(10)]
        assert summary.ok == 10
        assert summary.stages[0].retried == 0
        # Seen as an answer from a new process: a loss, which the summary reports.
        assert summary.worker_losses == {"ray": WorkerLosses(lost=1, rerun=0, replaced=0)}

    async def test_stage_errors_keep_their_type(self, ray_cluster: None) -> None:
        """An exception raised by the stage on an actor reaches the error record unwrapped."""
        stage = Stage(
            "div",
            partial(divmod, 10),
            kind="thread",
            retry=Retry(attempts=1),
            executor=RayExecutor(),
        )
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        await Pipeline([stage]).run([2, 0], sink=collect, ordered=True)
        assert out[0].value == (5, 0)
        assert out[1].error is not None
        assert out[1].error.type == "ZeroDivisionError"

    @pytest.mark.parametrize("fused", [False, True])
    async def test_what_cannot_be_pickled_back_is_named(
        self, ray_cluster: None, fused: bool
    ) -> None:
        """An exception that cannot be pickled keeps its type's name and message, and a
        result that cannot says so (round 24's audit: both became the bare "cannot pickle
        '_thread.lock' object", the exception's own message lost)."""
        executors = [RayExecutor(), RayExecutor()]
        if fused:
            executors[1] = executors[0]
        stages = [
            Stage("raises", _raise_locked, kind="thread", executor=executors[0]),
            Stage("returns", _return_lock, kind="thread", executor=executors[1]),
        ]
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        await Pipeline(stages).run(["raise", "lock", "fine"], sink=collect, ordered=True)
        raised, locked, fine = out
        assert fine.value == "fine"
        assert raised.error is not None and raised.error.stage == "raises"
        assert raised.error.message.startswith("_Locked: the stage's own reason (")
        assert locked.error is not None and locked.error.type == "TypeError"
        assert locked.error.message == (
            "the result cannot come back from the Ray worker: cannot pickle '_thread.lock' object"
        )
        if not fused:  # a fused chain's executor failure is charged to its first stage
            assert locked.error.stage == "returns"

    async def test_failing_resource_is_one_config_error(
        self, ray_cluster: None, tmp_path: Path
    ) -> None:
        """A resource factory that raises on the actors makes the run raise one ConfigError
        naming the stage, caused by the factory's error, as on local threads, and runs once
        per actor (it was a group of groups of StageErrors, the factory run again by Ray's
        restarts of the actor)."""
        built = tmp_path / "built"
        stage = Stage(
            "engine",
            _use_model,
            kind="thread",
            workers=2,
            resource=partial(_missing_model, str(built)),
            executor=RayExecutor(),
        )
        with pytest.raises(ConfigError) as raised:
            await Pipeline([stage]).run(range(4), sink=None)
        assert str(raised.value) == (
            "stage 'engine': a worker's resource could not be built "
            "(FileNotFoundError: model.onnx not found)"
        )
        assert isinstance(raised.value.__cause__, FileNotFoundError)
        # At most once per actor: the first failure stops the run, so the other actor may
        # be stopped before it builds.
        assert 1 <= (await anyio.Path(built).read_text()).count("built") <= 2

    async def test_cancel_does_not_wait_for_a_close_of_nothing(
        self, ray_cluster: None, tmp_path: Path
    ) -> None:
        """A run cancelled while an actor of a stage without a resource is mid-call stops
        its actors at once: it sent close() behind the running call and waited 10 s."""
        started = anyio.Path(tmp_path / "started")
        stage = Stage("hang", partial(_hang, str(started)), kind="thread", executor=RayExecutor())
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(Pipeline([stage]).run, [1], sink=None))
            while True:  # until the call runs on the actor
                if await started.exists():
                    break
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
            cancelled = anyio.current_time()
        # Killing the actor takes a fraction of a second; the old wait was 10 s.
        assert anyio.current_time() - cancelled < 8

    async def test_remote_traceback_reaches_the_debug_log(
        self, ray_cluster: None, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The DEBUG log of an item that failed on an actor shows the stage's own lines (it
        ended at the executor's re-raise), and the error record is unchanged."""
        stage = Stage("div", _divide, kind="thread", executor=RayExecutor())
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        with caplog.at_level(logging.DEBUG, logger="asyncpipe"):
            await Pipeline([stage]).run([0], sink=collect)
        assert out[0].error is not None
        assert (out[0].error.type, out[0].error.message) == (
            "ZeroDivisionError",
            "integer division or modulo by zero",
        )
        [failure] = [r for r in caplog.records if "failed on item" in r.getMessage()]
        assert failure.exc_text is not None
        assert "Traceback on the Ray actor" in failure.exc_text
        assert "in _divide" in failure.exc_text and "return 10 // value" in failure.exc_text

    async def test_restarted_actor_without_its_resource(
        self, ray_cluster: None, tmp_path: Path
    ) -> None:
        """An actor restarted after a loss whose resource cannot be built again fails the
        item with the factory's error (the actor's constructor died over and over, and
        the item failed with "the Ray actor running this item died")."""
        stage = Stage(
            "die",
            partial(_die_once_with, str(tmp_path)),
            kind="thread",
            resource=partial(_model_once, str(tmp_path)),
            executor=RayExecutor(max_call_retries=0),
        )
        out: list[Item] = []

        async def collect(item: Item) -> None:
            out.append(item)

        await Pipeline([stage]).run([1, 3], sink=collect, ordered=True)
        assert out[0].value == 2
        assert out[1].error is not None
        assert (out[1].error.type, out[1].error.message) == (
            "FileNotFoundError",
            "model.onnx not found",
        )

    async def test_oversubscription_is_refused(self, ray_cluster: None) -> None:
        """More actor CPUs than the cluster has free is a ConfigError naming the numbers."""
        stage = Stage("big", _noop, kind="thread", workers=3, executor=RayExecutor())
        with pytest.raises(ConfigError, match=r"needs 3 Ray actors x 1 CPU = 3 CPUs.* of 2 CPUs"):
            async with RayExecutor().open(stage):
                pass

    # Its own waits add up to 190 s (90 for the first line, 100 for the resume): the
    # project's 120 s default would cut a slow but sound run short on a loaded machine.
    @pytest.mark.timeout(300)
    def test_resume_after_killed_driver(self, tmp_path: Path) -> None:
        """A driver SIGKILLed mid-run, resumed from its journal, writes each page once."""
        out = tmp_path / "out.jsonl"
        paths = [str(sroie_dir() / "img" / f"{stem}.jpg") for stem in KILLED_RECEIPTS]
        cmd = [
            sys.executable,
            "-m",
            "asyncpipe",
            "run",
            *paths,
            "--out",
            str(out),
            "--executor",
            "ray",
            "--progress",
            "none",
            "--workers",
            "ocr=2",
        ]
        env = {**os.environ, "ASYNCPIPE_APP": "stages.app:app"}
        # Not a child of the test's cluster: the driver starts its own local cluster.
        env.pop("RAY_ADDRESS", None)
        driver = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # Killed once the journal holds a page's OCR result: the other pages are then
            # in flight. (The output's first line is no such mark: in input order it can
            # wait for a first page that a slower actor finishes last.)
            deadline = time.monotonic() + 90
            while not _ocr_journaled(tmp_path / "out.jsonl.journal"):
                assert driver.poll() is None, "the driver ended before its first OCR result"
                assert time.monotonic() < deadline, "no OCR result journaled in 90 s"
                time.sleep(0.05)
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        first = out.read_bytes().count(b"\n")
        assert first < len(KILLED_RECEIPTS)
        done = subprocess.run(
            [*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, timeout=100, check=False
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        ids = [record["id"] for record in records]
        assert sorted(ids) == sorted(ref.id for ref in _refs(KILLED_RECEIPTS))
        assert all(record["status"] == "ok" for record in records)

    @pytest.mark.timeout(300)
    def test_piped_document_travels_with_its_bytes(self, tmp_path: Path) -> None:
        """A receipt piped in (``run -``) is read on a Ray actor from the bytes its ref
        carries, with --inputs-shared too: there is no path for the actor to read."""
        out = tmp_path / "out.jsonl"
        receipt = (sroie_dir() / "img" / "000.jpg").read_bytes()
        cmd = [sys.executable, "-m", "asyncpipe", "run", "-", "--out", str(out)]
        cmd += ["--executor", "ray", "--inputs-shared", "--progress", "none"]
        env = {**os.environ, "ASYNCPIPE_APP": "stages.app:app"}
        env.pop("RAY_ADDRESS", None)  # the driver starts its own local cluster
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, input=receipt, capture_output=True, timeout=250, check=False
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        (record,) = (orjson.loads(line) for line in out.read_bytes().splitlines())
        assert (record["source"], record["status"]) == ("<stdin>", "ok"), record.get("error")
        assert record["id"].startswith("<stdin>#1@")
        assert "TAMAN DAYA" in record["text"]


# Run by test_quiet_driver_settings in a fresh process (this one's Ray is set up already).
_QUIET_SCRIPT = """
import json, os, anyio
from asyncpipe import Pipeline, RayExecutor, Stage
from asyncpipe._ray_connect import QUIET_DRIVER_ENV

def env(_):
    return {name: os.environ.get(name) for name in QUIET_DRIVER_ENV}

async def main():
    out = []
    async def collect(item):
        out.append(item.value)
    stage = Stage("env", env, kind="thread", executor=RayExecutor(init_options={"num_cpus": 1}))
    await Pipeline([stage]).run([0], sink=collect)
    left = {name: os.environ.get(name) for name in QUIET_DRIVER_ENV}
    print(json.dumps([out[0], left]))

anyio.run(main)
"""


class TestDriverSettings:
    """What a RayExecutor that starts Ray sets for its driver."""

    def test_quiet_driver_settings(self) -> None:
        """The quiet RAY_* settings reach the local cluster it starts (its actors inherit
        them), a variable the user exported wins, and none stays in the driver's env."""
        env = {**os.environ, "RAY_event_stats": "1"}
        env.pop("RAY_ADDRESS", None)
        for name in ("RAY_task_events_report_interval_ms", "RAY_enable_metrics_collection"):
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-c", _QUIET_SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        seen, left = orjson.loads(done.stdout.decode().strip().splitlines()[-1])
        assert seen == {
            "RAY_task_events_report_interval_ms": "0",
            "RAY_enable_metrics_collection": "0",
            "RAY_event_stats": "1",
            "RAY_io_context_event_loop_lag_collection_interval_ms": "-1",
        }
        assert left == {
            "RAY_task_events_report_interval_ms": None,
            "RAY_enable_metrics_collection": None,
            "RAY_event_stats": "1",
            "RAY_io_context_event_loop_lag_collection_interval_ms": None,
        }

    def test_log_to_driver_off_by_default(self) -> None:
        """ray.init gets log_to_driver=False unless asked otherwise."""
        assert RayExecutor().init_options["log_to_driver"] is False
        assert RayExecutor(log_to_driver=True).init_options["log_to_driver"] is True
        assert RayExecutor(driver_settings={}).driver_settings == {}


class TestWithoutRay:
    """What happens when ray is not installed."""

    def test_missing_ray_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Both the constructor and the lazy import name the extra to install."""
        monkeypatch.setitem(sys.modules, "ray", None)
        with pytest.raises(ConfigError, match=r"pip install 'asyncpipe\[ray\]'"):
            RayExecutor()
        with pytest.raises(ConfigError, match=r"pip install 'asyncpipe\[ray\]'"):
            import_ray()

    def test_import_asyncpipe_does_not_import_ray(self) -> None:
        """``import asyncpipe`` (and the CLI module) never imports ray."""
        code = (
            "import sys, asyncpipe, asyncpipe._cli, asyncpipe._ray, asyncpipe._ray_actors, "
            "asyncpipe._ray_connect; print('ray' in sys.modules)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        assert done.stdout.strip() == b"False"
