"""
A CPU stage on Ray actors, each with a resource of its own built once.

Run it as ``python examples/ray_words.py OUT.jsonl TEXT...``: it starts a local Ray
cluster and shuts it down at the end.
"""

from __future__ import annotations

import re
import sys

import anyio

from asyncpipe import JsonlSink, Pipeline, RayExecutor, RunSummary, Stage


class Tokenizer:  # stands for a model or an OCR engine: each actor builds one, once
    def __init__(self) -> None:
        self.word = re.compile(r"\w+")

    def close(self) -> None:  # called on the actor when the stage ends, if it is there
        pass


def count(tokenizer: Tokenizer, text: str) -> dict[str, int]:  # runs on a Ray actor
    words = tokenizer.word.findall(text)
    return {"words": len(words), "longest": max(map(len, words), default=0)}


async def main(texts: list[str], out: str, address: str | None = None) -> RunSummary:
    ray = RayExecutor(address=address)  # None: a local cluster, shut down at the end
    stage = Stage("count", count, kind="thread", workers=2, resource=Tokenizer, executor=ray)
    sink = JsonlSink(out, overwrite=True)
    return await Pipeline([stage]).run(texts, sink=sink)  # in input order


if __name__ == "__main__":
    print(anyio.run(main, sys.argv[2:], sys.argv[1]).format_table())
