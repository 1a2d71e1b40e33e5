"""
SIGINT and SIGTERM for every run that stops on them, however many run at once.

An event loop has one handler per signal: a second run that installed its own (as
``anyio.open_signal_receiver`` does) took the signal from the first, and when it ended
and removed it, a Ctrl-C was a bare ``KeyboardInterrupt`` in the first.  So one handler
per loop serves every run that asks: it is installed for the first and removed after
the last, and each signal goes to all of them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Internal to `Run`: nothing here is public API.
__all__: list[str] = []

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Handlers:
    """The runs of one event loop that watch the signals, and the loop's handler."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: list[Callable[[int], None]] = []

    def deliver(self, signum: int) -> None:
        for callback in list(self.callbacks):
            callback(signum)


_HANDLERS: dict[asyncio.AbstractEventLoop, _Handlers] = {}


@contextmanager
def signals_to(callback: Callable[[int], None]) -> Iterator[None]:
    """
    Call ``callback(signum)`` on the event loop for each SIGINT or SIGTERM while the
    block runs, as every other block open on the loop is called.
    """
    loop = asyncio.get_running_loop()
    handlers = _HANDLERS.get(loop)
    if handlers is None:
        handlers = _HANDLERS[loop] = _Handlers(loop)
        try:
            for signum in SIGNALS:
                loop.add_signal_handler(signum, handlers.deliver, signum)
        except BaseException:
            _uninstall(handlers)
            raise
    handlers.callbacks.append(callback)
    try:
        yield
    finally:
        handlers.callbacks.remove(callback)
        if not handlers.callbacks:
            _uninstall(handlers)


def _uninstall(handlers: _Handlers) -> None:
    del _HANDLERS[handlers.loop]
    if not handlers.loop.is_closed():
        for signum in SIGNALS:
            handlers.loop.remove_signal_handler(signum)
