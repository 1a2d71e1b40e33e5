"""
A resumed run's inputs weighed against the pages its output holds from before: inputs
gone since, and inputs replaced in place (the same path, other content).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import chain, groupby
from pathlib import Path
from typing import Any

import orjson

from asyncpipe import ConfigError
from asyncpipe._durable import LineScanner  # private, but the app ships with asyncpipe

from ._page import PageRef
from .inputs._errors import InputError
from .inputs._sniff import path_digest
from .inputs._stdin import STDIN_SOURCE, is_piped

__all__ = ["Changes", "Earlier", "against_output", "read_records"]

log = logging.getLogger("stages.app")


@dataclass(frozen=True, slots=True)
class Earlier:
    """
    What the output holds from before a resume.

    Attributes:
        by_source: the ids of its lines, by the absolute path of their input (the
            lines of a document piped in under `STDIN_SOURCE` itself, which no path
            equals: a file named ``<stdin>`` is ``./<stdin>``, whose absolute path
            ``<stdin>`` would be too).
        opened: the content hashes of the inputs some page of which was read (a line
            not an error).
        finished: the absolute paths of those inputs.
    """

    by_source: dict[str, list[str]]
    opened: set[str]
    finished: set[str]


class Changes:
    """
    What a resumed walk found replaced in place: filled by the walk (in its thread), read
    by the output as the run closes (`superseded`).  It also holds the output's lines
    from before (`earlier`), read once for the walk and the cost ceiling both.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._old: dict[str, list[str]] = {}  # by input: the ids of its earlier lines
        self._new: dict[str, list[str]] = {}  # by input: the ids this walk gave it
        self._current: set[str] = set()  # every id this walk gave
        self._reading = threading.Lock()
        self._earlier: Earlier | None = None
        self._kept: dict[str, tuple[str, int]] = {}  # by input: why, and its pages kept

    def earlier(self, out: Path) -> Earlier:
        """
        The output's lines from before (`Earlier`), read from ``out`` once, in the
        thread that asks first (a resume under a cost ceiling asks for `written_ids`
        before the walk begins; each read the whole output, 0.5 s per 100,000 lines).
        """
        with self._reading:
            if self._earlier is None:
                self._earlier = _read_earlier(out)
            return self._earlier

    def written_ids(self, out: Path) -> frozenset[str]:
        """The ids of the pages the output holds from before (`earlier`)."""
        by_source = self.earlier(out).by_source
        return frozenset(key for keys in by_source.values() for key in keys)

    def changed(self, source: str, old: list[str]) -> None:
        with self._lock:
            self._old[source] = old
            self._new[source] = []

    def walked(self, ref: PageRef) -> None:
        with self._lock:
            self._current.add(ref.id)
            if ref.source in self._new:
                self._new[ref.source].append(ref.id)

    def kept(self, source: str, reason: str, pages: int) -> None:
        with self._lock:
            self._kept[source] = (reason, pages)

    def kept_inputs(self) -> dict[str, tuple[str, int]]:
        """
        The inputs gone or that cannot be read now, each with why and how many of its pages from
        before the output keeps (for the run's summary: the warning scrolls away).
        """
        with self._lock:
            return dict(self._kept)

    def superseded(self) -> dict[str, list[str]]:
        """
        Each earlier line to drop, with the lines that replace it: the output drops it
        once those are all written.  A line whose id this walk still gave (the same
        content under another path, which discovery had skipped as a duplicate of it)
        is kept: it is that input's line too.
        """
        with self._lock:
            return {
                old: list(self._new[source])
                for source, olds in self._old.items()
                for old in olds
                if old not in self._current
            }


def against_output(
    refs: Iterable[PageRef],
    out: Path,
    changes: Changes,
    *,
    loads: Callable[[PageRef], object] | None = None,
) -> Iterator[PageRef]:
    """
    ``refs`` of a resumed run, weighed against the pages the output holds from before.

    An input that is gone but whose pages the output holds is left out (a file moved
    away once it was read): its key comes from its content, so it would come back as an
    error record beside its finished one.  An input whose content changed since its
    pages were written (a file replaced in place) is read again, and its earlier lines go
    to ``changes``, which the output drops once the new ones are written: the key holds
    the content hash, so the old lines would stay beside the new ones.

    An input that discovery cannot read now (bytes that are no document, a symbolic
    link whose file is gone, a file it may not open) but some page of which the output
    holds as read is left out too, with a warning: the pages read before stay, where an
    error record replaced them (other bytes) or joined them (a dangling link).  So is
    one replaced in place by bytes that sniff as a document but no page of which the
    load stage can decode (``loads``, tried here on such an input's pages until one
    loads: a JPEG cut short, or its data overwritten): its error record replaced the
    earlier lines.  An input some page of which loads is read again, as it is now.

    A document piped in on standard input is neither: it was never a file to move away
    or replace. Piped again, its pages are those of its bytes: the same bytes resume
    under the same ids, and other bytes are another document, read beside the earlier
    one's pages, which stay (a stream named ``-`` does not say it replaces anything).

    Raises:
        ConfigError: an encrypted PDF that this run read with a password does not open
            now: without it, its pages cannot be counted, and those not yet written would
            be left out unseen.
    """
    earlier: Earlier | None = None
    seen: set[str] = set()
    if loads is not None:
        refs = _tried(refs, loads, lambda: changes.earlier(out))
    for ref in refs:
        piped = is_piped(ref)
        gone = not piped and ref.problem is not None and not os.path.lexists(ref.source)
        if earlier is None:  # when the first page is asked for
            earlier = changes.earlier(out)
        if ref.locked and _digest(ref.id) in earlier.opened:
            raise ConfigError(
                f"{ref.source}: this run read pages of this encrypted PDF with a password, "
                "and it does not open now: give --pdf-password-env again (without the "
                "password its pages cannot be counted, and those not yet read would be "
                "left out)"
            )
        # Named as before or not (./a.jpg, /x/a.jpg).
        absolute = os.path.abspath(ref.source)
        ids = earlier.by_source.get(absolute, ())
        if gone and ids:
            log.warning("%s is gone; the output has its pages from before", ref.source)
            changes.kept(ref.source, "gone", len(ids))
            yield from _kept(ref, ids, changes)
            continue
        if not piped and ref.problem is not None and absolute in earlier.finished:
            # Cannot be read now (other bytes that are no document, a symbolic link whose
            # file is gone, no permission): the pages read before stay, and nothing is
            # added beside them.  An error record replaced them, or joined them.
            log.warning(
                "%s cannot be read now (%s); the output keeps its pages from before",
                ref.source,
                _reason(ref),
            )
            changes.kept(ref.source, _reason(ref), len(ids))
            yield from _kept(ref, ids, changes)
            continue
        if not (gone or piped) and ref.source not in seen and (stale := _stale(ref, ids)):
            seen.add(ref.source)
            changes.changed(ref.source, stale)
            log.warning(
                "%s changed since its pages were written: it is read again, and its "
                "earlier lines (%d) leave the output once the new ones are written",
                ref.source,
                len(stale),
            )
        changes.walked(ref)
        yield ref


def _tried(
    refs: Iterable[PageRef], loads: Callable[[PageRef], object], earlier: Callable[[], Earlier]
) -> Iterator[PageRef]:
    """
    ``refs``, but an input replaced in place since some page of it was read, none of
    whose pages ``loads`` can decode now, as one ref whose ``problem`` is the first
    page's error (what discovery yields for a file it cannot read): `against_output`
    then keeps its earlier pages.  Its pages are tried in turn until one loads; the
    refs of an input that no page was read of, or that is unchanged, are not tried.
    """
    for _, group in groupby(refs, key=lambda ref: ref.source):
        pages = iter(group)  # used up below, before the next group is asked for
        first = next(pages)
        rest = chain([first], pages)
        if first.problem is not None or is_piped(first) or not _replaced(first, earlier()):
            yield from rest
            continue
        tried: list[PageRef] = []
        problem: str | None = None
        for ref in rest:
            tried.append(ref)
            try:
                loads(ref)
            except InputError as exc:
                problem = problem or str(exc)
            else:
                break  # readable: its pages are read again, as they are now
        else:
            yield replace(first, problem=problem)
            continue
        yield from tried
        yield from rest


def _replaced(ref: PageRef, earlier: Earlier) -> bool:
    """Whether ``ref``'s input was read before (some page of it is no error record) and
    holds other content now."""
    absolute = os.path.abspath(ref.source)
    return absolute in earlier.finished and bool(_stale(ref, earlier.by_source[absolute]))


def _kept(ref: PageRef, ids: Iterable[str], changes: Changes) -> Iterator[PageRef]:
    """
    The pages the output holds of an input that is gone or unreadable now, under their
    earlier ids: the run finds them written and counts them as skipped (left out, a
    resume of that input alone found no item, and said "no input items found", exit 2).
    """
    for key in ids:
        kept = replace(ref, id=key)
        changes.walked(kept)
        yield kept


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """
    The output's records, one at a time (a torn last line, left by a crash, is not one).
    """
    for _, line in LineScanner(path):
        if line.strip():
            yield orjson.loads(line)


def _read_earlier(out: Path) -> Earlier:
    """What ``out`` holds (`Earlier`)."""
    earlier = Earlier({}, set(), set())
    if out.exists():
        for record in read_records(out):
            named = str(record.get("source"))
            # ``path``: the absolute path, when ``source`` is relative to the directory the
            # line was written from (a line an older version wrote has none: its source is
            # taken as relative to this run's).
            path = record.get("path") or os.path.abspath(named)
            source = named if named == STDIN_SOURCE else str(path)
            earlier.by_source.setdefault(source, []).append(key := str(record.get("id")))
            if record.get("status") != "error":
                earlier.opened.add(_digest(key))
                earlier.finished.add(source)
    return earlier


def _reason(ref: PageRef) -> str:
    """Discovery's problem with ``ref``, without the path it starts with."""
    problem = ref.problem or ""
    head, sep, rest = problem.partition(": ")
    return rest if sep and head.endswith(os.path.basename(ref.source)) else problem


def _digest(key: str) -> str:
    """The content hash an item key ends with (``path#page@hash``)."""
    return key.rpartition("@")[2]


def _stale(ref: PageRef, ids: Iterable[str]) -> list[str]:
    """
    Which of ``ids``, written for ``ref``'s input, are of other content than ``ref``'s:
    none when ``ref``'s content is unknown (a file that cannot be read, whose id holds
    a hash of its path), so a page that could not be read never replaces a finished one.
    """
    digest = _digest(ref.id)
    if digest == path_digest(ref.source):
        return []
    return [old for old in ids if _digest(old) != digest]
