"""
Resume planning: which items a resumed run skips, and where the others restart.

Two records say what an earlier run finished: the sink's own output (the truth: after a
power loss the journal may say "done" for a line that never reached the disk) and the
journal.  Checkpoints let an unfinished item restart after its last stage whose output
was journaled, provided that stage's fingerprint (its name and version, and those of
every stage before it) still matches.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._journal import Checkpoint, JournalState
from ._stage import Item, Stage, stage_fingerprints

# Internal to the run: nothing here is public API.
__all__: list[str] = []


class ResumePlan:
    """
    What a run skips and restores.

    Args:
        stages: the pipeline's stages.
        state: what the journal holds (empty on a fresh run).
        written: the keys the sink already holds, or ``None`` if the sink cannot say.
        resume: whether this run continues an earlier one.
        retry_failed: on resume, run failed items again.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        state: JournalState,
        *,
        written: set[str] | None,
        resume: bool,
        retry_failed: bool,
    ) -> None:
        self.stages = stages
        self.fingerprints = stage_fingerprints(stages)
        self.checkpoints: dict[str, dict[str, Checkpoint]] = state.checkpoints
        if written is not None:
            self.done_keys = written
        elif resume:
            self.done_keys = {
                k for k, status in state.done.items() if status == "ok" or not retry_failed
            }
        else:
            self.done_keys = set()

    @classmethod
    def fresh(cls, stages: Sequence[Stage]) -> ResumePlan:
        """
        The plan of a run that resumes nothing.
        """
        return cls(stages, JournalState(), written=None, resume=False, retry_failed=False)

    def restore(self, item: Item) -> None:
        """
        Move a resumed item past its last stage with a valid checkpoint.
        """
        checkpoints = self.checkpoints.pop(item.key, None)
        if not checkpoints:
            return
        stages = self.stages
        for i in range(len(stages) - 1, -1, -1):
            stage = stages[i]
            ck = checkpoints.get(stage.name)
            if stage.checkpoint and ck is not None and ck.fingerprint == self.fingerprints[i]:
                item.value = stage.decode(ck.output) if stage.decode is not None else ck.output
                item.timings = dict(ck.timings)
                item.start = i + 1
                return
