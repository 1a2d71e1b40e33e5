"""
A local OpenAI-compatible chat-completions server for tests and benchmarks.

Run it with ``python -m stages.testing.llm_server``, or from Python with
`stages.testing.llm_server.testing.run_server`.  Its replies are deterministic (see `_rules`), and
it can add latency, enforce its own rate limit, inject faults and keep a request log.
"""

from __future__ import annotations

from ._app import INVALID_OUTPUT as INVALID_OUTPUT
from ._app import INVENTED_OUTPUT as INVENTED_OUTPUT
from ._app import REWRITE_OUTPUT as REWRITE_OUTPUT
from ._app import create_app as create_app
from ._app import document_text as document_text
from ._options import FAULTS as FAULTS
from ._options import ServerOptions as ServerOptions
from ._rules import rule_correct as rule_correct
from ._rules import rule_fix as rule_fix
from ._rules import rule_structure as rule_structure

__all__ = [
    "FAULTS",
    "INVALID_OUTPUT",
    "INVENTED_OUTPUT",
    "REWRITE_OUTPUT",
    "ServerOptions",
    "rule_correct",
    "create_app",
    "document_text",
    "rule_fix",
    "rule_structure",
]
