"""
A reply cut short by a full context, against a real llama.cpp server (xllamacpp serving
SmolLM2-135M) started with a context a little longer than the prompt: the record and the
run summary blame the context, naming its size and the server option that raises it, not
``max_tokens`` (which raising cannot help).  One short text page, the ``correct`` stage
alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stages.testing.llama_server import LlamaServer, llama_server
from stages.testing.pdf import text_pdf

ROOT = Path(__file__).resolve().parents[2]
# The server's context, which llama.cpp rounds up to a multiple of 256: more than the
# correct prompt of LINES (about 450 tokens), far fewer than it and its echo (the reply
# repeats the text), so the reply is cut after a few tokens.
CONTEXT = 512
LINES = (
    "KEDAI RUNCIT MAJU JAYA SDN BHD",
    "NO 12 JALAN PASAR BARU 43000 KAJANG",
    "TARIKH 2019-03-14 MASA 10:42",
    "GULA PASIR 1KG 2 X 2.85 5.70",
    "MINYAK MASAK 2KG 1 X 11.50 11.50",
    "TEPUNG GANDUM 1KG 3 X 2.10 6.30",
    "BERAS WANGI 5KG 1 X 18.90 18.90",
    "TELUR AYAM GRED A 30 BIJI 1 X 12.60 12.60",
    "SUSU PEKAT MANIS 2 X 3.40 6.80",
    "KOPI O KAMPUNG 500G 1 X 9.90 9.90",
    "SABUN BASUH 3KG 1 X 15.80 15.80",
    "JUMLAH 88.00 TUNAI 100.00 BAKI 12.00",
)
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def small_context_llm() -> Iterator[LlamaServer]:
    """A llama.cpp server of one slot whose context the prompt nearly fills."""
    with llama_server(n_parallel=1, n_ctx=CONTEXT, n_threads=2) as server:
        yield server


def run(page: Path, out: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``asyncpipe run`` of one page, correct alone: this checkout first, no API keys."""
    variables = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
    variables["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), variables.get("PYTHONPATH", "")) if p
    )
    args = [sys.executable, "-m", "asyncpipe", "run", str(page), "--out", str(out)]
    args += ["--llm-url", url, "--llm-model", "smollm2", "--llm-stages", "correct"]
    args += ["--llm-timeout", "300", "--llm-deadline", "600", "--progress", "none"]
    return subprocess.run(
        args, capture_output=True, text=True, env=variables, cwd=ROOT, timeout=500, check=False
    )


class TestContextFull:
    """A reply the context cut is not blamed on max_tokens."""

    def test_the_record_and_the_summary_name_the_context(
        self, small_context_llm: LlamaServer, tmp_path: Path
    ) -> None:
        """The correct reply stops where prompt and reply fill the 512 tokens: the record's
        reason and the summary say 'context full' with the size and -c/--ctx-size, and
        neither says max_tokens cut it (both did)."""
        drawn = [(text, 12.0, 14.0 + 11 * row, 8.0) for row, text in enumerate(LINES)]
        page = text_pdf(tmp_path / "page.pdf", drawn, 300.0, 30.0 + 11 * len(LINES))
        out = tmp_path / "out.jsonl"
        done = run(page, out, small_context_llm.url)
        assert done.returncode == 0, done.stderr[-3000:]
        [record] = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        note: dict[str, Any] = record["llm"]["correct"]
        assert note["tokens"] == CONTEXT, note  # the test's premise: the context filled
        assert note["rejected"] is True
        assert note["reason"].startswith("context full: "), note
        assert f"context of {CONTEXT} tokens per slot" in note["reason"]
        assert "-c/--ctx-size" in note["reason"]
        assert "max_tokens cannot help" in note["reason"]
        summary = done.stdout + done.stderr
        assert f"1 reply cut by a full context of {CONTEXT} tokens per slot" in summary
        assert "cut by max_tokens" not in summary
