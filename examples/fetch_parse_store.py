"""
URLs -> fetch -> parse -> store: asyncpipe with no documents in sight.

Run it as ``python examples/fetch_parse_store.py OUT.jsonl URL...``.
"""

from __future__ import annotations

import re
import sys

import anyio
import httpx

from asyncpipe import JsonlSink, Pipeline, RateLimit, Retry, RetryableError, RunSummary, Stage


async def main(urls: list[str], out: str) -> RunSummary:
    async with httpx.AsyncClient(timeout=10) as client:

        async def fetch(url: str) -> str:  # I/O: many at once, on the event loop
            response = await client.get(url)
            if response.status_code in (429, 503):
                wait = response.headers.get("Retry-After")
                raise RetryableError(
                    f"HTTP {response.status_code}", retry_after=float(wait) if wait else None
                )
            response.raise_for_status()  # any other error status fails just this URL
            return response.text

        def parse(html: str) -> dict[str, object]:  # CPU work: runs in a worker thread
            title = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
            words = re.sub(r"<[^>]*>", " ", html).split()
            return {"title": title and title[1].strip(), "words": len(words)}

        pipeline = Pipeline(
            [
                Stage(
                    "fetch", fetch, workers=16, limiter=RateLimit(50, 1.0), retry=Retry(attempts=3)
                ),
                Stage("parse", parse, kind="thread", workers=2),
            ]
        )
        sink = JsonlSink(out, overwrite=True)  # store: one JSON line per URL
        return await pipeline.run(urls, sink=sink, key=str, ordered=True)


if __name__ == "__main__":
    print(anyio.run(main, sys.argv[2:], sys.argv[1]).format_table())
