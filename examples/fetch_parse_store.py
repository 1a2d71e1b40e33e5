"""
URLs -> fetch -> parse -> store: asyncpipe with no documents in sight.

Run it as ``python examples/fetch_parse_store.py OUT.jsonl URL...``.
"""

from __future__ import annotations

import re
import sys

import anyio
import httpx

from asyncpipe import (
    JsonlSink,
    Pipeline,
    RateLimit,
    Retry,
    RetryableError,
    RunSummary,
    Stage,
    retry_after,
)


async def main(urls: list[str], out: str) -> RunSummary:
    async with httpx.AsyncClient(timeout=10) as client:

        async def fetch(url: str) -> str:  # I/O: many at once, on the event loop
            try:
                response = await client.get(url)
            except httpx.TransportError as exc:  # a dropped connection, a timeout: again
                raise RetryableError(str(exc) or type(exc).__name__) from exc
            if response.status_code in (429, 503):
                wait = retry_after(response.headers)  # seconds or an HTTP-date
                if response.status_code == 429:  # over the server's limit: every fetch waits
                    limit.pause(wait if wait is not None else 1.0)
                raise RetryableError(f"HTTP {response.status_code}", retry_after=wait)
            response.raise_for_status()  # any other error status fails just this URL
            return response.text

        def parse(html: str) -> dict[str, object]:  # CPU work: runs in a worker thread
            title = re.search(r"<title>(.*?)</title>", html, re.S | re.I)
            words = re.sub(r"<[^>]*>", " ", html).split()
            return {"title": title and title[1].strip(), "words": len(words)}

        limit, retry = RateLimit(50, 1.0), Retry(attempts=3)
        fetching = Stage("fetch", fetch, workers=16, limiter=limit, retry=retry)
        pipeline = Pipeline([fetching, Stage("parse", parse, kind="thread", workers=2)])
        sink = JsonlSink(out, overwrite=True)  # store: one JSON line per URL
        return await pipeline.run(urls, sink=sink, key=str)  # in input order


if __name__ == "__main__":
    print(anyio.run(main, sys.argv[2:], sys.argv[1]).format_table())
