"""
Odd inputs that are still documents: an animation, whose first picture is read with a
warning, and a file given more than once, read once and reported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from asyncpipe import Item
from stages.inputs import discover, load_page
from stages.pipeline import output_record

REPEAT = "file already given (a repeat, or the same file by a link)"


def _pictures() -> list[Image.Image]:
    first = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))).convert("RGB")
    return [first, first.rotate(180), first.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]


class TestAnimation:
    """An animated GIF or WebP reads its first picture and says it holds more."""

    @pytest.mark.parametrize("kind", ["GIF", "WEBP"])
    def test_the_first_picture_with_a_warning(self, tmp_path: Path, kind: str) -> None:
        """The page is the first picture; the record's warning counts the pictures."""
        first, *rest = _pictures()
        animated = tmp_path / f"moving.{kind.lower()}"
        first.save(animated, kind, save_all=True, append_images=rest, duration=200, lossless=True)
        (ref,) = discover([animated])
        page = load_page(ref)
        assert page.image is not None
        assert np.abs(page.image[:, :, ::-1].astype(int) - np.asarray(first)).max() < 8
        assert page.notes["load"]["frames"] == 3
        (warning,) = output_record(Item("p", 0, page))["warnings"]
        assert warning == "animated: the file holds 3 pictures and only the first was read"

    @pytest.mark.parametrize("kind", ["GIF", "WEBP"])
    def test_a_still_picture_has_no_warning(self, tmp_path: Path, kind: str) -> None:
        """One picture is no animation."""
        still = tmp_path / f"still.{kind.lower()}"
        _pictures()[0].save(still, kind, lossless=True)
        (ref,) = discover([still])
        page = load_page(ref)
        assert "load" not in page.notes
        assert "warnings" not in output_record(Item("p", 0, page))


class TestGivenAgain:
    """A file given again is read once, and each later time reported, as a folder is."""

    def test_each_repeat_is_reported(self, tmp_path: Path) -> None:
        """Twice by name, by a link, and in its folder (by name and by the link): one
        ref, and the four later times reported."""
        scan = tmp_path / "scan.png"
        _pictures()[0].save(scan)
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "link.png").symlink_to(scan)
        skipped: list[tuple[str, str]] = []
        inputs = [scan, scan, tmp_path / "sub" / "link.png", tmp_path]
        refs = list(discover(inputs, on_skip=lambda path, why: skipped.append((path, why))))
        assert [ref.source for ref in refs] == [str(scan)]
        assert skipped == [
            (str(scan), REPEAT),
            (str(tmp_path / "sub" / "link.png"), REPEAT),
            (str(scan), REPEAT),
            (str(tmp_path / "sub" / "link.png"), REPEAT),
        ]
