"""
The id of a run, which its journal and its output's key index both keep.

A run with a `Journal` and a `JsonlSink` gives them one id (`settle_run_id`): a new one
for a new run, and on resume the id the files hold, so that every run of a job, its
resumes included, writes the same one.  By it a resume (`check_resume`) and ``asyncpipe
journal show|compact --out`` (`other_run`) tell the output of the journal's own run
from another run's.  A file that names no run (of a version that gave none, a run given
none, an index deleted or naming another file) is taken at its word.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from ._exceptions import ConfigError, JournalError
from ._journal import Journal
from ._journal_state import journal_run
from ._keyindex import index_path, index_run
from ._sink import JsonlSink, Sink

__all__: list[str] = []  # internal: `Run` and the CLI's


def new_run_id() -> str:
    """
    A new run's id: random, so that no two runs share one.
    """
    return uuid.uuid4().hex


def other_run(journal: Path, output: Path) -> tuple[str, str] | None:
    """
    The ids of the runs that wrote ``journal`` and ``output``, when both name one and
    they differ: ``output`` is then another run's than the journal's.

    Returns:
        ``(journal's id, output's id)``, or ``None``: the same run, or not known.

    Raises:
        JournalError: the journal cannot be read.
    """
    ours = journal_run(journal)
    if ours is None:
        return None
    theirs = index_run(output)
    if theirs is None or theirs == ours:
        return None
    return ours, theirs


def check_resume(journal: Path, output: Path) -> None:
    """
    Refuse to resume ``journal``'s run into ``output`` when ``output`` is another run's.

    Such a resume would take the other run's items for its own, done, and its closing
    compaction would drop the journal's checkpoints of them: the items this run left
    unfinished would lose theirs (a later resume pays their calls again) and never be
    written.  Called before anything is changed.  A journal that cannot be read is left
    to the journal's opening, which says what is wrong with it.

    Raises:
        ConfigError: ``output``'s key index names another run than ``journal``.
    """
    try:
        ids = other_run(journal, output)
    except JournalError:
        return
    if ids is None:
        return
    ours, theirs = ids
    raise ConfigError(
        f"cannot resume: {output} is another run's output, not the one of the journal "
        f"{journal}: its key index {index_path(output)} names the run {theirs}, the "
        f"journal the run {ours}.  Resuming would take that run's items for this one's "
        "and drop the journal's checkpoints of them, so that this run's unfinished items "
        "lose theirs.  Nothing was changed.  Resume with the journal that belongs to "
        f"{output} (the --journal of the run that wrote it), or this journal with its own "
        "output; or start a new run (without --resume)"
    )


def settle_run_id(
    journal: Journal | None, sink: Sink | None, *, resume: bool
) -> Callable[[], None]:
    """
    Give a run's journal and its `JsonlSink` one id, unless the run lacks either.

    A new run takes the id given to either (``run_id=``), else a new one; a resume the
    id its journal holds, else its output's index, else the one given (``None`` when
    none is: files that name no run go on naming none).  The run's id is set as the
    ``run_id`` of both; on resume, `check_resume` first refuses another run's output.

    Returns:
        What puts back the ``run_id`` each had, for when the run is over.

    Raises:
        ConfigError: the journal and the sink were given different ids, or (on resume)
            the output is another run's (`check_resume`).
    """
    if journal is None or not isinstance(sink, JsonlSink):
        return lambda: None
    given = (journal.run_id, sink.run_id)
    if None not in given and given[0] != given[1]:
        raise ConfigError(
            f"the journal's run_id ({given[0]}) and the sink's ({given[1]}) differ: a run "
            "gives both the same id (or neither, and the run picks one)"
        )
    chosen = given[0] or given[1]
    if resume:
        check_resume(journal.path, sink.path)
        try:
            found = journal_run(journal.path)
        except JournalError:
            found = None  # the journal's opening says what is wrong
        chosen = found or index_run(sink.path) or chosen
    elif chosen is None:
        chosen = new_run_id()
    journal.run_id = sink.run_id = chosen

    def restore() -> None:
        journal.run_id, sink.run_id = given

    return restore
