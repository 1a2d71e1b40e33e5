from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest
import rapidocr

from asyncpipe._exceptions import ConfigError
from stages.ocr import RapidOcrEngine

__all__: list[str] = []

_REC = Path(rapidocr.__file__).resolve().parent / "models" / "PP-OCRv6_rec_small.onnx"
RECEIPT = "001"


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        shift += 7
        if byte < 0x80:
            return value, at


def _without_metadata(model: bytes) -> bytes:
    """The ONNX ModelProto with its metadata_props (field 14) left out, all else as is."""
    out = bytearray()
    at = 0
    while at < len(model):
        start = at
        key, at = _varint(model, at)
        wire = key & 7
        if wire == 0:
            _, at = _varint(model, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            assert wire == 2, wire
            size, at = _varint(model, at)
            at += size
        if key >> 3 != 14:
            out += model[start:at]
    return bytes(out)


def _stored_keys() -> list[str]:
    session = onnxruntime.InferenceSession(str(_REC), providers=["CPUExecutionProvider"])
    keys: list[str] = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    return keys


@pytest.fixture(scope="module")
def bare_rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's recognition model with no character list stored in it."""
    path = tmp_path_factory.mktemp("rec") / "bare.onnx"
    path.write_bytes(_without_metadata(_REC.read_bytes()))
    return path


@pytest.fixture(scope="module")
def default_text(sroie: Path) -> Iterator[str]:
    """The default engine's text of one receipt."""
    engine = RapidOcrEngine()
    yield _text(engine, sroie)
    engine.close()


def _text(engine: RapidOcrEngine, sroie: Path) -> str:
    image = cv2.imread(str(sroie / "img" / f"{RECEIPT}.jpg"), cv2.IMREAD_COLOR)
    assert image is not None
    return "\n".join(line.text for line in engine.recognize(np.asarray(image, dtype=np.uint8)))


class TestRecKeys:
    """A recognition model's character list: stored in it, or given as rec_keys."""

    def test_model_without_list_fails_instead_of_downloading(self, bare_rec: Path) -> None:
        """A rec model storing no list, and no rec_keys, is a ConfigError."""
        with pytest.raises(ConfigError, match="stores no character list"):
            RapidOcrEngine(rec_model=bare_rec)

    def test_given_list_reads_like_the_stored_one(
        self, bare_rec: Path, tmp_path: Path, sroie: Path, default_text: str
    ) -> None:
        """The bare model with its list as rec_keys reads a receipt exactly as the default."""
        keys = tmp_path / "keys.txt"
        keys.write_text("\n".join(_stored_keys()) + "\n", encoding="utf-8")
        engine = RapidOcrEngine(rec_model=bare_rec, rec_keys=keys)
        assert engine.rec_model == bare_rec
        assert _text(engine, sroie) == default_text
        engine.close()

    def test_given_list_replaces_the_stored_one(
        self, tmp_path: Path, sroie: Path, default_text: str
    ) -> None:
        """With A and E swapped in rec_keys, every A read becomes E and every E an A."""
        stored = _stored_keys()
        a, e = stored.index("A"), stored.index("E")
        stored[a], stored[e] = "E", "A"
        keys = tmp_path / "swapped.txt"
        keys.write_text("\n".join(stored) + "\n", encoding="utf-8")
        engine = RapidOcrEngine(rec_keys=keys)
        text = _text(engine, sroie)
        engine.close()
        assert "A" in default_text and "E" in default_text
        assert text == default_text.translate(str.maketrans("AE", "EA"))

    def test_list_that_does_not_fit_the_model(self, tmp_path: Path) -> None:
        """A list whose length does not match the model's classes is a ConfigError."""
        keys = tmp_path / "keys.txt"
        keys.write_text("A\nB\nC\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="lists 3 characters"):
            RapidOcrEngine(rec_keys=keys)

    def test_missing_list(self, tmp_path: Path) -> None:
        """A missing list is a ConfigError, never a download."""
        with pytest.raises(ConfigError, match="rec_keys model not found"):
            RapidOcrEngine(rec_keys=tmp_path / "none.txt")
