"""
The options that shape what a page's stages produce, kept beside a run's journal when it
starts, and a resume given other values of them refused.

A resumed run keeps the pages the output holds and restores the checkpoints the journal
holds, both made under the options the run started with: pages read again under other
ones (``--pdf-dpi 100`` where it started at 200, ``--no-orient``) would sit beside them,
and the output would mix two configurations without a word.

Not kept, so a resume may change them: the options that change only speed, limits,
progress or logging (``--workers``, ``--llm-concurrency``, ``--max-cost``, the timeouts
and token caps); ``--llm-url`` itself, of which only whether one is given is kept (the
same model may move to another server); ``--llm-structured``, a way of asking for the
same schema's fields; and ``--whole-pages``, which a resume takes from how the run
started (`stages.app.receipts_mode`).  ``--max-pixels`` is kept: it also sets the scale
a large JPEG is decoded at.  ``--prompts`` and ``--schema`` are kept as their path and a
digest of what they hold, so a file edited in place between the start and the resume is
a change too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from asyncpipe import ConfigError

__all__ = ["ENGINE_READS", "read_by", "refuse_changed", "shaping_options"]

# The options every page depends on, by flag, with their ``argparse`` destination.
_PAGE = (
    ("--ocr-engine", "ocr_engine"),
    ("--no-orient", "no_orient"),
    ("--no-unbend", "no_unbend"),
    ("--no-crop", "no_crop"),
    ("--keep-red", "keep_red"),
    ("--read-blank", "read_blank"),
    ("--deskew", "deskew"),
    ("--denoise", "denoise"),
    ("--max-side", "max_side"),
    ("--max-pixels", "max_pixels"),
    ("--pdf-dpi", "pdf_dpi"),
    ("--no-pdf-text", "no_pdf_text"),
)

# The page options only some engines read, with the engines that read them: the app
# passes ``orient`` and ``unbend`` to rapidocr alone (`stages.app._settings`).
ENGINE_READS = {
    "--no-orient": frozenset({"rapidocr"}),
    "--no-unbend": frozenset({"rapidocr"}),
}

# The options only a run with an LLM reads: weighed only when both runs have one (a
# change of ``--llm-url`` says the rest).
_LLM = (
    ("--llm-model", "llm_model"),
    ("--llm-stages", "llm_stages"),
    ("--llm-min-similarity", "llm_min_similarity"),
    ("--prompts", "prompts"),
    ("--schema", "schema"),
)

_PATHS = frozenset({"--prompts", "--schema"})

#: The key that keeps a digest of what a path option's file or folder holds.
_CONTENT = " content"


def shaping_options(args: argparse.Namespace) -> dict[str, Any]:
    """
    The options of ``args`` that shape a page's output, by flag, as JSON values: a
    folder or file as its absolute path (a resume may start in another directory), the
    LLM's options only with ``--llm-url``.
    """
    kept: dict[str, Any] = {flag: _json(getattr(args, dest)) for flag, dest in _PAGE}
    kept["--llm-url"] = bool(args.llm_url)
    if args.llm_url:
        for flag, dest in _LLM:
            value = getattr(args, dest)
            if flag in _PATHS and value is not None:
                value = os.path.abspath(value)
                kept[flag + _CONTENT] = _digest(Path(value))
            kept[flag] = _json(value)
    return kept


def refuse_changed(mode_file: Path, args: argparse.Namespace, out: Path) -> None:
    """
    Refuse to resume a run with other values of the options that shaped its pages than
    those kept in ``mode_file`` when it started (`shaping_options`).

    An option the file does not hold (one kept by a later version, or a file written
    before they were kept at all) is not known, and not weighed; nor is a file that is
    missing or cannot be read (`stages.app.receipts_mode` says so); nor an option the
    engine the run started with does not read (``--no-orient`` under paddle).

    Raises:
        ConfigError: some option differs: the message names each, with the value the run
            started with and the one given now, and the two ways on.
    """
    then = _started(mode_file)
    if then is None:
        return
    now = shaping_options(args)
    engine = then.get("--ocr-engine")
    flags = [flag for flag, _ in _PAGE if read_by(flag, engine)]
    flags.append("--llm-url")
    if then.get("--llm-url") and now["--llm-url"]:
        flags += [flag for flag, _ in _LLM]
    changed = [flag for flag in flags if flag in then and then[flag] != now.get(flag)]
    edited = [
        flag
        for flag in flags
        if flag in _PATHS
        and flag not in changed
        and flag + _CONTENT in then
        and then[flag + _CONTENT] != now.get(flag + _CONTENT)
    ]
    if not changed and not edited:
        return
    said = "; ".join(
        [
            f"{flag} {_shown(flag, then[flag])} then, {_shown(flag, now.get(flag))} now"
            for flag in changed
        ]
        + [f"{flag} {now.get(flag)} holds other text than then" for flag in edited]
    )
    back = ", ".join(
        [_given(flag, then[flag]) for flag in changed]
        + [f"{flag} as it was then" for flag in edited]
    )
    raise ConfigError(
        f"this run was started with other options that shape its pages ({said}): the "
        "pages and checkpoints it holds were made with the first, and the output would mix "
        f"the two, so nothing was written ({out} is as it was). Resume it with the options "
        f"it started with ({back}), or start over with --overwrite"
    )


def read_by(flag: str, engine: object) -> bool:
    """Whether a run started with ``engine`` reads the page option ``flag`` (when the mode
    file does not say which engine, every option is taken to be read)."""
    readers = ENGINE_READS.get(flag)
    return readers is None or not isinstance(engine, str) or engine in readers


def _digest(path: Path) -> str | None:
    """
    A digest of what the file or folder ``path`` holds (a folder's files by their names
    in it), or ``None`` when it cannot be read (the option's own check says why).
    """
    digest = hashlib.sha256()
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path) if file != path else "").encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def _json(value: object) -> object:
    """``value`` as JSON holds it (a tuple as a list, a path as text)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _shown(flag: str, value: object) -> str:
    """An option's value as the message shows it."""
    if isinstance(value, bool):
        return "given" if value else "not given"
    if value is None:
        return "not given"
    if flag == "--max-pixels" and isinstance(value, int | float):
        return f"{value / 1_000_000:g}"  # given in megapixels, kept in pixels
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _given(flag: str, value: object) -> str:
    """How to give ``flag`` its value ``value`` on the command line."""
    if value is False or value is None:
        return f"without {flag}"
    if value is True:
        return f"{flag} URL" if flag == "--llm-url" else flag
    return f"{flag} {_shown(flag, value)}"


def _started(mode_file: Path) -> Mapping[str, Any] | None:
    """The options ``mode_file`` keeps, or ``None`` when it keeps none."""
    try:
        started = orjson.loads(mode_file.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    options = started.get("options") if isinstance(started, dict) else None
    return options if isinstance(options, dict) else None
