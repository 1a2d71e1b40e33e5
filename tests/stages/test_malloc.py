from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stages._malloc as malloc_module
from stages._malloc import ENV_SWITCH, tune_malloc

ROOT = Path(__file__).resolve().parents[2]


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018 (glibc >= 2.33)
    except (OSError, AttributeError):
        return False
    return True


glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _has_mallinfo2(),
    reason="needs glibc >= 2.33 (mallinfo2)",
)

# Run in a fresh interpreter: malloc settings are per process.  After an 8 MB block is
# freed, default glibc raises its dynamic mmap threshold to 8 MB, so a 2 MB block then
# comes from the heap; tuned, the threshold stays at 1 MB and the 2 MB block is a mapping
# of its own (``hblks`` counts those).
_PROBE = """
import ctypes, json, sys
sys.path.insert(0, {root!r})
{setup}
libc = ctypes.CDLL(None)
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(2 << 20)
mapped = libc.mallinfo2().hblks - before
libc.free(block)
print(json.dumps({{"applied": applied, "mapped": mapped}}))
"""

_DIRECT = "from stages._malloc import tune_malloc\napplied = tune_malloc()"
_PIPELINE = (
    "from stages.pipeline import DocumentSettings, build_pipeline\n"
    "build_pipeline(DocumentSettings(malloc_tuning={tuning}))\n"
    "import stages._malloc\napplied = stages._malloc._applied"
)


def _probe(setup: str, **env: str) -> dict[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in malloc_module._GLIBC_ENV}
    clean.pop(ENV_SWITCH, None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(root=str(ROOT), setup=setup)],
        capture_output=True,
        text=True,
        check=True,
        env={**clean, **env},
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@glibc_only
class TestTuneMalloc:
    """tune_malloc, measured in fresh interpreters."""

    def test_large_blocks_are_mapped_when_tuned(self) -> None:
        """Tuned, a 2 MB block is its own mapping even after an 8 MB one was freed."""
        assert _probe(_DIRECT) == {"applied": True, "mapped": 1}

    def test_switched_off_by_env(self) -> None:
        """ASYNCPIPE_MALLOC_TUNING=0 leaves glibc's default: the 2 MB block is on the heap."""
        assert _probe(_DIRECT, **{ENV_SWITCH: "0"}) == {"applied": False, "mapped": 0}

    def test_user_glibc_variables_win(self) -> None:
        """A user's own MALLOC_ARENA_MAX means we leave malloc alone."""
        assert _probe(_DIRECT, MALLOC_ARENA_MAX="4") == {"applied": False, "mapped": 0}

    def test_pipeline_applies_it(self) -> None:
        """build_pipeline with the default settings tunes malloc."""
        assert _probe(_PIPELINE.format(tuning=True)) == {"applied": True, "mapped": 1}

    def test_pipeline_setting_off(self) -> None:
        """malloc_tuning=False leaves malloc alone."""
        assert _probe(_PIPELINE.format(tuning=False)) == {"applied": None, "mapped": 0}


class TestNotGlibc:
    """Other C libraries."""

    def test_no_glibc_does_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without glibc's symbols the call reports False and changes nothing."""
        monkeypatch.delenv(ENV_SWITCH, raising=False)
        for name in malloc_module._GLIBC_ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(malloc_module, "_applied", None)
        monkeypatch.setattr(malloc_module, "_glibc", lambda: None)
        assert tune_malloc() is False
