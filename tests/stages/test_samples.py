from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stages.inputs import discover, load_page

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
FONTS = Path("/usr/share/fonts/truetype/dejavu")
FIELDS = {"company", "date", "address", "total"}


def _truth() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads((SAMPLES / "truth.json").read_text())
    return data


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "scripts/make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class TestSampleTruth:
    """samples/truth.json matches the files beside it."""

    def test_files_and_truth_agree(self) -> None:
        """Every sample file has truth and every truth entry has a file."""
        files = {path.name for path in SAMPLES.iterdir() if path.name != "truth.json"}
        assert files == set(_truth())
        kinds = {Path(name).suffix for name in files}
        assert {".jpg", ".png", ".pdf", ".tif"} <= kinds

    def test_page_counts(self) -> None:
        """Each file discovers to as many clean pages as its truth lists."""
        truth = _truth()
        for name, pages in truth.items():
            refs = list(discover([SAMPLES / name]))
            assert [ref.page for ref in refs] == list(range(1, len(pages) + 1)), name
            assert all(ref.problem is None for ref in refs), refs
        multi = {name: len(pages) for name, pages in truth.items() if len(pages) > 1}
        assert sorted(Path(name).suffix for name in multi) == [".pdf", ".tif"]

    def test_folder_discovery_skips_truth_json(self) -> None:
        """Pointing discover at samples/ yields every page and reports truth.json as skipped."""
        skipped: list[str] = []
        refs = list(discover([SAMPLES], on_skip=lambda path, why: skipped.append(path)))
        assert len(refs) == sum(len(pages) for pages in _truth().values())
        assert skipped == [str(SAMPLES / "truth.json")]

    def test_fields_follow_sroie_conventions(self) -> None:
        """Fields are the four SROIE keys, printed on the page, with a 2-decimal total."""
        for name, pages in _truth().items():
            for page in pages:
                fields, lines = page["fields"], page["lines"]
                assert set(fields) == FIELDS, name
                assert re.fullmatch(r"\d+\.\d\d", fields["total"]), fields
                text = "\n".join(lines)
                assert fields["company"] in lines, name
                assert fields["total"] in lines, name
                assert fields["date"] in text, name
                assert all(part in text for part in fields["address"].split(", ")), name

    def test_pages_load(self) -> None:
        """Every sample page decodes to an image of a plausible scan size."""
        for ref in discover([SAMPLES]):
            image = load_page(ref, pdf_dpi=150).image
            assert image is not None
            assert 500 <= image.shape[1] <= 1400, ref
            assert 600 <= image.shape[0] <= 2500, ref

    def test_small(self) -> None:
        """The bundled samples stay under 3 MB."""
        assert sum(path.stat().st_size for path in SAMPLES.iterdir()) < 3_000_000


class TestGenerator:
    """scripts/make_samples.py reproduces the committed truth."""

    @pytest.mark.skipif(not FONTS.is_dir(), reason="DejaVu fonts not installed here")
    def test_regenerates_same_truth(self, tmp_path: Path) -> None:
        """Regenerating into a temporary folder gives the same truth and the same files."""
        truth = _generator().build(tmp_path, FONTS)
        assert truth == _truth()
        assert json.loads((tmp_path / "truth.json").read_text()) == _truth()
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
            path.name for path in SAMPLES.iterdir()
        )

    @pytest.mark.skipif(not FONTS.is_dir(), reason="DejaVu fonts not installed here")
    def test_deterministic(self, tmp_path: Path) -> None:
        """Two runs write byte-identical files (the generator is seeded)."""
        generator = _generator()
        generator.build(tmp_path / "one", FONTS)
        generator.build(tmp_path / "two", FONTS)
        for path in sorted((tmp_path / "one").iterdir()):
            assert path.read_bytes() == (tmp_path / "two" / path.name).read_bytes(), path.name

    @pytest.mark.slow
    def test_rapidocr_reads_samples(self) -> None:
        """RapidOCR reads at least 90% of the truth characters on every sample page."""
        assert _generator().check(SAMPLES, _truth()) >= 0.9
