from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import orjson
import pytest
from corpus import read_text, receipt_bgr

from stages._page import Line, Page, PageRef
from stages._rows import page_bend, page_bow
from stages.ocr import RapidOcrEngine, ocr_page, polygon_to_box
from stages.ocr._unbend import MIN_BOW, bend_back, straighten
from stages.offline import edit_distance

__all__: list[str] = []

PROJECT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1000, 600
#: Print height and row pitch of the synthetic page, in pixels.
PRINT, PITCH = 24, 60


def _curl(image: npt.NDArray[np.uint8], depth: float) -> npt.NDArray[np.uint8]:
    """As ``benchmarks/robustness.py``'s ``_curl``: the middle of every row ``depth`` times
    the width higher than its ends, white below."""
    h, w = image.shape[:2]
    x = np.arange(w, dtype=np.float32)
    lift = depth * w * (1 - (2 * x / max(w - 1, 1) - 1) ** 2)
    map_x = np.tile(x, (h, 1))
    map_y = np.arange(h, dtype=np.float32)[:, None] + lift[None, :]
    curled = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    return np.asarray(curled, dtype=np.uint8)


@pytest.mark.slow
def test_the_record_says_bend_and_no_unbend_reads_once(sroie: Path, tmp_path: Path) -> None:
    """Through the command: a curled receipt's record says by how much its page was bent
    (it was read again straightened), and ``--no-unbend`` reads it once, as it lies."""
    curled = tmp_path / "curled.png"
    cv2.imwrite(str(curled), _curl(receipt_bgr(sroie, "000"), 0.08))
    records = {}
    for name, extra in (("default", []), ("once", ["--no-unbend"])):
        out = tmp_path / f"{name}.jsonl"
        command = [sys.executable, "-m", "asyncpipe", "run", str(curled), "--out", str(out)]
        done = subprocess.run(
            [*command, "--progress", "none", *extra],
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        (records[name],) = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert records["default"]["bend"] > 20
    assert "bend" not in records["once"]
    assert records["default"]["status"] == records["once"]["status"] == "ok"


def _lift(x: float, depth: float) -> float:
    return depth * WIDTH * (1 - (2 * x / (WIDTH - 1) - 1) ** 2)


def _bars() -> tuple[npt.NDArray[np.uint8], list[int]]:
    """A white page with black bars, one per printed row, and the rows' middles."""
    page = np.full((HEIGHT, WIDTH), 255, np.uint8)
    middles = list(range(150, HEIGHT - 40, PITCH))
    for y in middles:
        page[y - PRINT // 2 : y + PRINT // 2, 40 : WIDTH - 40] = 0
    return page, middles


def _chord(x0: float, x1: float, y: float, depth: float, tilt: float = 0.0) -> Line:
    """The line a detector finds from ``x0`` to ``x1`` of the bar at ``y`` of the bars
    curled ``depth`` and turned by ``tilt`` (dy/dx) about the page's middle: its quad along
    the chord of its part of the bow."""
    left = y - _lift(x0, depth) + tilt * (x0 - WIDTH / 2)
    right = y - _lift(x1, depth) + tilt * (x1 - WIDTH / 2)
    half = PRINT / 2
    quad = [[x0, left - half], [x1, right - half], [x1, right + half], [x0, left + half]]
    return Line("bar", polygon_to_box(quad), 1.0, [list(map(float, p)) for p in quad])


def _chords(middles: list[int], depth: float) -> list[Line]:
    """The lines a detector finds on the curled bars: three parts of each row, each quad
    along the chord of its part of the bow."""
    return [
        _chord(x0, x1, y, depth) for y in middles for x0, x1 in ((40, 330), (360, 640), (670, 960))
    ]


def _ink_middles(image: npt.NDArray[np.uint8], column: int) -> list[float]:
    """The middles of the dark runs down one column."""
    dark = image[:, column] < 128
    edges = np.flatnonzero(np.diff(dark.astype(np.int8)))
    return [(top + bottom) / 2 for top, bottom in zip(edges[::2], edges[1::2], strict=False)]


class TestStraighten:
    """A page's fitted bend taken out of its pixels, and put back into its lines."""

    def test_curled_rows_come_out_straight(self) -> None:
        """Curled 8 %: on the straightened page every bar lies at one height across."""
        page, middles = _bars()
        bend = page_bend(_chords(middles, 0.08))
        assert bend is not None
        straight, _ = straighten(_curl(page, 0.08), bend)
        assert straight.shape[0] >= HEIGHT + 0.08 * WIDTH - 2
        for column in (60, 250, 500, 750, 940):
            got = _ink_middles(straight, column)
            want = _ink_middles(straight, 500)
            assert len(got) == len(middles)
            assert np.allclose(got, want, atol=2.0), (column, got, want)

    def test_a_flat_page_has_no_bend(self) -> None:
        """Chords of flat rows: no bend and no bow, so the page is read once."""
        _, middles = _bars()
        assert page_bend(_chords(middles, 0.0)) is None
        flat = page_bow(_chords(middles, 0.0))
        assert flat is not None
        assert flat[1] == 0.0

    def test_the_bow_is_the_sagitta_of_the_longest_line(self) -> None:
        """Curled 8 %: a line 290 wide of a page 1000 wide bows 80 * 0.29 ** 2 pixels."""
        _, middles = _bars()
        bowed = page_bow(_chords(middles, 0.08))
        assert bowed is not None
        assert bowed[1] == pytest.approx(0.08 * WIDTH * 0.29**2 / PRINT, rel=0.05)
        assert bowed[1] > MIN_BOW
        assert page_bow([]) is None

    def test_a_centred_few_line_page_has_no_bow(self) -> None:
        """Five long centred lines, centres 3 px apart, slopes noisy: no curve is fitted."""
        lines = []
        for k, (offset, slope) in enumerate(
            ((-3, -0.004), (3, 0.004), (-1, 0.0), (1, 0.002), (0, -0.001))
        ):
            half = 300 + 40 * k
            x0, x1, y = 500 + offset - half, 500 + offset + half, 100.0 + PITCH * k
            quad = [
                [x0, y - slope * half - PRINT / 2],
                [x1, y + slope * half - PRINT / 2],
                [x1, y + slope * half + PRINT / 2],
                [x0, y - slope * half + PRINT / 2],
            ]
            lines.append(
                Line("label", polygon_to_box(quad), 1.0, [[float(a), float(b)] for a, b in quad])
            )
        bowed = page_bow(lines)
        assert bowed is not None
        assert bowed[1] <= MIN_BOW
        assert page_bend(lines) is None

    def test_lines_tilted_by_their_height_do_not_bow(self) -> None:
        """A keystone of a turned page: every line straight, tilted by its height (-0.1 at
        the top to +0.1 at the bottom), a row's two lines further right the higher the row,
        as a header's date is. The curve fitted along x alone takes the tilts for a curl
        that bows the longest line past `MIN_BOW`; within one height there is none."""
        _, middles = _bars()
        tilted = [
            _chord(x0 - 60 * k, x1 - 60 * k, y, 0.0, 0.1 * (2 * k / (len(middles) - 1) - 1))
            for k, y in enumerate(middles)
            for x0, x1 in ((500, 580), (600, 960))
        ]
        bowed = page_bow(tilted)
        assert bowed is not None
        assert abs(bowed[0].b) * 360**2 / 8 / PRINT > MIN_BOW  # the curve alone is fooled
        assert bowed[1] < 0.01

    def test_a_curl_tilted_by_height_bows_as_much(self) -> None:
        """Curled 8 %, and each row tilted by its height as well: the bow is the curl's."""
        _, middles = _bars()
        curled = page_bow(_chords(middles, 0.08))
        tilted = [
            _chord(x0, x1, y, 0.08, 0.06 * (2 * k / (len(middles) - 1) - 1))
            for k, y in enumerate(middles)
            for x0, x1 in ((40, 330), (360, 640), (670, 960))
        ]
        both = page_bow(tilted)
        assert curled is not None
        assert both is not None
        assert both[1] == pytest.approx(curled[1], rel=0.02)

    def test_bend_back_puts_lines_on_the_curled_page(self) -> None:
        """A line found on the straightened page goes back where its row bows."""
        page, middles = _bars()
        bend = page_bend(_chords(middles, 0.08))
        assert bend is not None
        straight, shift = straighten(_curl(page, 0.08), bend)
        y = _ink_middles(straight, 500)[0]
        quad = [[40.0, y - 12], [960.0, y - 12], [960.0, y + 12], [40.0, y + 12]]
        (back,) = bend_back([Line("bar", polygon_to_box(quad), 1.0, quad)], shift, HEIGHT)
        assert back.quad is not None
        # The ends of the first row on the curled page: its middle less the lift there.
        for x, corner in ((40, back.quad[0]), (960, back.quad[1])):
            assert abs(corner[1] + 12 - (middles[0] - _lift(x, 0.08))) < 3
        # The box holds the bow: its top is the middle's top.
        assert abs(back.box[1] + 12 - (middles[0] - _lift(500, 0.08))) < 3
        assert back.box[3] > back.quad[3][1]


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[RapidOcrEngine, RapidOcrEngine]]:
    unbent, bowed = RapidOcrEngine(), RapidOcrEngine(unbend=False)
    yield unbent, bowed
    unbent.close()
    bowed.close()


@pytest.mark.slow
class TestCurledReceipt:
    """A real receipt curled 8 % of its width, read by the engine."""

    def test_straightened_reads_closer_to_the_scan(
        self, engines: tuple[RapidOcrEngine, RapidOcrEngine], sroie: Path
    ) -> None:
        """Read again straightened, the text is nearer the flat scan's than read bowed."""
        unbent, bowed = engines
        flat = read_text(bowed.recognize(receipt_bgr(sroie, "000")))
        curled = _curl(receipt_bgr(sroie, "000"), 0.08)
        straightened = read_text(unbent.recognize(curled))
        assert unbent.last_bend > 0.04 * curled.shape[1]
        read_bowed = read_text(bowed.recognize(curled))
        assert bowed.last_bend == 0.0
        assert edit_distance(straightened, flat) < 0.7 * edit_distance(read_bowed, flat)

    def test_a_flat_scan_reads_as_before(
        self, engines: tuple[RapidOcrEngine, RapidOcrEngine], sroie: Path
    ) -> None:
        """As scanned: read once, the same lines as without ``unbend``."""
        unbent, bowed = engines
        image = receipt_bgr(sroie, "000")
        assert unbent.recognize(image) == bowed.recognize(image)
        assert unbent.last_bend == 0.0

    def test_a_flat_receipts_header_reads_as_before(
        self, engines: tuple[RapidOcrEngine, RapidOcrEngine], sroie: Path
    ) -> None:
        """The top quarter of a flat receipt (centred name and address): read once."""
        unbent, bowed = engines
        image = receipt_bgr(sroie, "008")
        header = np.ascontiguousarray(image[: image.shape[0] // 4])
        assert unbent.recognize(header) == bowed.recognize(header)
        assert unbent.last_bend == 0.0

    def test_a_straightened_reading_that_lost_print_is_dropped(
        self, engines: tuple[RapidOcrEngine, RapidOcrEngine], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Read again straightened, one line of thirty: the first reading is kept."""
        unbent, _ = engines
        page, middles = _bars()
        first = _chords(middles, 0.08)
        readings = iter([first, first[:1]])
        monkeypatch.setattr(unbent, "orient", False)
        monkeypatch.setattr(unbent, "_read", lambda image: next(readings))
        assert unbent.recognize(_curl(page, 0.08)) == first
        assert unbent.last_bend == 0.0

    def test_lines_stay_on_the_page_and_ocr_page_notes_the_bend(
        self, engines: tuple[RapidOcrEngine, RapidOcrEngine], sroie: Path
    ) -> None:
        """Boxes are in the curled page's pixels; the page's notes say it was bent."""
        unbent, _ = engines
        curled = _curl(receipt_bgr(sroie, "000"), 0.08)
        height, width = curled.shape[:2]
        ref = PageRef(id="c", source="curled.jpg", page=1, kind="jpeg")
        page = ocr_page(unbent, Page(ref=ref, image=curled))
        assert page.notes["ocr"]["bend"] > 0
        for line in page.lines:
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= width
            assert 0 <= y0 < y1 <= height
