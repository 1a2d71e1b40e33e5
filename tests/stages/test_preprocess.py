from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from asyncpipe._exceptions import ConfigError, StageError
from stages._page import Page, PageRef
from stages.preprocess import PreprocessOptions, estimate_skew, preprocess, rotate

__all__: list[str] = []

OFF = PreprocessOptions(
    grayscale=False, deskew=False, denoise=None, binarize=False, max_side=None, min_side=None
)


def _load(sroie: Path, stem: str) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(sroie / "img" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _page(image: npt.NDArray[np.uint8]) -> Page:
    return Page(ref=PageRef(id="t", source="t.jpg", page=1, kind="jpeg"), image=image)


class TestOptions:
    """PreprocessOptions validation and each step's effect."""

    def test_all_off_keeps_the_image(self, sroie: Path) -> None:
        """With every step off the pixels and scale are unchanged."""
        image = _load(sroie, "002")
        page = preprocess(_page(image.copy()), OFF)
        assert page.image is not None
        assert np.array_equal(page.image, image)
        assert page.scale == 1.0

    def test_grayscale(self, sroie: Path) -> None:
        """grayscale gives one channel; off keeps three."""
        image = _load(sroie, "002")
        gray = preprocess(_page(image.copy()), replace(OFF, grayscale=True)).image
        assert gray is not None
        assert gray.shape == image.shape[:2]
        colour = preprocess(_page(image.copy()), OFF).image
        assert colour is not None
        assert colour.shape == image.shape

    def test_max_side_shrinks_and_records_scale(self, sroie: Path) -> None:
        """max_side limits the longest side and page.scale records the factor."""
        image = _load(sroie, "023")  # 3508 x 2481
        page = preprocess(_page(image), replace(OFF, max_side=1000))
        assert page.image is not None
        assert max(page.image.shape[:2]) == 1000
        assert page.scale == pytest.approx(page.image.shape[1] / image.shape[1])

    def test_min_side_enlarges_small_images(self) -> None:
        """A tiny image is enlarged to min_side, and scale is above 1."""
        image = np.full((50, 200), 255, dtype=np.uint8)
        page = preprocess(_page(image), replace(OFF, min_side=100))
        assert page.image is not None
        assert page.image.shape == (100, 400)
        assert page.scale == pytest.approx(2.0)

    def test_binarize_gives_two_levels(self, sroie: Path) -> None:
        """binarize leaves only black and white pixels."""
        page = preprocess(_page(_load(sroie, "002")), replace(OFF, binarize=True))
        assert page.image is not None
        assert set(np.unique(page.image).tolist()) <= {0, 255}

    @pytest.mark.parametrize("method", ["median", "bilateral", "nlmeans"])
    def test_denoise_changes_pixels(self, sroie: Path, method: str) -> None:
        """Each denoise method changes the pixels but not the shape."""
        image = _load(sroie, "002")
        options = replace(OFF, grayscale=True, denoise=method)  # type: ignore[arg-type]
        out = preprocess(_page(image), options).image
        assert out is not None
        assert out.shape == image.shape[:2]
        assert not np.array_equal(out, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))

    def test_bad_options_are_config_errors(self) -> None:
        """Nonsense options raise ConfigError."""
        with pytest.raises(ConfigError, match="denoise"):
            PreprocessOptions(denoise="blur")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="min_side"):
            PreprocessOptions(min_side=3000, max_side=2000)

    def test_no_image_is_a_stage_error(self) -> None:
        """A page without pixels raises StageError."""
        page = Page(ref=PageRef(id="t", source="t.jpg", page=1, kind="jpeg"))
        with pytest.raises(StageError, match="no image"):
            preprocess(page, PreprocessOptions())


class TestDeskew:
    """Skew estimation and correction on a real receipt."""

    @pytest.mark.parametrize("angle", [5.0, -5.0])
    def test_corrects_a_synthetic_rotation(self, sroie: Path, angle: float) -> None:
        """A receipt rotated by 5 degrees is estimated and corrected within 1 degree."""
        straight = cv2.cvtColor(_load(sroie, "002"), cv2.COLOR_BGR2GRAY)
        base = estimate_skew(np.asarray(straight, dtype=np.uint8))
        assert abs(base) < 1.0
        skewed = rotate(np.asarray(straight, dtype=np.uint8), angle)
        assert estimate_skew(skewed) == pytest.approx(-angle, abs=1.0)
        page = preprocess(_page(skewed), replace(OFF, grayscale=True, deskew=True))
        assert page.notes["preprocess"]["rotated"] is True
        assert page.image is not None
        assert abs(estimate_skew(page.image)) < 1.0

    def test_straight_page_is_not_rotated(self, sroie: Path) -> None:
        """A nearly straight receipt is left alone (no resampling)."""
        image = cv2.cvtColor(_load(sroie, "002"), cv2.COLOR_BGR2GRAY)
        page = preprocess(_page(np.asarray(image, dtype=np.uint8)), replace(OFF, deskew=True))
        assert "rotated" not in page.notes["preprocess"]
        assert page.image is not None
        assert np.array_equal(page.image, image)
