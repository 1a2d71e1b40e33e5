"""
The JSON Schema the structure stage validates against, and how a reply becomes a record.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from asyncpipe import ConfigError

__all__ = ["OutputInvalid", "Schema", "parse_json_object"]

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL)


class OutputInvalid(ValueError):
    """
    A model reply is not a JSON object valid against the schema (the reason is the text).
    """


def parse_json_object(content: str) -> dict[str, Any]:
    """
    Read the JSON object in a model reply.

    Models often wrap JSON in a code fence or a sentence, so this tries the whole reply,
    then a fenced block, then the span from the first ``{`` to the last ``}``.  The
    result is data only: it is never evaluated.

    Args:
        content: the reply text.

    Returns:
        The object.

    Raises:
        OutputInvalid: no JSON object can be read.
    """
    text = content.strip()
    candidates = [text]
    if (fence := _FENCE.search(text)) is not None:
        candidates.append(fence.group(1))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
        raise OutputInvalid(f"the reply is JSON but not an object (it is a {type(value).__name__})")
    shown = text[:80] + ("..." if len(text) > 80 else "")
    raise OutputInvalid(f"the reply is not valid JSON: {shown!r}")


class Schema:
    """
    A JSON Schema for the structured fields, with the rules the structure stage adds.

    The schema must describe an object with ``properties``.  `Schema.clean` drops keys
    that are not properties, validates the rest, and checks that every value is a string
    or ``null``.

    Args:
        schema: the JSON Schema as a dict.
        name: where it came from, for messages.

    Raises:
        ConfigError: it is not a valid JSON Schema for an object with properties.
    """

    def __init__(self, schema: dict[str, Any], *, name: str = "schema") -> None:
        cls = validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"{name} is not a valid JSON Schema: {exc.message}") from exc
        properties = schema.get("properties")
        if schema.get("type") != "object" or not isinstance(properties, dict) or not properties:
            raise ConfigError(f"{name} must describe an object with properties")
        self.name = name
        self.schema = schema
        self.properties: tuple[str, ...] = tuple(properties)
        #: The properties whose values the schema lists (``enum``, ``const``): labels the
        #: model chooses, not text it reads from the page (`unfound_fields`).
        self.labels: frozenset[str] = frozenset(
            name
            for name, spec in properties.items()
            if isinstance(spec, dict) and ("enum" in spec or "const" in spec)
        )
        self.text = json.dumps(schema, indent=2, ensure_ascii=False)
        self._validator = cls(schema)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Schema:
        """
        Read a schema file (a blocking call: do it at start-up or in a thread).

        Args:
            path: a JSON file, or ``None`` for the shipped ``schemas/receipt.json``.

        Returns:
            The schema.

        Raises:
            ConfigError: the file is missing, not JSON, or not a usable schema.
        """
        try:
            if path is None:
                raw = (
                    resources.files(__package__).joinpath("schemas/receipt.json").read_text("utf-8")
                )
                name = "receipt.json"
            else:
                raw = Path(path).read_text(encoding="utf-8")
                name = str(path)
            data = json.loads(raw)
        except OSError as exc:
            raise ConfigError(f"cannot read the schema {str(path)!r}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigError(f"the schema {str(path)!r} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"the schema {str(path)!r} is not a JSON object")
        return cls(data, name=name)

    def clean(self, value: dict[str, Any]) -> tuple[dict[str, str | None], list[str]]:
        """
        Turn a parsed reply into a record.

        Args:
            value: the JSON object from the model.

        Returns:
            ``(record, dropped)``: the fields, and the names of unexpected keys dropped.

        Raises:
            OutputInvalid: the kept fields violate the schema, or a value is not a
                string or ``null``.
        """
        kept = {k: v for k, v in value.items() if k in self.properties}
        dropped = [k for k in value if k not in self.properties]
        problems = [
            f"{'/'.join(str(p) for p in error.absolute_path) or 'the object'}: {error.message}"
            for error in sorted(self._validator.iter_errors(kept), key=lambda e: e.message)
        ]
        problems += [
            f"{k}: must be a string or null, got {type(v).__name__}"
            for k, v in kept.items()
            if v is not None
            and not isinstance(v, str)
            and not any(p.startswith(f"{k}:") for p in problems)
        ]
        if problems:
            raise OutputInvalid("; ".join(problems[:6]))
        return {k: v for k, v in kept.items()}, dropped
