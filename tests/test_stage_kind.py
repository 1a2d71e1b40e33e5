"""
`StageKind`, the type of a stage's ``kind``, is public: code that reads a kind from a
config file can type it under ``mypy --strict``.
"""

from __future__ import annotations

from typing import cast, get_args

import pytest

from asyncpipe import Stage, StageKind


def kind_from_config(text: str) -> StageKind:
    """A kind read from a config file, checked before it is cast."""
    if text not in get_args(StageKind):
        raise ValueError(f"kind must be one of {get_args(StageKind)}, not {text!r}")
    return cast(StageKind, text)


def work(value: int) -> int:
    return value


class TestStageKind:
    def test_a_kind_from_a_config_makes_a_stage(self) -> None:
        """A checked str from a config is a StageKind that Stage takes."""
        assert get_args(StageKind) == ("async", "thread")
        assert Stage("x", work, kind=kind_from_config("thread")).kind == "thread"
        with pytest.raises(ValueError, match="kind must be one of"):
            kind_from_config("process")
