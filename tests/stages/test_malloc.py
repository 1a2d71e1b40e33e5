from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import pytest

import stages._malloc as malloc_module
from stages._malloc import ENV_SWITCH, THP_TUNABLE, start_environment, tune_malloc

ROOT = Path(__file__).resolve().parents[2]


glibc_only = pytest.mark.skipif(
    malloc_module._glibc() is None, reason="needs glibc (mallopt, malloc_trim)"
)

# Run in a fresh interpreter: malloc settings are per process.  Six threads alive at once
# each get an arena of their own from default glibc (up to 8 per core); tuned, there are
# at most 2.  ``malloc_stats`` prints one "Arena N:" block per arena to stderr.  Then 256 MB
# of 64 KB blocks (heap blocks, under glibc's mmap threshold) are written and freed, all
# but the last, which pins the heap's top so that free() cannot shrink it: only
# ``release_memory`` (``malloc_trim``) gives those pages back.
_PROBE = """
import ctypes, json, os, sys, threading
sys.path.insert(0, {root!r})
{setup}
from stages._malloc import release_memory
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
barrier = threading.Barrier(6)
def work():
    libc.free(libc.malloc(1000))
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
blocks = [libc.malloc(64 << 10) for _ in range(4096)]
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)
for block in blocks[:-1]:
    libc.free(block)
before = rss()
release_memory({above})
released = before - rss()
sys.stderr.flush()
libc.malloc_stats()
print(json.dumps({{"applied": applied, "released_mb": released}}))
"""

_DIRECT = "from stages._malloc import tune_malloc\napplied = tune_malloc()"
_PIPELINE = (
    "from stages.pipeline import DocumentSettings, build_pipeline\n"
    "build_pipeline(DocumentSettings(malloc_tuning={tuning}))\n"
    "import stages._malloc\napplied = stages._malloc._applied"
)


def _probe(setup: str, above: int = 0, /, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k not in malloc_module._GLIBC_ENV}
    clean.pop(ENV_SWITCH, None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(root=str(ROOT), setup=setup, above=above)],
        capture_output=True,
        text=True,
        check=True,
        env={**clean, **env},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["arenas"] = sum(line.startswith("Arena ") for line in done.stderr.splitlines())
    result["released"] = result.pop("released_mb") > 200
    return result


@glibc_only
class TestTuneMalloc:
    """tune_malloc and release_memory, measured in fresh interpreters."""

    def test_tuned(self) -> None:
        """Tuned: at most 2 arenas for 7 threads, and the freed heap pages go back."""
        result = _probe(_DIRECT)
        assert result["applied"] is True
        assert 1 <= result["arenas"] <= 2
        assert result["released"] is True

    def test_trims_only_above_the_resident_size(self) -> None:
        """Above 64 GiB nothing is trimmed; above 128 MiB (this process holds 256+) it is."""
        assert _probe(_DIRECT, 64 << 30)["released"] is False
        assert _probe(_DIRECT, 128 << 20)["released"] is True

    def test_resident_bytes(self) -> None:
        """The size read from /proc grows with memory written, by about as much."""
        # A fresh anonymous mapping, not a bytes object: with the tuning applied earlier in
        # this process, malloc may hand out heap pages that are already resident (CI saw a
        # growth of 0).  Writing one byte per page makes every page of the mapping resident.
        size = 64 << 20
        with mmap.mmap(-1, size) as block:
            before = malloc_module.resident_bytes()
            for offset in range(0, size, mmap.PAGESIZE):
                block[offset] = 1
            after = malloc_module.resident_bytes()
        assert before is not None and after is not None
        assert 48 << 20 < after - before < 80 << 20

    def test_our_huge_page_tunable_is_not_a_user_setting(self) -> None:
        """Started with `start_environment`'s GLIBC_TUNABLES, the tuning still applies."""
        result = _probe(_DIRECT, GLIBC_TUNABLES=THP_TUNABLE)
        assert (result["applied"], result["arenas"] <= 2, result["released"]) == (True, True, True)

    def test_switched_off_by_env(self) -> None:
        """ASYNCPIPE_MALLOC_TUNING=0 leaves glibc's default: an arena per thread, no trim."""
        result = _probe(_DIRECT, **{ENV_SWITCH: "0"})
        assert result["applied"] is False
        assert result["arenas"] > 2
        assert result["released"] is False

    def test_user_glibc_variables_win(self) -> None:
        """A user's own MALLOC_ARENA_MAX (here 4) is what glibc follows; we stay out."""
        result = _probe(_DIRECT, MALLOC_ARENA_MAX="4")
        assert result["applied"] is False
        assert result["arenas"] == 4
        assert result["released"] is False

    def test_pipeline_applies_it(self) -> None:
        """build_pipeline with the default settings tunes malloc."""
        result = _probe(_PIPELINE.format(tuning=True))
        assert (result["applied"], result["arenas"] <= 2) == (True, True)

    def test_pipeline_setting_off(self) -> None:
        """malloc_tuning=False leaves malloc alone."""
        result = _probe(_PIPELINE.format(tuning=False))
        assert (result["applied"], result["arenas"] > 2) == (None, True)


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


# 64 MB written in 64 KB blocks (the main heap) and 64 MB in 8 MB blocks from a second
# thread (each block mapped on its own, over glibc's mmap threshold), then the huge pages
# the process holds (``AnonHugePages`` of ``/proc/self/smaps_rollup``, kB).  glibc 2.36
# madvises those two kinds of memory, not a second arena's heap.
_HUGE_PROBE = """
import ctypes, threading
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
def work(size, count):
    for _ in range(count):
        ctypes.memset(libc.malloc(size), 1, size)
work(64 << 10, 1024)
thread = threading.Thread(target=work, args=(8 << 20, 8))
thread.start()
thread.join()
for line in open("/proc/self/smaps_rollup"):
    if line.startswith("AnonHugePages:"):
        print(int(line.split()[1]))
"""


def _huge_kb(**env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in malloc_module._GLIBC_ENV}
    done = subprocess.run(
        [sys.executable, "-c", _HUGE_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**clean, **env},
    )
    return int(done.stdout.split()[-1])


@glibc_only
class TestStartEnvironment:
    """The variables `asyncpipe run` restarts with: huge pages for malloc's heaps."""

    @pytest.mark.skipif(not start_environment(), reason="needs glibc 2.35+ and THP not 'never'")
    def test_the_tunable_puts_malloc_heaps_on_huge_pages(self) -> None:
        """With the tunable, most of the 128 MB written sits on huge pages; without, none."""
        assert _huge_kb(**start_environment()) >= 64 << 10
        assert _huge_kb() < 8 << 10

    def test_nothing_when_switched_off_or_user_tuned(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """ASYNCPIPE_MALLOC_TUNING=0, or the user's own GLIBC_TUNABLES, ask for nothing."""
        monkeypatch.setenv(ENV_SWITCH, "0")
        assert start_environment() == {}
        monkeypatch.delenv(ENV_SWITCH)
        monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
        assert start_environment() == {}


class TestTrimEvery:
    """DocumentSettings.trim_every: the OCR stage trims after every N-th page of a run."""

    def test_trims_after_every_nth_page(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Over 7 pages at 3, the 3rd and the 6th trim, each with the size threshold."""
        import stages.pipeline as pipeline_module

        trims: list[int] = []
        monkeypatch.setattr(pipeline_module, "ocr_page", lambda engine, page: page)
        monkeypatch.setattr(pipeline_module, "release_memory", trims.append)
        release: Any = pipeline_module._ocr_and_release  # pages stand in for Page objects
        ocr = partial(release, above=5, every=3, pages=count())
        done = [ocr(None, page) for page in range(7)]
        assert (done, trims) == (list(range(7)), [5, 5])

    def test_trims_even_when_the_page_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A page whose OCR raises still counts, and its turn still trims."""
        import stages.pipeline as pipeline_module

        def fail(engine: object, page: object) -> object:
            raise RuntimeError("bad page")

        trims: list[int] = []
        monkeypatch.setattr(pipeline_module, "ocr_page", fail)
        monkeypatch.setattr(pipeline_module, "release_memory", trims.append)
        release: Any = pipeline_module._ocr_and_release  # no engine or page needed
        with pytest.raises(RuntimeError, match="bad page"):
            release(None, None, above=0, every=1, pages=count())
        assert trims == [0]

    @pytest.mark.parametrize("every", [0, -1])
    def test_must_be_positive(self, every: int) -> None:
        """0 or less is a ConfigError when the pipeline is built."""
        from asyncpipe import ConfigError
        from stages.pipeline import DocumentSettings, build_pipeline

        with pytest.raises(ConfigError, match="trim_every must be 1 or more"):
            build_pipeline(DocumentSettings(trim_every=every), None)
