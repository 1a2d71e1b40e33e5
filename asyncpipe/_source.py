"""
Sources: turn an iterable or async iterable of input values into keyed items.

The source task is the run's intake: it gives each value its stable key, refuses two
values with the same key (the journal could not tell them apart), skips what resume
says is done, restores checkpoints, and waits for room in the admission window before
it sends an item to the first stage.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._exceptions import ConfigError, StopIntake
from ._keyindex import OrderedKeys
from ._keyset import KeySet
from ._stage import Item

if TYPE_CHECKING:
    from ._run import Run

log = logging.getLogger("asyncpipe")

__all__ = ["iterate_in_thread"]

Source = Iterable[Any] | AsyncIterable[Any]


async def feed(run: Run, source: Source) -> None:
    """
    Send every input value of ``source`` to the first stage, as an `Item`.

    Stops early when ``run.intake`` is cancelled (a signal asked for a graceful stop) or
    the source raises `StopIntake` (the app asked for one), and always closes the first
    queue so that the stages drain and end.

    A value whose key an earlier value of the run had (the same file given twice) is
    skipped, with a warning, and counted in ``run.duplicates``: one key is one item, with
    a journal or without (a ``JsonlSink`` wrote the id twice without one).  A key the
    output already holds is skipped wherever it comes.  Positional keys (no ``key``
    function) cannot repeat, and are not kept.

    Raises:
        ConfigError: the key function returned something other than a str.
    """
    send = run.senders[0]
    keyfn: Callable[[Any], str] | None = run.key
    # Every key of the run, to refuse duplicates: compact (a key's length and 5 bytes), as
    # a run of millions of items must not hold a full Python set of them.  Keys already
    # done are not added: they are skipped, so two items with one of them cannot share
    # checkpoints.  Positions are unique: with no key function there is nothing to keep.
    seen: KeySet | None = KeySet() if keyfn is not None else None
    plan = run.plan
    done = plan.done_keys
    window = run.window
    index = 0
    position = -1
    try:
        with run.intake:
            if isinstance(done, OrderedKeys) and not isinstance(source, AsyncIterable):
                source, position = await _skip_done(run, iter(source), keyfn, done)
            async for value in iterate(source):
                position += 1
                key = keyfn(value) if keyfn is not None else str(position)
                if not isinstance(key, str):
                    raise ConfigError(
                        f"the key function returned {type(key).__name__} {key!r} for input "
                        f"{position}: a key is a str (an id the output and journal keep)"
                    )
                if not key.isascii():
                    _check_text(key)
                if key in done:
                    run.skipped += 1
                    continue
                if seen is not None and not seen.add(key):
                    # Before, the run stopped here, and every resume stopped again at the
                    # same place: it could never finish.
                    log.warning(
                        "input %d has the key %r of an earlier input: skipped", position, key
                    )
                    run.duplicates += 1
                    continue
                item = Item(key, index, value)
                if plan.checkpoints:
                    plan.restore(item)
                index += 1
                if window is not None:
                    await window.acquire()
                await send.send(item)
                run.meter.admitted += 1
            run.meter.exhausted(position + 1)
    except StopIntake as stop:
        run.stop_intake(stop.reason, str(stop))
    finally:
        send.close()


#: Values read at a time while skipping: at most this many are read ahead of the first
#: value to run (and held until it is sent).
_SKIP_CHUNK = 64
#: Keys of the output read at a time (a few MB of strings).
_TAKE = 1 << 16


async def _skip_done(
    run: Run, values: Iterator[Any], keyfn: Callable[[Any], str] | None, done: OrderedKeys
) -> tuple[Iterable[Any], int]:
    """
    Skip the run of source values whose keys are the output's keys in output order.

    A resumed ordered run finds its finished items there: the source's first values,
    written in input order.  Comparing a chunk of keys with the next keys of the output
    costs far less than a lookup per key.  Returns the values left (from the first chunk
    that does not match all through) and the position of the last value skipped.
    """
    position = -1  # of the last value read
    pending: list[str] = []  # the output's next keys
    order = done.in_order()

    def take() -> list[str]:
        """
        The output's next keys, read from the index in a thread: tens of thousands at a
        time, as each trip to a thread can wait a scheduler's tick on a loaded machine.
        """
        keys: list[str] = []
        for batch in order:
            keys.extend(batch)
            if len(keys) >= _TAKE:
                break
        return keys

    while batch := await anyio.to_thread.run_sync(take):
        pending.extend(batch)
        at = 0
        while len(pending) - at >= _SKIP_CHUNK:
            chunk = list(itertools.islice(values, _SKIP_CHUNK))
            if keyfn is not None:
                keys = list(map(keyfn, chunk))
            else:
                keys = list(map(str, range(position + 1, position + 1 + len(chunk))))
            if keys != pending[at : at + len(keys)]:
                run.skipped += position + 1
                return itertools.chain(chunk, values), position
            position += len(chunk)
            at += len(chunk)
            if len(chunk) < _SKIP_CHUNK:  # the source ended
                run.skipped += position + 1
                return (), position
        del pending[:at]
    run.skipped += position + 1
    return values, position


async def iterate(source: Source) -> AsyncIterator[Any]:
    """
    Iterate a plain or an async iterable alike.
    """
    if isinstance(source, AsyncIterable):
        async for value in source:
            yield value
    else:
        for value in source:
            yield value


async def iterate_in_thread(iterable: Iterable[Any], *, batch: int = 64) -> AsyncIterator[Any]:
    """
    Iterate a blocking iterable (e.g. a directory walk) in a worker thread, ``batch``
    values at a time, so that the event loop never blocks on it.

    .. versionadded:: 0.1
    """
    iterator = iter(iterable)

    def take() -> list[Any]:
        out = []
        for value in iterator:
            out.append(value)
            if len(out) >= batch:
                break
        return out

    while True:
        values = await anyio.to_thread.run_sync(take)
        if not values:
            return
        for value in values:
            yield value


def _check_text(key: str) -> None:
    """
    Refuse a key the journal and the output cannot hold: a lone surrogate, which is how
    Python holds the bytes of a file name that is not UTF-8.
    """
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"input item key {key!r} is not UTF-8 text (a file name's bytes?): make the key "
            "function return text, e.g. name.encode('utf-8', 'surrogateescape')"
            ".decode('utf-8', 'backslashreplace')"
        ) from None
