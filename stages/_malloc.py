"""
glibc malloc tuning for the document pipeline: large blocks go back to the system.

The OCR engines allocate large, short-lived blocks on every page (onnxruntime's tensors,
hundreds of MB for a 600-dpi scan), and the loaders allocate decoded pixels.  glibc's
default malloc serves blocks between 128 KB and 32 MB from per-thread heaps once a freed
mapping has raised its dynamic threshold, and it keeps up to 8 heaps per core; freed
space in those heaps is fragmented and seldom returned, so a long run's resident memory
creeps up with the pages it has seen.  Measured with ``benchmarks/soak.py`` (see
``benchmarks/README.md``): the floor between pages climbs by about 50 % over the first
pages and the peak grows with the item count.

`tune_malloc` sets, once per process, ``M_MMAP_THRESHOLD`` to 1 MB (every block of 1 MB
or more is its own mapping, unmapped when freed; setting it also turns the dynamic
threshold off) and ``M_ARENA_MAX`` to 2 (fewer heaps to fragment).  It does nothing on a
C library other than glibc, when ``ASYNCPIPE_MALLOC_TUNING`` is ``0``/``off``/``false``/
``no``, or when the user tuned malloc already through glibc's own ``MALLOC_*`` variables.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

__all__ = ["ENV_SWITCH", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD", "tune_malloc"]

#: The environment variable that turns the tuning off (``0``, ``off``, ``false``, ``no``).
ENV_SWITCH = "ASYNCPIPE_MALLOC_TUNING"
#: Blocks of this many bytes or more are mapped on their own and unmapped when freed.
MALLOC_MMAP_THRESHOLD = 1 << 20
#: The most malloc arenas (heaps) in the process.
MALLOC_ARENA_MAX = 2

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_MMAP_THRESHOLD = -3
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
    return libc


def tune_malloc() -> bool:
    """
    Tune glibc malloc for large short-lived blocks, once per process.

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


def _apply() -> bool:
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF:
        return False
    if any(name in os.environ for name in _GLIBC_ENV):
        return False
    libc = _glibc()
    if libc is None:
        return False
    done = libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    done &= libc.mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX)
    return bool(done)
