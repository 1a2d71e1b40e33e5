"""
The prompts of the LLM stages: text files a user can override one by one.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from asyncpipe import ConfigError

__all__ = ["PROMPT_NAMES", "Prompts", "render"]

PROMPT_NAMES = (
    "correct_system",
    "correct_user",
    "fix_system",
    "fix_user",
    "structure_system",
    "structure_user",
    "structure_repair",
)
"""The prompt files, each ``<name>.txt``."""

# The placeholders each prompt must hold; the others are optional.
_REQUIRED = {
    "correct_user": ("text",),
    "fix_user": ("text",),
    "structure_user": ("text",),
    "structure_repair": ("error",),
}
_PLACEHOLDER = re.compile(r"\{(text|schema|error)\}")


def render(template: str, **values: str) -> str:
    """
    Fill ``{text}``, ``{schema}`` and ``{error}`` in one pass.

    Unlike ``str.format``, other braces (JSON examples in a prompt) are left alone, and a
    placeholder that appears inside a *value* (say, a document that contains the word
    ``{schema}``) is not expanded.

    Args:
        template: the prompt text.
        **values: placeholder name → value.

    Returns:
        The filled prompt.
    """
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True, slots=True)
class Prompts:
    """
    The prompt texts; see `PROMPT_NAMES`.

    Build it with `Prompts.load`, which reads files (a blocking call: do it at start-up or
    through ``anyio.to_thread.run_sync``).
    """

    correct_system: str
    correct_user: str
    fix_system: str
    fix_user: str
    structure_system: str
    structure_user: str
    structure_repair: str

    @classmethod
    def load(cls, directory: str | Path | None = None) -> Prompts:
        """
        Read the shipped prompts, overridden by any ``<name>.txt`` in ``directory``.

        Args:
            directory: a folder of override files, or ``None`` for the shipped prompts.

        Returns:
            The prompts.

        Raises:
            ConfigError: the folder is missing, holds a ``.txt`` file with an unknown
                name, or a prompt lacks a required placeholder.
        """
        texts: dict[str, str] = {}
        shipped = resources.files(__package__).joinpath("prompts")
        for name in PROMPT_NAMES:
            texts[name] = shipped.joinpath(f"{name}.txt").read_text(encoding="utf-8")
        if directory is not None:
            folder = Path(directory)
            if not folder.is_dir():
                raise ConfigError(f"the prompts folder {str(folder)!r} does not exist")
            for path in sorted(folder.glob("*.txt")):
                if path.stem not in PROMPT_NAMES:
                    raise ConfigError(
                        f"unknown prompt file {path.name!r} in {str(folder)!r}; "
                        f"the names are {', '.join(n + '.txt' for n in PROMPT_NAMES)}"
                    )
                texts[path.stem] = path.read_text(encoding="utf-8")
        for name, needed in _REQUIRED.items():
            for placeholder in needed:
                if "{" + placeholder + "}" not in texts[name]:
                    raise ConfigError(f"the prompt {name}.txt must contain {{{placeholder}}}")
        return cls(**texts)

    def names(self) -> tuple[str, ...]:
        """
        Returns:
            The prompt names, as in `PROMPT_NAMES`.
        """
        return tuple(f.name for f in dataclasses.fields(self))
