"""
Run options from text: ``--workers``, ``--rate-limit`` and stage lists, and TOML config.

Each value may come from the command line (``"ocr=2,llm=32"``) or from a TOML config
file (a table ``{ocr = 2, llm = 32}`` or the same string), so each parser takes both.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._exceptions import ConfigError
from ._ratelimit import RateLimit, parse_rate

# Internal to the command line: nothing here is public API.
__all__: list[str] = []


def _pairs(text: str | Mapping[str, Any], option: str) -> list[tuple[str, str]]:
    if isinstance(text, Mapping):
        return [(str(name), str(value)) for name, value in text.items()]
    pairs = []
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"{option} takes NAME=VALUE pairs separated by commas, not {part!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def parse_workers(text: str | Mapping[str, Any] | None) -> dict[str, int]:
    """
    Parse ``"ocr=2,llm=32"`` (or a TOML table) into ``{"ocr": 2, "llm": 32}``.

    Raises:
        ConfigError: the text is malformed or a count is not a whole number >= 1.
    """
    out: dict[str, int] = {}
    for name, value in _pairs(text, "--workers") if text else []:
        try:
            count = int(value)
        except ValueError:
            raise ConfigError(
                f"workers for {name!r} must be a whole number, not {value!r}"
            ) from None
        if count < 1:
            raise ConfigError(f"workers for {name!r} must be at least 1")
        out[name] = count
    return out


def parse_limits(
    text: str | Mapping[str, Any] | None,
) -> tuple[dict[str, RateLimit], RateLimit | None]:
    """
    Parse ``"llm=150/min,ocr=5/s"`` into named limits, or a bare ``"150/min"`` into the
    rate of every declared limit.

    Returns:
        The named limits, and the bare rate (or ``None``).

    Raises:
        ConfigError: the text is malformed.
    """
    if not text:
        return {}, None
    if isinstance(text, str) and "=" not in text:
        return {}, parse_rate(text)
    return {name: parse_rate(rate) for name, rate in _pairs(text, "--rate-limit")}, None


def parse_names(text: str | list[str] | None) -> frozenset[str] | None:
    """
    Parse ``"ocr,load"`` (or a TOML list) into a set of names; nothing gives ``None``.
    """
    if isinstance(text, str):
        text = [name.strip() for name in text.split(",")]
    names = frozenset(name for name in text or () if name)
    return names or None


def config_defaults(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """
    The options of the TOML file ``path``, as defaults for ``parser``.

    argparse checks an option's ``choices`` on the command line only, never on a default,
    so they are checked here: ``progress = "bogus"`` is an error, as ``--progress bogus``
    is.  It converts a default by the option's ``type`` only when it is a string, so a
    TOML number is converted and checked here as its text would be: ``max-pixels = 50``
    is 50 megapixels, as ``--max-pixels 50`` is, not 50 pixels, and ``llm-timeout = 0``
    is refused.

    Raises:
        ConfigError: the file cannot be read, names an option ``parser`` lacks, gives one
            a value its ``type`` refuses, or one with choices another value.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    actions = {action.dest: action for action in parser._actions}
    out: dict[str, Any] = {}
    for name, value in data.items():
        dest = name.replace("-", "_")
        if dest not in actions or dest in ("config", "help", "app"):
            raise ConfigError(f"config {path}: unknown option {name!r}")
        if dest == "inputs" and isinstance(value, str):
            value = [value]
        convert = actions[dest].type
        if callable(convert) and isinstance(value, int | float) and not isinstance(value, bool):
            try:
                value = convert(str(value))
            except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                raise ConfigError(f"config {path}: {name} {value!r}: {exc}") from exc
        choices = actions[dest].choices
        if choices is not None and value not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            raise ConfigError(f"config {path}: {name} must be one of {listed}, not {value!r}")
        out[dest] = value
    return out
