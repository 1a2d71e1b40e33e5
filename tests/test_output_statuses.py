"""
`read_statuses`: which keys a run's output holds written ok and written with an error,
the one reader of `asyncpipe journal show|compact` and of `JsonlSink.written_ok`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncpipe._journal_state import NotAnOutput, read_statuses


def _output(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text(text)
    return path


class TestReadStatuses:
    def test_ok_and_error_keys(self, tmp_path: Path) -> None:
        """A status other than ok, or none, counts as an error; a key held both ways is in both."""
        path = _output(
            tmp_path,
            '{"id":"a","status":"ok"}\n{"id":"b","status":"error"}\n'
            '{"id":3}\n{"id":"c","status":"ok"}\n{"id":"c","status":"error"}\n',
        )
        ok, errors = read_statuses(path)
        assert sorted(key for key in ["a", "b", "3", "c"] if key in ok) == ["a", "c"]
        assert errors == {"b", "3", "c"}

    def test_a_garbled_line_after_the_first_is_skipped(self, tmp_path: Path) -> None:
        """A line that is no record, not the first, counts as not written; the rest are read."""
        path = _output(tmp_path, '{"id":"a","status":"ok"}\n{"id":\n{"id":"b","status":"ok"}\n')
        ok, errors = read_statuses(path)
        assert "a" in ok and "b" in ok and not errors

    def test_strict_refuses_any_garbled_line(self, tmp_path: Path) -> None:
        """With ``strict`` the garbled line makes the file no output, naming its number."""
        path = _output(tmp_path, '{"id":"a","status":"ok"}\n[1]\n')
        with pytest.raises(NotAnOutput) as caught:
            read_statuses(path, strict=True)
        assert caught.value.number == 2

    def test_a_first_line_without_the_key_field_is_no_output(self, tmp_path: Path) -> None:
        """A file whose first line has no key field (here a journal's) is no run's output."""
        path = _output(tmp_path, '{"ev":"start","at":1.0}\n{"id":"a","status":"ok"}\n')
        with pytest.raises(NotAnOutput):
            read_statuses(path)

    def test_the_key_field_is_the_callers(self, tmp_path: Path) -> None:
        """The key is read from ``key_field``, as text."""
        path = _output(tmp_path, '{"page":7,"status":"ok"}\n')
        ok, _ = read_statuses(path, "page")
        assert "7" in ok
