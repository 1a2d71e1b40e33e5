"""
One structure request against a real llama.cpp server (SmolLM2-135M via xllamacpp), per
structured-output mode: how long it took, llama.cpp's own prompt and generation speeds,
``finish_reason`` and the reply.  It shows what ``json_schema`` (a grammar) and
``max_tokens`` do for a small model.

Usage (from the project root)::

    .venv/bin/python benchmarks/real_llm_probe.py [--receipt 003] [MODE ...]

MODE is ``json_schema`` (default), ``json_object`` or ``off``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import httpx
from _root import ROOT

from stages.llm import Prompts, Schema, StructuredOutputs, structure_max_tokens
from stages.llm._prompts import render
from stages.testing.llama_server import llama_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("ASYNCPIPE_SROIE") or ROOT.parent / "shared" / "data" / "sroie"
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--receipt", default="003", help="the SROIE receipt whose transcript")
    parser.add_argument("modes", nargs="*", default=["json_schema"])
    args = parser.parse_args(argv)
    schema, prompts = Schema.load(), Prompts.load()
    rows = (args.data / "box" / f"{args.receipt}.csv").read_text("utf-8").splitlines()
    text = "\n".join(row.split(",", 8)[-1] for row in rows)
    messages = [
        {"role": "system", "content": render(prompts.structure_system, schema=schema.text)},
        {"role": "user", "content": render(prompts.structure_user, text=text)},
    ]
    with llama_server(n_parallel=1, n_threads=2) as server:
        print(f"server started in {server.started_in:.1f} s; load {os.getloadavg()}")
        for mode in args.modes:
            body: dict[str, object] = {
                "model": "smollm2",
                "messages": messages,
                "max_tokens": structure_max_tokens(schema),
                "temperature": 0,
            }
            if (fmt := StructuredOutputs("auto", schema).response_format(mode)) is not None:
                body["response_format"] = fmt
            start = time.monotonic()
            data = httpx.post(f"{server.url}/chat/completions", json=body, timeout=3600).json()
            timings = data.get("timings", {})
            choice = data["choices"][0]
            print(
                f"{mode}: {time.monotonic() - start:.1f} s, prompt {timings.get('prompt_n')} "
                f"tokens at {timings.get('prompt_per_second', 0):.2f}/s, generated "
                f"{timings.get('predicted_n')} at {timings.get('predicted_per_second', 0):.2f}/s, "
                f"finish_reason {choice['finish_reason']}: {choice['message']['content'][:300]!r}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
