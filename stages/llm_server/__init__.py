"""
A local OpenAI-compatible chat-completions server for tests and benchmarks.

Run it with ``python -m stages.llm_server``, or from Python with
`stages.llm_server.testing.run_server`.  Its replies are deterministic (see `_rules`), and
it can add latency, enforce its own rate limit, inject faults and keep a request log.
"""

from __future__ import annotations

from ._app import INVALID_OUTPUT as INVALID_OUTPUT
from ._app import create_app as create_app
from ._app import document_text as document_text
from ._options import FAULTS as FAULTS
from ._options import ServerOptions as ServerOptions
from ._rules import correct_text as correct_text
from ._rules import fix_text as fix_text
from ._rules import structure_text as structure_text

__all__ = [
    "FAULTS",
    "INVALID_OUTPUT",
    "ServerOptions",
    "correct_text",
    "create_app",
    "document_text",
    "fix_text",
    "structure_text",
]
