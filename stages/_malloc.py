"""
glibc malloc tuning for the document pipeline: freed pages go back to the system.

The OCR engines allocate large, short-lived blocks on every page (onnxruntime's tensors,
about 500 MB for a 600-dpi A4 scan), and the loaders allocate decoded pixels.  glibc's
default malloc keeps up to 8 heaps (arenas) per core and serves blocks of up to 32 MB
from them once a freed mapping has raised its dynamic threshold; the freed space in
those heaps is fragmented and seldom returned, so a long run's resident memory creeps up
with the pages it has seen (``benchmarks/soak.py --config untuned``: the memory left
after a run is 1.3 GB, and the peak grows 1.30x from 8 to 32 pages).

`tune_malloc` sets, once per process, ``M_ARENA_MAX`` to 2 (fewer heaps to fragment), and
`release_memory`, which the pipeline's OCR stage calls after each page, runs
``malloc_trim(0)``: the free pages inside every heap go back to the system.  Mapping every
block of 1 MB or more on its own (``M_MMAP_THRESHOLD``) bounded memory as well, but the
page faults of those fresh mappings cost about 45 % more CPU per page.  The trim costs
page faults too: the next page touches the returned pages again, 4 KiB at a time, about
5 % more CPU per receipt, 0.91 of a hand-written pool (``benchmarks/ocr_bound.py``).
With transparent huge pages for malloc (glibc's ``glibc.malloc.hugetlb=1`` tunable, 2 MiB
a fault; glibc 2.36 applies it to the main heap and to blocks mapped on their own, the
large tensors) it fell to about 3 % CPU and 0.99 of the pool.  A tunable must be set
before the process starts, so `start_environment` gives it and ``asyncpipe run``
restarts itself once with it (`asyncpipe._restart`); a program that builds the pipeline
itself can export it.
``trim_above`` trims only above a resident size (`resident_bytes`) instead: cheaper on
small pages without huge pages, but memory then creeps up to that size (figures in
``benchmarks/README.md``).

Both do nothing on a C library other than glibc, when ``ASYNCPIPE_MALLOC_TUNING`` is
``0``/``off``/``false``/``no``, or when the user tuned malloc already through glibc's own
``MALLOC_*`` variables or ``GLIBC_TUNABLES``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

__all__ = [
    "ENV_SWITCH",
    "MALLOC_ARENA_MAX",
    "THP_TUNABLE",
    "release_memory",
    "resident_bytes",
    "start_environment",
    "tune_malloc",
]

#: The environment variable that turns the tuning off (``0``, ``off``, ``false``, ``no``).
ENV_SWITCH = "ASYNCPIPE_MALLOC_TUNING"
#: The most malloc arenas (heaps) in the process.
MALLOC_ARENA_MAX = 2
#: glibc's tunable that backs malloc's heaps with transparent huge pages (glibc 2.35+).
THP_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"

# The mallopt parameter number, from glibc's <malloc.h>.
_M_ARENA_MAX = -8
# glibc's own variables for the same settings: when the user set one, theirs wins.
_GLIBC_ENV = (
    "MALLOC_ARENA_MAX",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
)
_OFF = {"0", "off", "false", "no"}

_lock = threading.Lock()
_applied: bool | None = None
_libc: ctypes.CDLL | None = None
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # glibc only (musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def tune_malloc() -> bool:
    """
    Tune glibc malloc for large short-lived blocks (2 arenas), once per process.

    Call it before the worker threads start: arenas already created stay.  Later calls
    return the first call's answer.

    Returns:
        ``True`` when the settings were applied; ``False`` when the tuning is switched off
        (``ASYNCPIPE_MALLOC_TUNING=0``), the user set glibc's ``MALLOC_*`` variables or
        ``GLIBC_TUNABLES``, or the C library is not glibc.
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _user_tuned() -> bool:
    """The user set glibc's malloc variables (our own `THP_TUNABLE` aside)."""
    return any(
        name in os.environ and not (name == "GLIBC_TUNABLES" and os.environ[name] == THP_TUNABLE)
        for name in _GLIBC_ENV
    )


def start_environment() -> dict[str, str]:
    """
    The variables the process should start with: ``GLIBC_TUNABLES`` set to
    `THP_TUNABLE` on glibc 2.35 or later when the kernel offers transparent huge pages
    (``madvise`` or ``always``); nothing when the tuning is switched off, the user set
    glibc's variables, or the system lacks either.
    """
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF or _user_tuned():
        return {}
    libc = _glibc()
    if libc is None:
        return {}
    major, _, minor = libc.gnu_get_libc_version().decode().partition(".")
    try:
        if (int(major), int(minor.split(".")[0])) < (2, 35):
            return {}
        with open(_THP_SETTING) as setting:
            if "[never]" in setting.read():
                return {}
    except (OSError, ValueError):
        return {}
    return {"GLIBC_TUNABLES": THP_TUNABLE}


def _apply() -> bool:
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        return False
    if _user_tuned():
        return False
    global _libc
    libc = _glibc()
    if libc is None or not libc.mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX):
        return False
    _libc = libc
    return True


def resident_bytes() -> int | None:
    """
    This process's resident memory in bytes (``/proc/self/statm``), or ``None`` where
    there is no ``/proc`` (only Linux has it; the tuning runs only on glibc anyway).
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def release_memory(above: int = 0) -> bool:
    """
    Give the free pages of every malloc heap back to the system (``malloc_trim(0)``) when
    the process holds more than ``above`` bytes.

    Does nothing unless `tune_malloc` applied its settings in this process.

    Args:
        above: trim only when `resident_bytes` is over this; ``0`` always trims.  Reading
            the size costs a few microseconds; a trim costs the page faults of whatever
            reuses the pages afterwards.

    Returns:
        ``True`` when glibc released some memory.
    """
    libc = _libc
    if libc is None:
        return False
    if above > 0:
        resident = resident_bytes()
        if resident is not None and resident <= above:
            return False
    return bool(libc.malloc_trim(0))
