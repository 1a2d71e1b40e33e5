"""
A resumed run's pages under the ids its output wrote them with.

Discovery gives a file whose name and content an earlier root's file has its root's
folder name too (`stages.inputs.discover`), so a page's id can change between a run and
its resume when that earlier file changes: with ``d1/x.jpg`` replaced in place,
``d2/x.jpg``, written as ``d2/x.jpg#1@...`` beside its twin, is ``x.jpg#1@...`` now, the
id of the twin's old line; the resume wrote it again and kept that stale line.  The same
input, page and content is the same page, so it keeps the id it was written under.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ._page import PageRef
from ._resumed import Earlier
from .inputs._stdin import is_piped

__all__ = ["as_written"]


def as_written(refs: Iterable[PageRef], earlier: Callable[[], Earlier]) -> Iterator[PageRef]:
    """
    ``refs``, each under the id the output holds for its input's page of the same
    content, where that id names the file otherwise (``d2/x.jpg#1@h`` for
    ``x.jpg#1@h``); ``earlier`` reads the output, when the first page is asked for.
    """
    for ref in refs:
        if ref.problem is None and not is_piped(ref):
            ids = earlier().by_source.get(os.path.abspath(ref.source), ())
            if ids and ref.id not in ids:
                tail = ref.id[ref.id.rindex("#") :]  # ``#<page>@<hash>``: a name may hold #
                same = [old for old in ids if old.endswith(tail)]
                if same:
                    ref = replace(ref, id=same[0])
        yield ref
