from __future__ import annotations

from typing import Any

import pytest

from asyncpipe import ConfigError, Executor, Pipeline, RateLimit, Stage


async def identity(value: Any) -> Any:
    return value


def crunch(value: Any) -> Any:
    return value


def ocr(engine: object, value: Any) -> Any:
    return value


def make_engine() -> object:
    return object()


def document_like() -> Pipeline:
    """Two thread stages and two stages in the ``llm`` group sharing the ``llm`` limit."""
    return Pipeline(
        [
            Stage("load", crunch, kind="thread", workers=2),
            Stage("ocr", ocr, kind="thread", workers=2, resource=make_engine),
            Stage("fix", identity, workers=4, group="llm", limiter="llm"),
            Stage("structure", identity, workers=4, group="llm", limiter="llm"),
        ],
        limits={"llm": RateLimit(1000, 1)},
    )


class FakeExecutor(Executor):
    """An executor that is never opened: the tests only look at where it was put."""

    def open(self, stage: Stage) -> Any:
        raise AssertionError("not opened in these tests")


class TestWorkers:
    """--workers reaches stages by their name or their group's."""

    def test_group_and_stage_names(self) -> None:
        """A group sets every member; a stage's own name beats its group."""
        pipeline = document_like().configure(workers={"llm": 32, "structure": 3, "ocr": 1})
        assert {s.name: s.workers for s in pipeline.stages} == {
            "load": 2,
            "ocr": 1,
            "fix": 32,
            "structure": 3,
        }

    def test_unknown_name_is_a_config_error(self) -> None:
        """A name that is neither a stage nor a group lists the names there are."""
        with pytest.raises(
            ConfigError,
            match=r"no stage or group named 'ocrr'.*stages: load, "
            r"ocr, fix, structure; groups: llm",
        ):
            document_like().configure(workers={"ocrr": 2})

    def test_group_may_not_shadow_a_stage(self) -> None:
        """A group named like a stage would make overrides ambiguous."""
        with pytest.raises(ConfigError, match="group 'a' is also a stage name"):
            Pipeline([Stage("a", identity), Stage("b", identity, group="a")])


class TestConfigureCopy:
    """What ``configure`` returns."""

    def test_a_subclass_stays_itself(self) -> None:
        """A subclass's ``configure`` returns that subclass, its attributes copied, and
        leaves the pipeline it was called on as it was (round 32's review: it returned
        a plain `Pipeline`, which lost the subclass's own ``configure``)."""

        class Named(Pipeline):
            label = "class"

        pipeline = Named([Stage("a", identity, workers=2)], limits={"x": RateLimit(5, 1)})
        pipeline.label = "mine"
        slower = RateLimit(1, 1)
        configured = pipeline.configure(workers={"a": 3}, limits={"x": slower})
        assert type(configured) is Named and configured.label == "mine"
        assert [s.workers for s in configured.stages] == [3]
        assert configured.limits["x"] is slower
        assert [s.workers for s in pipeline.stages] == [2] and pipeline.limits["x"] is not slower


class TestExecutor:
    """--executor and --ray-stages move thread stages by name."""

    def test_default_is_thread_stages_with_a_resource(self) -> None:
        """Without names, the run of thread stages around a per-worker resource moves."""
        executor = FakeExecutor()
        pipeline = document_like().configure(executor=executor)
        assert {s.name for s in pipeline.stages if s.executor is executor} == {"load", "ocr"}
        lone = Pipeline(
            [
                Stage("parse", crunch, kind="thread"),
                Stage("fix", identity),
                Stage("ocr", ocr, kind="thread", resource=make_engine),
            ]
        )
        moved = lone.configure(executor=executor)
        assert {s.name for s in moved.stages if s.executor is executor} == {"ocr"}

    def test_named_stages(self) -> None:
        """Named thread stages move; an async stage cannot."""
        executor = FakeExecutor()
        pipeline = document_like().configure(executor=executor, executor_stages=["load", "ocr"])
        assert {s.name for s in pipeline.stages if s.executor is executor} == {"load", "ocr"}
        with pytest.raises(ConfigError, match="not thread stages: fix, structure"):
            document_like().configure(executor=executor, executor_stages=["llm"])

    def test_names_without_an_executor(self) -> None:
        """Stage names alone are refused rather than ignored."""
        with pytest.raises(ConfigError, match="no executor"):
            document_like().configure(executor_stages=["ocr"])


class TestSharedLimits:
    """A stage declares a limit by name; the run shares one RateLimit per name."""

    async def test_one_limit_shared_by_name(self) -> None:
        """Every try of every stage naming the limit acquires the same RateLimit."""
        limit = RateLimit(10_000, 1)
        pipeline = document_like().configure(limits={"llm": limit})
        summary = await pipeline.run(range(20))
        assert summary.ok == 20
        assert limit.acquired == 40  # two stages x 20 items

    def test_undeclared_limit_is_a_config_error(self) -> None:
        """A limit neither a stage nor the pipeline declares is refused, naming the
        declared ones (round 32's review: it said 'no stage', but the pipeline's own
        limits count too)."""
        with pytest.raises(
            ConfigError,
            match=r"neither a stage nor the pipeline declares a limit named 'gpu'.*"
            r"declared: llm",
        ):
            document_like().configure(limits={"gpu": RateLimit(1, 1)})

    async def test_missing_limit_is_a_config_error(self) -> None:
        """A declared limit the run was not given stops the run before it starts."""
        pipeline = Pipeline([Stage("fix", identity, limiter="llm")])
        assert pipeline.limit_names == {"llm"}
        with pytest.raises(ConfigError, match="declares the shared limit 'llm'"):
            await pipeline.run(range(3))
