"""
Test helpers that ship with the document app, as ``trio.testing`` does for trio.

- `stages.testing.llm_server`: a rule-based OpenAI-compatible chat server for fault
  injection (latency, 429/500/hangs, malformed bodies, invalid outputs, refused
  ``response_format``) in tests and benchmarks.  It is not a model: quality is measured
  against a real llama.cpp server (see ``tests/stages/test_real_llm.py``).
"""

from __future__ import annotations

__all__: list[str] = []
