from __future__ import annotations

import math

import pytest

from asyncpipe import BudgetExceeded, ConfigError, CostBudget, StageError, parse_cost, parse_prices


class TestCostBudget:
    """Reserve a call's worst case, settle with its usage, refuse what would pass the ceiling."""

    def test_cost(self) -> None:
        """Prices are per million prompt and completion tokens."""
        budget = CostBudget(0.15, 0.60)
        assert budget.cost(1_000_000, 0) == pytest.approx(0.15)
        assert budget.cost(2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)

    def test_reserve_and_settle(self) -> None:
        """A reservation holds its worst case; settling counts the real usage instead."""
        budget = CostBudget(1.0, 2.0, max_cost=1.0)  # 1 per million prompt tokens
        r = budget.reserve(100_000, 50_000)  # 0.1 + 0.1
        assert budget.reserved == pytest.approx(0.2) and budget.remaining == pytest.approx(0.8)
        r.settle(100_000, 10_000)
        assert budget.spent == pytest.approx(0.12) and budget.reserved == 0
        assert (budget.prompt_tokens, budget.completion_tokens) == (100_000, 10_000)
        with pytest.raises(RuntimeError, match="settled already"):
            r.settle(1, 1)

    def test_unknown_usage_counts_the_worst_case(self) -> None:
        """settle() without usage (a timeout) counts what was reserved; (0, 0) counts nothing."""
        budget = CostBudget(1.0, 2.0, max_cost=1.0)
        budget.reserve(100_000, 50_000).settle()
        budget.reserve(100_000, 50_000).settle(0, 0)
        assert budget.spent == pytest.approx(0.2) and budget.reserved == 0
        assert (budget.prompt_tokens, budget.completion_tokens) == (100_000, 50_000)

    def test_a_call_that_can_never_fit_names_the_library_option(self) -> None:
        """A call dearer than the whole ceiling says what to change in the API a library
        user holds (max_cost, max_tokens), with the app's option beside it."""
        budget = CostBudget(1.0, 1.0, max_cost=0.1)
        with pytest.raises(StageError) as info:
            budget.reserve(200_000, 100_000)
        assert not isinstance(info.value, BudgetExceeded)  # this call only, not the run
        assert str(info.value).endswith(
            "raise the ceiling (CostBudget's max_cost, the app's --max-cost) or lower the "
            "call's max_tokens"
        )

    def test_in_flight_calls_cannot_overshoot_together(self) -> None:
        """Reservations in flight count: the call that would pass the ceiling is refused."""
        budget = CostBudget(1.0, 1.0, max_cost=1.0)
        held = [budget.reserve(200_000, 100_000) for _ in range(3)]  # 0.9 reserved
        assert not budget.closed
        with pytest.raises(BudgetExceeded, match="cost ceiling of 1") as info:
            budget.reserve(200_000, 100_000)
        assert isinstance(info.value, StageError)  # an error record, not a crash
        assert budget.closed and budget.refused == 1
        for r in held:
            r.settle(200_000, 100_000)
        assert budget.spent == pytest.approx(0.9)

    def test_exact_fit_is_allowed_and_closes(self) -> None:
        """A reservation that reaches the ceiling exactly goes, and then no page starts."""
        budget = CostBudget(1.0, 0.0, max_cost=1.0)
        budget.reserve(1_000_000, 0)
        assert budget.closed and budget.refused == 0

    def test_headroom_closes_early(self) -> None:
        """With headroom, new pages stop while calls of pages in flight still fit."""
        budget = CostBudget(1.0, 1.0, max_cost=1.0, headroom=0.3)
        budget.reserve(600_000, 0).settle(600_000, 0)
        assert not budget.closed
        budget.reserve(150_000, 0).settle(150_000, 0)
        assert budget.closed
        budget.reserve(200_000, 0)  # a page in flight may still finish
        with pytest.raises(BudgetExceeded):
            budget.reserve(100_000, 0)

    def test_overshoot_only_by_excess_over_estimates(self) -> None:
        """Usage above the reservation is counted in full: the spend shows the overshoot."""
        budget = CostBudget(1.0, 1.0, max_cost=1.0)
        budget.reserve(500_000, 400_000).settle(500_000, 700_000)
        assert budget.spent == pytest.approx(1.2) and budget.remaining < 0 and budget.closed

    def test_no_ceiling_only_counts(self) -> None:
        """Without max_cost, nothing is refused and the budget never closes."""
        budget = CostBudget(0.15, 0.60)
        budget.charge(10**9, 10**9)
        budget.reserve(10**9, 10**9).settle(0, 0)
        assert not budget.closed and math.isinf(budget.remaining)
        assert budget.spent == pytest.approx(750.0)
        assert repr(budget) == "CostBudget(0.15, 0.6, max_cost=None, spent=750)"

    @pytest.mark.parametrize(
        ("args", "kw"),
        [
            ((-1.0, 1.0), {}),
            ((1.0, math.nan), {}),
            ((1.0, 1.0), {"max_cost": -1.0}),
            ((1.0, 1.0), {"max_cost": math.inf}),
            ((1.0, 1.0), {"headroom": -0.5}),
        ],
    )
    def test_bad_configuration(self, args: tuple[float, float], kw: dict[str, float]) -> None:
        """Negative or non-finite prices, ceilings and headroom are ConfigErrors."""
        with pytest.raises(ConfigError, match="finite number"):
            CostBudget(*args, **kw)


class TestParsing:
    """--llm-prices and --max-cost."""

    @pytest.mark.parametrize(
        ("text", "prices"),
        [
            ("0.15,0.60", (0.15, 0.60)),
            (" 3 , 15 ", (3.0, 15.0)),
            ("0,0", (0.0, 0.0)),
        ],
    )
    def test_prices(self, text: str, prices: tuple[float, float]) -> None:
        """PROMPT,COMPLETION per million tokens."""
        assert parse_prices(text) == prices

    @pytest.mark.parametrize("text", ["", "0.15", "0.15,0.60,1", "a,b", "-1,2", "1,inf", "1;2"])
    def test_bad_prices(self, text: str) -> None:
        """Anything else is a ConfigError that shows the form."""
        with pytest.raises(ConfigError, match=r"0\.15,0\.60"):
            parse_prices(text)

    @pytest.mark.parametrize(("text", "cost"), [("5.00", 5.0), ("$5", 5.0), (" 0.25 ", 0.25)])
    def test_cost(self, text: str, cost: float) -> None:
        """A positive number, with or without a dollar sign."""
        assert parse_cost(text) == cost

    @pytest.mark.parametrize("text", ["", "0", "-1", "five", "nan", "inf", "5 EUR"])
    def test_bad_cost(self, text: str) -> None:
        """Anything else is a ConfigError."""
        with pytest.raises(ConfigError, match="cost ceiling"):
            parse_cost(text)
