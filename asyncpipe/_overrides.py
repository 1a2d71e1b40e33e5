"""
Run-wide settings applied by stage name: worker counts, executors and shared limits.

A pipeline is built by an app; the person running it tunes it without touching the
app's code.  Every override names a stage or a *group* (``Stage(..., group="llm")``), so
one setting reaches every stage of the group, and a stage's own name beats its group.
A shared limit is declared on the stage by name (``Stage(..., limiter="llm")``) and
resolved when the run starts, so every stage that names it shares one `RateLimit`.

An unknown name is a `ConfigError` that lists the names there are.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ._exceptions import ConfigError
from ._executor import Executor
from ._ratelimit import RateLimit
from ._stage import Stage

# Internal to `Pipeline`: nothing here is public API.
__all__: list[str] = []


def stage_groups(stages: Sequence[Stage]) -> dict[str, list[str]]:
    """
    The stage names of each group, in pipeline order.

    Raises:
        ConfigError: a group has the name of a stage (an override could not tell them
            apart).
    """
    names = {stage.name for stage in stages}
    groups: dict[str, list[str]] = {}
    for stage in stages:
        if stage.group is not None:
            if stage.group in names:
                raise ConfigError(
                    f"stage {stage.name!r}: group {stage.group!r} is also a stage name"
                )
            groups.setdefault(stage.group, []).append(stage.name)
    return groups


def declared_limits(stages: Sequence[Stage]) -> set[str]:
    """
    The names of the shared limits the stages declare.
    """
    return {stage.limiter for stage in stages if isinstance(stage.limiter, str)}


def select(stages: Sequence[Stage], names: Collection[str], option: str) -> dict[str, str]:
    """
    Map each stage picked by ``names`` (stage or group names) to the name that picked it.

    A stage's own name beats its group's.

    Raises:
        ConfigError: a name is neither a stage nor a group.
    """
    groups = stage_groups(stages)
    stage_names = [stage.name for stage in stages]
    unknown = sorted(set(names) - set(stage_names) - set(groups))
    if unknown:
        raise ConfigError(
            f"{option}: no stage or group named {', '.join(map(repr, unknown))} "
            f"(stages: {', '.join(stage_names)}; groups: {', '.join(sorted(groups)) or 'none'})"
        )
    picked: dict[str, str] = {}
    for group in names:
        for name in groups.get(group, ()):
            picked[name] = group
    for name in names:
        if name in stage_names:
            picked[name] = name
    return picked


def apply_workers(stages: Sequence[Stage], workers: Mapping[str, int]) -> list[Stage]:
    """
    The stages with the worker counts of ``workers`` (by stage or group name).
    """
    picked = select(stages, workers, "workers")
    out = []
    for stage in stages:
        by = picked.get(stage.name)
        if by is not None and workers[by] != stage.workers:
            stage = stage.replace(workers=workers[by])
        out.append(stage)
    return out


def apply_executor(
    stages: Sequence[Stage], executor: Executor, names: Collection[str] | None
) -> list[Stage]:
    """
    The stages with ``executor`` on the thread stages picked by ``names`` (stage or group
    names), or by default on the CPU part of the pipeline: every run of consecutive thread
    stages that holds a stage with a per-worker resource (e.g. load, preprocess and OCR).
    Consecutive stages on one executor are fused into one call per item, so the default
    ships an item's input to a worker once and gets its result back once.

    Raises:
        ConfigError: a name is unknown or not a thread stage, or nothing was picked.
    """
    threads = [s.name for s in stages if s.kind == "thread"]
    if names is None:
        chosen = _cpu_part(stages)
        if not chosen:
            raise ConfigError(
                "no thread stage has a per-worker resource to move to the executor; name "
                f"some (thread stages: {', '.join(threads) or 'none'})"
            )
    else:
        chosen = set(select(stages, names, "executor stages"))
        wrong = sorted(chosen - set(threads))
        if wrong:
            raise ConfigError(
                f"executor stages: not thread stages: {', '.join(wrong)} "
                f"(thread stages: {', '.join(threads) or 'none'})"
            )
    return [s.replace(executor=executor) if s.name in chosen else s for s in stages]


def _cpu_part(stages: Sequence[Stage]) -> set[str]:
    chosen: set[str] = set()
    run: list[Stage] = []
    for stage in [*stages, None]:
        if stage is not None and stage.kind == "thread":
            run.append(stage)
            continue
        if any(s.resource is not None for s in run):
            chosen.update(s.name for s in run)
        run = []
    return chosen


def check_limits(declared: Collection[str], limits: Mapping[str, RateLimit]) -> None:
    """
    Raises:
        ConfigError: a limit is named that the pipeline does not declare.
    """
    unknown = sorted(set(limits) - set(declared))
    if unknown:
        raise ConfigError(
            f"rate limit: neither a stage nor the pipeline declares a limit named "
            f"{', '.join(map(repr, unknown))} (declared: {', '.join(sorted(declared)) or 'none'})"
        )


def resolve_limiters(
    stages: Sequence[Stage], limits: Mapping[str, RateLimit]
) -> list[RateLimit | None]:
    """
    Each stage's `RateLimit`: its own object, or the shared one its name declares.

    Raises:
        ConfigError: a stage declares a limit the run was not given.
    """
    out: list[RateLimit | None] = []
    for stage in stages:
        limiter = stage.limiter
        if isinstance(limiter, str):
            shared = limits.get(limiter)
            if shared is None:
                raise ConfigError(
                    f"stage {stage.name!r} declares the shared limit {limiter!r}, but the "
                    f"run has none of that name: give Pipeline(limits={{{limiter!r}: "
                    f"RateLimit(...)}}) or --rate-limit {limiter}=RATE"
                )
            out.append(shared)
        else:
            out.append(limiter)
    return out
