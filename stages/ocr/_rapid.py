"""
The default OCR engine: PaddleOCR's PP-OCR models run as ONNX by rapidocr and onnxruntime.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from asyncpipe import ConfigError, StageError
from stages._page import Line
from stages._rows import page_bow

from ._base import four_corners, polygon_to_box, reading_order
from ._level import level_quads
from ._orient import quarter_turns
from ._spacing import space_line
from ._tiles import THINNEST, detector_side, read_in_strips, readable
from ._unbend import MIN_BOW, MIN_KEPT, bend_back, confident_characters, straighten

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import numpy.typing as npt

__all__ = ["RAPIDOCR_MAX_SIDE", "RapidOcrEngine", "rapidocr_max_side", "respace_lines"]

# The model files the rapidocr 3.x wheel ships in ``rapidocr/models``.
_DEFAULT_DET = "PP-OCRv6_det_small.onnx"
_DEFAULT_REC = "PP-OCRv6_rec_small.onnx"
_DEFAULT_CLS = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
# rapidocr shrinks every page to this longest side before detection (its own default is
# 2000). 1500 read the 40 SROIE receipts with higher character accuracy on both halves
# at 0.91x the CPU time (benchmarks/ocr_sweep.py, table in benchmarks/README.md).
#: The longest side rapidocr works at here (its ``Global.max_side_len``).
RAPIDOCR_MAX_SIDE = 1500


def _quiet_when_empty(record: logging.LogRecord) -> bool:
    """Drop rapidocr's warning that it found no text: a blank page, or a PDF's picture
    that holds none, is an ordinary result, and the record says so."""
    return "detection result is empty" not in record.getMessage()


def rapidocr_max_side(params: Mapping[str, Any] | None = None) -> int:
    """
    The longest side a `RapidOcrEngine` with these ``params`` works at: its
    ``Global.max_side_len``, else `RAPIDOCR_MAX_SIDE`.  Decoding more pixels is wasted memory.
    """
    return int((params or {}).get("Global.max_side_len", RAPIDOCR_MAX_SIDE))


def _model_file(name: str | Path, models_dir: Path, role: str) -> Path:
    path = Path(name)
    if not path.is_absolute():
        path = models_dir / path
    if not path.is_file():
        raise ConfigError(
            f"rapidocr {role} model not found at {path}; asyncpipe never downloads models. "
            "The rapidocr wheel ships them: reinstall it with "
            "`pip install --force-reinstall 'rapidocr>=3.4,<4'`, or pass a path to an "
            f"existing .onnx file as {role}_model="
        )
    return path


def _check_stored_keys(rec_path: Path, models_dir: Path) -> None:
    """
    Fail unless the recognition model stores its character list (rapidocr would
    download one). The wheel's own model does; others are opened once to look.
    """
    if rec_path == models_dir / _DEFAULT_REC:
        return
    import onnxruntime  # type: ignore[import-untyped]

    try:
        session = onnxruntime.InferenceSession(str(rec_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(f"rapidocr rec model {rec_path} does not load: {exc}") from exc
    if "character" not in session.get_modelmeta().custom_metadata_map:
        raise ConfigError(
            f"rapidocr rec model {rec_path} stores no character list and rapidocr would "
            "download one; asyncpipe never downloads: pass the list that ships with the "
            "model as rec_keys="
        )


def _use_keys(recognizer: Any, keys: Path) -> None:
    """
    Make rapidocr's recogniser decode with the character list in ``keys``.

    rapidocr prefers a list stored in the ONNX file over ``rec_keys_path``; a list that
    does not fit the model's output would decode garbage, so it is checked here.
    """
    from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode

    decode = CTCLabelDecode(character_path=keys)
    outputs = recognizer.session.session.get_outputs()[0].shape
    classes = outputs[-1] if outputs else None
    if isinstance(classes, int) and classes != len(decode.character):
        raise ConfigError(
            f"{keys} lists {len(decode.character) - 2} characters but the recognition "
            f"model outputs {classes} classes (characters + blank + space)"
        )
    recognizer.postprocess_op = decode


def respace_lines(ocr: Any, respace: Callable[[str, list[int], float, Any], str]) -> None:
    """
    Make rapidocr's recognition step pass every line through ``respace``.

    rapidocr's ``recognize_txt`` gets the line crops exactly as the recogniser reads them
    (after the classifier's turn); it is wrapped to ask for the CTC column of each
    non-space character (``return_word_box``) and to replace each text with
    ``respace(text, columns, steps, crop)`` before rapidocr drops empty and low-score
    lines, so boxes, scores and filtering stay rapidocr's own. The word boxes rapidocr
    would build from those columns are not asked for.

    Args:
        ocr: a ``rapidocr.RapidOCR``.
        respace: e.g. `space_line` with its ``space_gap`` bound.

    Raises:
        ConfigError: this rapidocr has no ``recognize_txt`` to wrap.
    """
    recognize: Callable[[list[Any]], Any] | None = getattr(ocr, "recognize_txt", None)
    if not callable(recognize) or not hasattr(ocr, "return_word_box"):
        raise ConfigError("space_gap needs rapidocr 3.x with RapidOCR.recognize_txt")

    def spaced(crops: list[Any]) -> Any:
        wanted = ocr.return_word_box
        ocr.return_word_box = True
        try:
            result = recognize(crops)
        finally:
            ocr.return_word_box = wanted
        texts = [
            respace(
                text,
                [column for word in info.word_cols for column in word],
                info.line_txt_len,
                crop,
            )
            for text, info, crop in zip(result.txts, result.word_results, result.imgs, strict=True)
        ]
        result.txts = tuple(texts)
        if not wanted:
            result.word_results = tuple(None for _ in texts)  # as without word boxes
        return result

    ocr.recognize_txt = spaced


def _text_detector(ocr: Any) -> Any:
    """rapidocr's text detector (loaded), whose short side is set page by page."""
    return ocr.text_det


def _bgr(crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A crop as the models take it, three channels: gray is repeated, alpha dropped."""
    if crop.ndim == 2:
        return np.repeat(crop[:, :, np.newaxis], 3, axis=2)
    return np.ascontiguousarray(crop[:, :, :3])


class RapidOcrEngine:
    """
    OCR with rapidocr 3.x on onnxruntime, with models from the rapidocr wheel only.

    One instance belongs to one worker thread: each instance owns its onnxruntime sessions,
    limited to ``intra_op_threads`` threads, so N workers use about N cores. rapidocr's
    ``__call__`` also writes per-call options onto the instance, another reason not to share
    one between threads.

    Args:
        use_cls: run the 0/180 degree text-line classifier. Off by default: receipts are
            upright and it adds a model call per line; its effect on SROIE accuracy is not
            measured yet (``benchmarks/ocr_accuracy.py accuracy --config raw_cls``).
        intra_op_threads: onnxruntime threads per session. 1 (the default) suits one
            engine per worker thread; raise it only for a single worker on a many-core box.
        text_score: drop lines whose recognition confidence is below this (rapidocr's
            default, 0.5).
        det_model: detection model, a file name in ``rapidocr/models`` or a path.
        rec_model: recognition model, likewise.
        cls_model: classifier model, likewise (loaded only when ``use_cls``).
        rec_keys: the recogniser's character list, one per line (a file name in
            ``rapidocr/models`` or a path), for a ``rec_model`` whose ONNX file stores
            none or a wrong one; it replaces the stored one. ``None``: the list stored in
            the model, and a model that stores none is a ConfigError (rapidocr would
            download one). Other PP-OCR models tried are in ``benchmarks/ocr_models.py``.
        space_gap: put a space between two characters of a line where the widest
            ink-free gap between them is wider than this many times the height of the
            line's crop (``stages/ocr/_spacing.py``); ``None`` adds none. The recogniser
            misses many spaces of receipts, most after a comma or colon. 0.45 (the
            default) was the best setting on the development half of the SROIE receipts
            (``benchmarks/ocr_spacing.py``); on the held-out half it put one more address
            right (6/20 instead of 5/20) and raised OCR character accuracy from 0.9404 to
            0.9413 (``benchmarks/accuracy_offline.py --compare nogaps,default``). It costs
            about 0.4 % of the OCR's CPU time.
        narrow_gap: a narrower gap, down to this many crop heights, is a space too where
            it is 2.5 times the line's median gap between characters and a word space
            can be narrow: between two letters, or after a mark that ends a word
            (``stages/ocr/_spacing.py``, ``space_limits``). These are the narrow spaces
            of a proportional face, which the recogniser drops (``NASIKANDAR``).
            ``None``: ``space_gap`` alone.
            Chosen on receipts printed in a proportional font (``benchmarks/
            fields_rendered.py --font aileron``); see the README for what it does there
            and on the SROIE scans.
        orient: turn a page that lies sideways or upside down upright and read it again
            (``stages/ocr/_orient.py``): the boxes of the first reading say whether the
            lines run across the page, and the text-line classifier, on the 15 widest
            lines, whether they are upside down (and when its vote is close, the
            recogniser, reading their middles both ways). An upright page costs the
            classifier on those lines; a turned one is read twice. :attr:`last_turns`
            says how the last page was turned (``benchmarks/robustness.py``).
        level: level the boxes of a page scanned a little askew (``stages/ocr/_level.py``):
            the lines' own four-point boxes give the tilt, and their corners are turned
            back by it before the axis-aligned boxes are taken, so the parts of a printed
            row stay one row. No pixel is read again.
        strips: read a page more than 3 times as tall as it is wide (a long receipt) in
            overlapping strips up to twice as long as it is wide, so the detector sees its
            print at full size instead of shrunk to fit 1500 pixels
            (``stages/ocr/_tiles.py``). Other pages are read whole, as before.
        unbend: read a curled page again straightened (``stages/ocr/_unbend.py``): when
            the first reading's longest line bows by more than ``MIN_BOW`` (0.2) print
            heights under the page's curl (its lines' slopes changing along x at one
            height: a keystone, lines tilted by their height, is none), each column is
            shifted by the page's fitted curve and the page is read again; the lines, in
            the order of the straightened page, are put back in the page's pixels, unless
            they read less than ``MIN_KEPT`` (0.95) of the first reading (then the first
            is kept). A flat page is read once. :attr:`last_bend` says how far the last
            page was bent.
        log_level: level for rapidocr's ``RapidOCR`` logger (it logs at INFO on start-up).
        params: further rapidocr config keys, e.g. ``{"Global.max_side_len": 2000}`` (the
            default here is 1500), ``{"Det.unclip_ratio": 2.0}`` or
            ``{"Rec.rec_batch_num": 1}`` (measured in ``benchmarks/fields_exact.py``);
            they override the keys above.

    Raises:
        ConfigError: rapidocr is not installed or a model file is missing.

    .. versionadded:: 0.1
    """

    name = "rapidocr"

    def __init__(
        self,
        *,
        use_cls: bool = False,
        intra_op_threads: int = 1,
        text_score: float = 0.5,
        det_model: str | Path = _DEFAULT_DET,
        rec_model: str | Path = _DEFAULT_REC,
        cls_model: str | Path = _DEFAULT_CLS,
        log_level: str = "warning",
        params: Mapping[str, Any] | None = None,
        rec_keys: str | Path | None = None,
        space_gap: float | None = 0.45,
        narrow_gap: float | None = 0.22,
        orient: bool = True,
        level: bool = True,
        strips: bool = True,
        unbend: bool = True,
    ) -> None:
        try:
            import rapidocr
        except ImportError as exc:
            raise ConfigError(
                "the rapidocr engine needs rapidocr and onnxruntime: "
                "`pip install 'rapidocr>=3.4,<4' onnxruntime`"
            ) from exc
        if intra_op_threads < 1:
            raise ConfigError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        if space_gap is not None and not space_gap > 0:
            raise ConfigError(f"space_gap must be > 0 or None, got {space_gap}")
        if narrow_gap is not None and not narrow_gap > 0:
            raise ConfigError(f"narrow_gap must be > 0 or None, got {narrow_gap}")
        models_dir = Path(rapidocr.__file__).resolve().parent / "models"
        rec_path = _model_file(rec_model, models_dir, "rec")
        if rec_keys is not None:
            keys: Path | None = _model_file(rec_keys, models_dir, "rec_keys")
        else:
            keys = None
            _check_stored_keys(rec_path, models_dir)
        config: dict[str, Any] = {
            "Global.log_level": log_level,
            "Global.use_cls": use_cls,
            "Global.text_score": text_score,
            "Global.max_side_len": RAPIDOCR_MAX_SIDE,
            "Det.model_path": str(_model_file(det_model, models_dir, "det")),
            "Rec.model_path": str(rec_path),
            "EngineConfig.onnxruntime.intra_op_num_threads": intra_op_threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        if keys is not None:
            # Without it rapidocr would fetch a dictionary when the model stores none.
            config["Rec.rec_keys_path"] = str(keys)
        config.update(params or {})
        if use_cls or orient:
            config["Cls.model_path"] = str(_model_file(cls_model, models_dir, "cls"))
        # rapidocr's logger has its own handler and does not propagate; set its level before
        # construction too, so nothing is printed while the models load.
        logging.getLogger("RapidOCR").setLevel(log_level.upper())
        logging.getLogger("RapidOCR").addFilter(_quiet_when_empty)
        try:
            self._ocr: Any = rapidocr.RapidOCR(params=config)
            # rapidocr loads models on first use; load them now so a broken model fails
            # here, in the factory, rather than on the first page.
            for step in ("det", "cls", "rec") if use_cls or orient else ("det", "rec"):
                getattr(self._ocr, f"_load_{step}_model")()
            if keys is not None:
                _use_keys(self._ocr.text_rec, keys)
            if space_gap is not None:
                respace_lines(
                    self._ocr, partial(space_line, space_gap=space_gap, narrow_gap=narrow_gap)
                )
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"rapidocr could not start: {exc}") from exc
        self.use_cls = use_cls
        #: Whether pages are turned upright before they are read (``orient``).
        self.orient = orient
        #: Whether boxes are levelled (``level``).
        self.level = level
        #: Whether long pages are read in strips (``strips``).
        self.strips = strips
        #: Whether curled pages are straightened and read again (``unbend``).
        self.unbend = unbend
        #: How far the last page read again straightened was bent: the range of its
        #: curve in pixels, 0.0 for a page read once or whose first reading was kept.
        self.last_bend = 0.0
        #: The longest side rapidocr reads a page at (``Global.max_side_len``).
        self.max_side = rapidocr_max_side(params)
        # The detector, its short side for a page of a receipt's size (a smaller page is
        # enlarged less: `detector_side`) and the short side rapidocr enlarges a page to
        # before it.
        self._detector = _text_detector(self._ocr)
        self._detector_limit = int(self._detector.limit_side_len)
        self._min_side = int(self._ocr.min_side_len)
        #: Quarter turns counter-clockwise (``np.rot90``) the last page was given before
        #: its lines were read: 0 upright, 1, 2 or 3. Its boxes are in the turned page.
        self.last_turns = 0
        #: The ``space_gap`` and ``narrow_gap`` this engine was built with.
        self.space_gap = space_gap
        self.narrow_gap = narrow_gap
        #: The recognition model file this engine runs.
        self.rec_model = Path(config["Rec.model_path"])
        self._closed = False

    def recognize(self, image: npt.NDArray[np.uint8]) -> list[Line]:
        """
        Find and read the text lines of one image, turned upright first when ``orient``.

        Args:
            image: uint8 pixels, gray or BGR.

        Returns:
            Lines in reading order with boxes in *image* pixels, or, when the page was
            turned (:attr:`last_turns` > 0), in the pixels of ``np.rot90(image, last_turns)``.

        Raises:
            StageError: the engine is closed or rapidocr failed on this image.
        """
        if self._closed:
            raise StageError("RapidOcrEngine is closed")
        self.last_turns = 0
        self.last_bend = 0.0
        lines = self._read(image)
        if self.orient and lines:
            turns = quarter_turns(image, lines, self._classify, self._confidences)
            if turns:
                image = np.ascontiguousarray(np.rot90(image, turns))
                lines = self._read(image)
                self.last_turns = turns
        bowed = page_bow(lines) if self.unbend else None
        if bowed is not None and bowed[1] > MIN_BOW:
            straight, shift = straighten(image, bowed[0])
            # Ordered on the straightened page, where its rows are straight.
            again = bend_back(self._read(straight), shift, image.shape[0])
            if confident_characters(again) >= MIN_KEPT * confident_characters(lines):
                lines = again
                self.last_bend = round(-float(shift.min()), 1)
        return lines

    def _read(self, image: npt.NDArray[np.uint8]) -> list[Line]:
        """The page's lines in reading order, read in strips when it is long."""
        if min(image.shape[:2]) < THINNEST:
            return []
        lines = read_in_strips(image, self._lines, self.max_side) if self.strips else None
        return reading_order(self._lines(image) if lines is None else lines)

    def _lines(self, image: npt.NDArray[np.uint8]) -> list[Line]:
        height, width = image.shape[:2]
        page = readable(image, self.max_side)
        self._detector.limit_side_len = detector_side(
            page.shape[0], page.shape[1], self._detector_limit, self.max_side, self._min_side
        )
        try:
            result = self._ocr(page)
        except Exception as exc:
            why = str(exc) or type(exc).__name__
            raise StageError(f"rapidocr failed on a {width}x{height} image: {why}") from exc
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None)
        scores = getattr(result, "scores", None)
        if boxes is None or texts is None or scores is None:
            return []  # rapidocr found no text
        if self.level:
            boxes = level_quads(boxes, image.shape[1], image.shape[0])
        return [
            Line(
                text=str(text),
                box=polygon_to_box(quad),
                confidence=round(float(score), 4),
                quad=four_corners(quad),
            )
            for quad, text, score in zip(boxes, texts, scores, strict=True)
        ]

    def _classify(self, crops: list[npt.NDArray[np.uint8]]) -> Sequence[tuple[str, float]]:
        """rapidocr's text-line classifier: ``("0" | "180", score)`` per crop."""
        try:
            result = self._ocr.text_cls([_bgr(crop) for crop in crops])
        except Exception as exc:
            raise StageError(f"rapidocr's classifier failed: {exc}") from exc
        return [(str(label), float(score)) for label, score in result.cls_res]

    def _confidences(self, crops: list[npt.NDArray[np.uint8]]) -> Sequence[float]:
        """The recogniser's confidence in its reading of each crop."""
        try:
            result = self._ocr.recognize_txt([_bgr(crop) for crop in crops])
        except Exception as exc:
            raise StageError(f"rapidocr's recogniser failed: {exc}") from exc
        return [float(score) for score in result.scores]

    def close(self) -> None:
        """
        Drop the onnxruntime sessions; later calls to :meth:`recognize` raise StageError.
        """
        self._closed = True
        self._ocr = None
