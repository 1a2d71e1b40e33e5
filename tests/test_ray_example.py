"""
The README's `RayExecutor` example (`examples/ray_words.py`), run as a user runs it.

The script starts a local Ray cluster of its own, so it runs as a subprocess, apart from
the session cluster of `tests/test_ray.py`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from netns import require_loopback_namespace

require_loopback_namespace()

pytest.importorskip("ray", reason="the Ray tests need ray: pip install 'asyncpipe[ray]'")

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ray_words.py"


class TestRayExample:
    """The README's RayExecutor example is the example file, and it works as shown."""

    def test_readme_shows_the_example(self) -> None:
        """The README's Ray section shows the script's code as it is, after its docstring."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Past one machine: the Ray executor", 1)[1]
        shown = re.search(r"```python\n(.*?)```", section, re.S)
        assert shown is not None
        code = EXAMPLE.read_text(encoding="utf-8")
        assert shown[1] == code.split("from __future__ import annotations\n\n", 1)[1]

    @pytest.mark.timeout(240)
    def test_runs_on_a_local_cluster(self, tmp_path: Path) -> None:
        """The script counts each text's words on two actors and writes them in order."""
        texts = ["one two three", "", "a longer sentence, with punctuation!", "x"]
        out = tmp_path / "out.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), str(out), *texts],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["status"] for line in lines] == ["ok"] * 4
        assert [line["value"] for line in lines] == [
            {"words": 3, "longest": 5},
            {"words": 0, "longest": 0},
            {"words": 5, "longest": 11},
            {"words": 1, "longest": 1},
        ]
        assert "count" in done.stdout  # the summary table names the stage
