"""
The field guard and the slot order against a real llama.cpp server (xllamacpp serving
SmolLM2-135M), through ``python -m asyncpipe run``, with a proxy in front of the server
that keeps what the model answered and the order the calls reached it in.

The runs are small, as in ``test_real_llm.py``: two bundled sample scans for the guard,
three one-page PDFs of the samples' text (no OCR to wait for) and one-token replies for
the slot order.  The checks are about what the guard and the slots do with the model's
answers, never about how good those answers are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clirun import PROJECT, llm_args, records, run_llm
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stages._page import Line
from stages.llm._grounding import FIELD_KINDS, field_problem, lines_spanned
from stages.offline import comparable_text, extract_fields
from stages.testing.llama_server import LlamaServer, llama_server
from stages.testing.pdf import text_pdf
from stages.testing.proxy import CountingProxy

SAMPLES = PROJECT / "samples"
# Two scans whose structure replies fit the schema's max_tokens on this model; the other
# samples' replies may be cut, and a cut reply is an error record, not the guard's work.
GUARDED = ("receipt_farmasi.jpg", "receipt_restoran.jpg")
ORDERED = ("receipt_kedai_runcit.jpg", "receipt_farmasi.jpg", "receipt_restoran.jpg")
# The lines of each sample drawn on its PDF page: its name, address and date, a short
# prompt for a call whose order, not its answer, is the point.
PDF_LINES = 8
pytestmark = pytest.mark.timeout(900)


class ReplyProxy(CountingProxy):
    """
    A `CountingProxy` that also keeps each chat reply's body (``replies``: item, task and
    body, in the order the answers came back) and forwards ``/props``, where a llama.cpp
    server tells its slots, so the client caps its requests as it would without a proxy.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.replies: list[tuple[str, str | None, bytes]] = []
        self._root = self.upstream.removesuffix("/v1")
        app: Any = self._server.config.app
        app.router.routes.append(Route("/props", self._props, methods=["GET"]))

    async def _forward(self, request: Request) -> Response:
        response = await super()._forward(request)
        if request.path_params["path"] == "chat/completions" and response.status_code == 200:
            item = request.headers.get("x-asyncpipe-item", "")
            task = request.headers.get("x-asyncpipe-task")
            self.replies.append((item, task, bytes(response.body)))
        return response

    async def _props(self, request: Request) -> Response:
        import httpx

        async with httpx.AsyncClient(timeout=30) as client:
            upstream = await client.get(f"{self._root}/props")
        return Response(upstream.content, upstream.status_code, media_type="application/json")


@pytest.fixture(scope="module")
def one_slot_llm() -> Iterator[LlamaServer]:
    """A second llama.cpp server serving SmolLM2 with one slot: one request at a time."""
    with llama_server(n_parallel=1, n_ctx=2048, n_threads=2) as server:
        yield server


def answers(proxy: ReplyProxy) -> dict[str, dict[str, Any]]:
    """Per item, the fields of the model's last structure reply that parsed as an object."""
    found: dict[str, dict[str, Any]] = {}
    for item, task, body in proxy.replies:
        if task != "structure":
            continue
        content = orjson.loads(body)["choices"][0]["message"]["content"]
        try:
            fields = orjson.loads(content)
        except orjson.JSONDecodeError:
            continue
        if isinstance(fields, dict):
            found[item] = fields
    return found


def summary_replaced(stderr: str) -> Counter[str]:
    """The summary's count of replaced fields, by ``field (reason)``."""
    [line] = re.findall(r"fields replaced by the offline rules' by the field guard: (.*)", stderr)
    counts: Counter[str] = Counter()
    if line != "none":
        for part in line.split(", "):
            what, _, count = part.rpartition(" ")
            counts[what] += int(count)
    return counts


def words(text: str) -> list[str]:
    """The words of a text as the guard compares them."""
    return re.findall(r"[A-Z0-9]+", comparable_text(text))


def copy_samples(folder: Path, names: tuple[str, ...]) -> Path:
    """Copy some bundled sample scans into ``folder`` (the CLI reads a folder)."""
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    return folder


def sample_pdfs(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """One born-digital PDF page per sample, drawing its printed lines: read without OCR,
    so every page is ready for its first LLM call at once."""
    truth = orjson.loads((SAMPLES / "truth.json").read_bytes())
    folder.mkdir(parents=True)
    paths = []
    for place, name in enumerate(names):
        lines = truth[name][0]["lines"][:PDF_LINES]
        drawn = [(text, 12.0, 14.0 + 11 * row, 8.0) for row, text in enumerate(lines)]
        target = folder / f"page{place}.pdf"
        paths.append(text_pdf(target, drawn, 300.0, 30.0 + 11 * len(lines)))
    return paths


class TestFieldGuard:
    """structure's fields against the page, with the model's real answers."""

    def test_kept_fields_are_read_from_the_page_and_replaced_ones_recorded(
        self, real_llm: LlamaServer, tmp_path: Path
    ) -> None:
        """A field the model answered is kept only if the page holds it; each other one is
        the offline rules', named in ``llm.structure.replaced`` and counted in the summary."""
        inputs = copy_samples(tmp_path / "in", GUARDED)
        out = tmp_path / "out.jsonl"
        proxy = ReplyProxy(real_llm.url)
        with proxy:
            structure = ("--llm-stages", "structure", "--llm-structured", "json_schema")
            result = run_llm(*llm_args(inputs, out, proxy.url, *structure, workers="ocr=1,llm=2"))
            said = answers(proxy)
        assert result.returncode in (0, 1), result.stderr[-2000:]
        found = [r for r in records(out) if r["status"] == "ok"]
        assert found, [r.get("error") for r in records(out)]
        total: Counter[str] = Counter()
        for record in found:
            answer = said[record["id"]]
            text = record["corrected"]
            replaced = record["llm"]["structure"].get("replaced", {})
            lines = [Line.from_json(line) for line in record["lines"]]
            offline = extract_fields(text, lines, fields=tuple(FIELD_KINDS))
            for name, kind in FIELD_KINDS.items():
                value = answer.get(name) or ""
                kept = record["fields"][name]
                if name not in replaced:
                    assert kept == answer.get(name), (name, kept, answer)
                    if value.strip():
                        assert field_problem(kind, value, text) is None, (name, value)
                    if value.strip() and kind == "text":
                        assert lines_spanned(value, text), (name, value)
                    continue
                reason = replaced[name]
                total[f"{name} ({reason})"] += 1
                assert kept == offline[name], (name, kept, offline)
                if reason == "empty":
                    assert not value.strip(), (name, value)
                elif reason.startswith("the same as "):
                    twin = answer.get(reason.removeprefix("the same as ")) or ""
                    assert comparable_text(twin) == comparable_text(value), (name, answer)
                elif reason == "not whole lines of the text":
                    assert lines_spanned(value, text) is None, (name, value)
                elif reason == "fewer lines than the address":
                    spanned = lines_spanned(value, text) or 0
                    assert spanned < (lines_spanned(offline["address"] or "", text) or 0)
                elif reason == "within the address":
                    assert set(words(value)) <= set(words(offline["address"] or "")), value
                else:
                    assert field_problem(kind, value, text) == reason, (name, value)
        assert total, f"the model's answers gave the guard nothing to replace: {said}"
        assert summary_replaced(result.stderr) == total, result.stderr[-2000:]


class TestSlotOrder:
    """A one-slot server's slot goes to the later stage's call, then the earlier page's."""

    def test_a_later_stage_s_call_goes_before_an_earlier_stage_s_for_a_later_page(
        self, one_slot_llm: LlamaServer, tmp_path: Path
    ) -> None:
        """correct and structure on three pages ready at once, one request at a time: once
        the first page's structure call waits, it goes before the third page's correct
        call, which has waited longer (first come, every correct call went first)."""
        pages = sample_pdfs(tmp_path / "in", ORDERED)
        out = tmp_path / "out.jsonl"
        proxy = ReplyProxy(one_slot_llm.url)
        with proxy:
            stages = ("--llm-stages", "correct,structure")
            tiny = ("--llm-text-max-tokens", "1", "--llm-structure-max-tokens", "1")
            # A fixed structured-output mode: in auto mode the first structure call asks
            # alone, and the others wait for its answer before they wait for a slot.
            fixed = ("--llm-structured", "json_schema")
            args = llm_args(
                tmp_path / "in", out, proxy.url, *stages, *tiny, *fixed, workers="llm=4"
            )
            result = run_llm(*args)
            calls = proxy.calls()
        assert result.returncode in (0, 1), result.stderr[-2000:]
        assert "the llama.cpp server has 1 slot: at most 1 LLM request " in result.stderr
        names = [path.name for path in pages]
        page = {r["id"]: names.index(Path(r["source"]).name) for r in records(out)}
        order = [(c["task"], page[c["item"]]) for c in calls]
        # The client ranks pages in the order their first calls reached it.
        first = [n for task, n in order if task == "correct"]
        assert sorted(first) == [0, 1, 2], order
        a, b, c = first
        assert order == [
            ("correct", a),
            ("correct", b),  # the first page's structure call is not waiting yet
            ("structure", a),
            ("structure", b),
            ("correct", c),
            ("structure", c),
        ], order
