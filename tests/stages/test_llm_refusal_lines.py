"""
A server that refuses the calls (401: the key, 404: the URL or the model) is told in one
line, with what to check said once a run, not once a page.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stages.llm import LlmClient, LlmServerRefused, LlmStatusError, Message
from stages.testing.llm_server.testing import run_server

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "samples" / "receipt_hardware.png"
KEY = "sk-refusal-lines-4b8e2d6f0a"
MESSAGES: list[Message] = [{"role": "user", "content": "hello"}]
REPLY = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {}}


def run(out: Path, url: str, key: str) -> subprocess.CompletedProcess[str]:
    """Run ``asyncpipe run`` on one sample page against ``url``, the key in ``MY_KEY``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "asyncpipe",
            "run",
            str(SAMPLE),
            "--out",
            str(out),
            "--llm-url",
            url,
            "--llm-key-env",
            "MY_KEY",
            "--progress",
            "none",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=200,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "MY_KEY": key},
    )


def warnings(stderr: str) -> list[str]:
    """The log lines at WARNING or above."""
    return [line for line in stderr.splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) ", line)]


class TestRefusalOnTheCommandLine:
    """A CLI run against the rule-based server's 401 and 404 prints one line for it."""

    @pytest.mark.timeout(420)
    def test_a_refused_key_and_a_wrong_url_are_one_line_each(self, tmp_path: Path) -> None:
        """A 401 (a wrong key) and a 404 (a URL with no API) each print one WARNING
        line, holding the status and what to check; the 404 was two (the start-up
        check's 'no /models' warning, then the refusal)."""
        with run_server(workdir=tmp_path / "server", api_key=KEY) as server:
            refused = run(tmp_path / "refused.jsonl", server.url, KEY + "-wrong")
            missing = run(tmp_path / "missing.jsonl", f"{server.root_url}/no/api", KEY)
        assert refused.returncode == 4, refused.stderr[-3000:]
        [line] = warnings(refused.stderr)
        assert "HTTP 401" in line and "check the key: --llm-key-env" in line
        assert missing.returncode == 4, missing.stderr[-3000:]
        [line] = warnings(missing.stderr)
        assert "HTTP 404" in line and f"check --llm-url {server.root_url}/no/api " in line
        assert "it has no /models there, nor at the URLs it may have meant" in line
        for done in (refused, missing):
            assert KEY not in done.stdout + done.stderr


def serve(
    *answers: httpx.Response, models: tuple[str, ...] = ("a", "b")
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that lists ``models`` and answers the chat calls in turn."""
    sent: list[httpx.Request] = []
    left = list(answers)

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": model} for model in models]})
        sent.append(request)
        return left.pop(0)

    return httpx.MockTransport(server), sent


class TestAdviceOnce:
    """What to check after a refusal is said once a run, with what the server listed."""

    async def test_refusals_between_successes_advise_with_the_first_page(self) -> None:
        """A 401 between successes fails its page alone; the first page's error says
        what to check, the next says only its status (neither said it)."""
        refusal = httpx.Response(401, json={"error": {"message": "invalid API key"}})
        transport, sent = serve(httpx.Response(200, json=REPLY), refusal, refusal)
        async with LlmClient("http://llm.test/v1", "a", api_key=KEY, transport=transport) as c:
            await c.chat(MESSAGES, task="correct", item="p0")
            errors = []
            for page in ("p1", "p2"):
                with pytest.raises(LlmStatusError) as info:
                    await c.chat(MESSAGES, task="correct", item=page)
                assert not isinstance(info.value, LlmServerRefused)
                errors.append(str(info.value))
        assert len(sent) == 3
        assert errors[0].endswith(
            "HTTP 401 (invalid API key); not retryable (attempt 1): check the key: "
            "--llm-key-env and the variable it names, and --llm-key-header"
        )
        assert errors[1].endswith("HTTP 401 (invalid API key); not retryable (attempt 1)")

    async def test_a_404_names_the_models_the_server_lists(self) -> None:
        """A refused model's advice names the models the start-up check saw listed."""
        refusal = httpx.Response(404, json={"error": {"message": "model 'c' not found"}})
        transport, _ = serve(refusal)
        async with LlmClient("http://llm.test/v1", "c", transport=transport) as client:
            await client.check()
            with pytest.raises(LlmServerRefused) as info:
                await client.chat(MESSAGES, task="correct")
        assert "and --llm-model 'c' (the server lists a, b)): no new pages" in str(info.value)

    async def test_a_listed_key_is_redacted(self, caplog: pytest.LogCaptureFixture) -> None:
        """A server whose model list echoes the key leaves it out of the refusal and of
        the start-up check's warning."""
        refusal = httpx.Response(404, json={})
        transport, _ = serve(refusal, models=("a", KEY))
        async with LlmClient("http://llm.test/v1", "c", api_key=KEY, transport=transport) as c:
            await c.check()
            with pytest.raises(LlmServerRefused) as info:
                await c.chat(MESSAGES, task="correct")
        assert KEY not in caplog.text
        assert "it lists a, [REDACTED]" in caplog.text
        assert "(the server lists a, [REDACTED])" in str(info.value)
