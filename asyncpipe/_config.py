"""
Run options from text: ``--workers``, ``--rate-limit`` and stage lists, and TOML config.

Each value may come from the command line (``"ocr=2,llm=32"``) or from a TOML config
file (a table ``{ocr = 2, llm = 32}`` or the same string), so each parser takes both.
"""

from __future__ import annotations

import argparse
import difflib
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

    Each option is a key under the name it has on the command line, without its dashes
    (``unordered = true``, ``no-llm-feedback = true``; an underscore may stand for a
    dash), or under the name of the value it sets (``ordered = false``).  A flag's key
    takes ``true`` or ``false``: ``true`` does what the flag does.

    argparse checks an option's ``choices`` on the command line only, never on a default,
    so they are checked here: ``progress = "bogus"`` is an error, as ``--progress bogus``
    is.  It converts a default by the option's ``type`` only when it is a string, so a
    TOML number is converted and checked here as its text would be: ``max-pixels = 50``
    is 50 megapixels, as ``--max-pixels 50`` is, not 50 pixels, and ``llm-timeout = 0``
    is refused.

    Raises:
        ConfigError: the file cannot be read, names an option ``parser`` lacks (the error
            names the closest it has), sets one option twice (``unordered`` and
            ``ordered``), gives a flag other than ``true`` or ``false``, gives one a value
            its ``type`` refuses, or one with choices another value.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    flags, values = _config_keys(parser)
    out: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for name, value in data.items():
        key = name.replace("_", "-")
        action = flags.get(key) or values.get(key)
        if action is None:
            raise ConfigError(f"config {path}: unknown option {name!r}{_closest(key, parser)}")
        dest = action.dest
        if dest in keys:
            raise ConfigError(
                f"config {path}: {keys[dest]} and {name} set the same option; give one"
            )
        keys[dest] = name
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            value = _flag_value(path, name, action, value, by_value=key not in flags)
        elif isinstance(value, str) and (
            action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction)
        ):
            value = [value]  # ``inputs = "scans"``, ``pdf-password-env = "PW"``
        convert = action.type
        if callable(convert) and isinstance(value, int | float) and not isinstance(value, bool):
            try:
                value = convert(str(value))
            except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
                raise ConfigError(f"config {path}: {name} {value!r}: {exc}") from exc
        choices = action.choices
        if choices is not None and value not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            raise ConfigError(f"config {path}: {name} must be one of {listed}, not {value!r}")
        out[dest] = value
    return out


#: The ``run`` parser's entries no config file sets.
_NOT_KEYS = frozenset({"app", "config", "help"})


def _config_keys(
    parser: argparse.ArgumentParser,
) -> tuple[dict[str, argparse.Action], dict[str, argparse.Action]]:
    """
    The keys a config file may hold: the flags by their command-line names (``unordered``,
    ``no-orient``), and the other options by their command-line names and by the names
    of the values they set (``ordered``, ``inputs``), each with its action.
    """
    flags: dict[str, argparse.Action] = {}
    values: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.dest in _NOT_KEYS:
            continue
        names = [option[2:] for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            flags.update(dict.fromkeys(names, action))
            names = []
        values.update(dict.fromkeys([*names, action.dest.replace("_", "-")], action))
    # A value's name that is also a flag's (``ordered``) is the flag.
    return flags, {key: action for key, action in values.items() if key not in flags}


def _flag_value(
    path: Path, name: str, action: argparse.Action, value: object, *, by_value: bool
) -> object:
    """
    What the flag ``action`` sets when a config file gives it ``value``: ``true`` what
    the flag does, ``false`` the opposite (``unordered = false`` keeps the input order);
    ``by_value``, under the name of the value it sets, that value itself
    (``llm-feedback = false`` is ``no-llm-feedback = true``).

    Raises:
        ConfigError: ``value`` is not ``true`` or ``false``: ``no-crop = "no"`` would
            have been taken as true.
    """
    if not isinstance(value, bool):
        raise ConfigError(f"config {path}: {name} is a flag: give true or false, not {value!r}")
    if by_value:
        return value
    return action.const if value else not action.const


def _closest(key: str, parser: argparse.ArgumentParser) -> str:
    """
    ``"; did you mean 'unordered'?"`` naming the listed option closest to ``key``
    (`difflib.get_close_matches`), or nothing when none is close.
    """
    listed = [
        option[2:]
        for action in parser._actions
        if action.dest not in _NOT_KEYS and action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]
    listed.append("inputs")
    close = difflib.get_close_matches(key, listed, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
