"""
Structured outputs: which ``response_format`` the structure stage sends, and the fallback
chain ``json_schema`` → ``json_object`` → prompt only, decided once per run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import anyio

from asyncpipe import ConfigError

from ._errors import LlmStatusError

if TYPE_CHECKING:
    from ._schema import Schema

__all__ = ["STRUCTURED_MODES", "StructuredMode", "StructuredOutputs"]

logger = logging.getLogger("stages.llm")

StructuredMode = Literal["json_schema", "json_object", "off"]
STRUCTURED_MODES = ("auto", "json_schema", "json_object", "off")
"""The values of ``--llm-structured``; ``auto`` starts at ``json_schema`` and falls back."""

_CHAIN: tuple[StructuredMode, ...] = ("json_schema", "json_object", "off")
# Words a server's 400 uses when it does not support the response_format asked for.
_REFUSAL_WORDS = ("response_format", "json_schema", "json_object", "response format")


class StructuredOutputs:
    """
    The structured-output mode of one run, shared by every structure call.

    ``json_schema`` sends ``{"type": "json_schema", "json_schema": {"name", "strict": true,
    "schema"}}`` (OpenAI, vLLM, Ollama, LM Studio and llama.cpp accept it; llama.cpp turns
    the schema into a grammar).  ``json_object`` sends ``{"type": "json_object"}``; ``off``
    sends none and relies on the prompt.  In ``auto`` mode a 400 whose message names
    ``response_format``, ``json_schema`` or ``json_object`` moves the whole run one step
    down the chain, once: the request is sent again at the next step, and later calls
    start there.  A fixed mode never falls back.

    Args:
        mode: one of `STRUCTURED_MODES`.
        schema: the schema of the fields.

    Raises:
        ConfigError: an unknown mode.
    """

    def __init__(self, mode: str, schema: Schema) -> None:
        if mode not in STRUCTURED_MODES:
            raise ConfigError(
                f"unknown structured-output mode {mode!r}; choose from "
                f"{', '.join(STRUCTURED_MODES)}"
            )
        self.auto = mode == "auto"
        self.mode: StructuredMode = "json_schema" if mode == "auto" else mode  # type: ignore[assignment]
        self.refusals: list[str] = []
        # In auto mode the first call finds out what the server takes while the others
        # wait: sent together, each would be refused on its own (8 refused requests
        # with 16 workers).
        self.settled = not self.auto
        self._probing = False
        self._changed = anyio.Event()
        wire = {k: v for k, v in schema.schema.items() if k != "$schema"}
        name = str(schema.schema.get("title") or "fields")
        self._json_schema = {
            "type": "json_schema",
            "json_schema": {"name": _safe_name(name), "strict": True, "schema": wire},
        }

    async def take_turn(self) -> bool:
        """
        Wait while another call probes the server; return whether this call is to probe
        (then call `end_turn` when it is done, whatever happened).
        """
        while not self.settled:
            if not self._probing:
                self._probing = True
                return True
            await self._changed.wait()
        return False

    def end_turn(self, *, settled: bool) -> None:
        """The probe is done: ``settled`` unless it was cancelled (then the next call
        probes); a refusal never ends a probe, which steps down the chain and asks again."""
        self._probing = False
        self.settled = self.settled or settled
        self._changed.set()
        self._changed = anyio.Event()

    def response_format(self, mode: StructuredMode | None = None) -> dict[str, Any] | None:
        """
        The ``response_format`` of ``mode`` (default: the current mode), or ``None``.
        """
        mode = mode or self.mode
        if mode == "json_schema":
            return self._json_schema
        if mode == "json_object":
            return {"type": "json_object"}
        return None

    def refused(self, sent: StructuredMode, exc: Exception) -> bool:
        """
        Whether ``exc``, raised by a request sent in mode ``sent``, is a refusal of that
        mode that ``auto`` can step past.  If so, the run's mode moves down the chain
        (unless a concurrent call already moved it) and the caller sends again.
        """
        if not self.auto or sent == "off" or not isinstance(exc, LlmStatusError):
            return False
        text = str(exc).lower()
        if exc.status != 400 or not any(word in text for word in _REFUSAL_WORDS):
            return False
        if self.mode == sent:
            step = _CHAIN[_CHAIN.index(sent) + 1]
            self.refusals.append(f"{sent} refused ({exc.status})")
            logger.warning(
                "the LLM server refused response_format %s; using %s for the rest of the run",
                sent,
                step,
            )
            self.mode = step
        return True

    def describe(self) -> str:
        """
        Returns:
            One line for the run summary: the mode used and why.
        """
        names = {
            "json_schema": "json_schema (strict)",
            "json_object": "json_object",
            "off": "off (prompt only)",
        }
        if self.auto and not self.settled and not self.refusals:
            return "structured outputs: not tried (no structure reply came)"
        line = f"structured outputs: {names[self.mode]}"
        if self.refusals:
            line += f", after the server refused: {'; '.join(self.refusals)}"
        elif not self.auto:
            line += " (as asked)"
        return line


def _safe_name(name: str) -> str:
    """OpenAI wants ``^[a-zA-Z0-9_-]{1,64}$`` for the schema name."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    return cleaned or "fields"
