"""
A cost ceiling: count what LLM calls cost, and say when the next one must not start.
"""

from __future__ import annotations

import math

from ._exceptions import BudgetExceeded, ConfigError, StageError

__all__ = ["BudgetExceeded", "CostBudget", "CostReservation", "parse_cost", "parse_prices"]


class CostBudget:
    """
    Spend at most ``max_cost`` on tokens priced per million.

    Reserve a call's worst-case cost before sending it (`reserve`: prompt tokens plus
    ``max_tokens``), and settle it with the ``usage`` the server returns
    (`CostReservation.settle`).  A reservation that would take the spend plus what is
    reserved past ``max_cost`` is refused with `BudgetExceeded`, so the calls in flight can
    never overshoot together.  The guarantee: the final spend is at most ``max_cost`` plus
    the cost of the tokens calls used beyond what they reserved, which is nothing when
    every reservation is an upper bound (a server honours ``max_tokens``).

    `closed` says when the next *page* must not start: once a call was refused, or once
    the spend and reservations come within ``headroom`` of the ceiling.  Set ``headroom``
    to what the pages in flight may still need, so that they usually finish; a call that
    still does not fit is refused rather than allowed to overshoot.

    Args:
        prompt_price: the price of a million prompt tokens.
        completion_price: the price of a million completion tokens.
        max_cost: the ceiling, in the prices' currency; ``None`` counts without a ceiling.
        headroom: close this much below the ceiling (default 0).

    Raises:
        ConfigError: a price, the ceiling or the headroom is negative or not finite.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        prompt_price: float,
        completion_price: float,
        max_cost: float | None = None,
        *,
        headroom: float = 0.0,
    ) -> None:
        for name, value in (
            ("prompt price", prompt_price),
            ("completion price", completion_price),
            ("max cost", 0.0 if max_cost is None else max_cost),
            ("headroom", headroom),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"the {name} must be a finite number >= 0, got {value}")
        self.prompt_price = prompt_price
        self.completion_price = completion_price
        self.max_cost = max_cost
        self.headroom = headroom
        self.spent = 0.0
        self.reserved = 0.0
        self.refused = 0
        self.reservations = 0
        self.reserved_ever = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """
        Returns:
            What the tokens cost at this budget's prices.
        """
        return (prompt_tokens * self.prompt_price + completion_tokens * self.completion_price) / 1e6

    @property
    def remaining(self) -> float:
        """
        What is left under the ceiling after the spend and the reservations (``inf``
        without a ceiling; negative after an overshoot).
        """
        if self.max_cost is None:
            return math.inf
        return self.max_cost - self.spent - self.reserved

    @property
    def closed(self) -> bool:
        """
        ``True`` once no new page should start (a call was refused, or `remaining` is
        within ``headroom`` of nothing).
        """
        return self.refused > 0 or (self.max_cost is not None and self.remaining <= self.headroom)

    def reserve(self, prompt_tokens: int, completion_tokens: int) -> CostReservation:
        """
        Reserve the worst-case cost of one call.

        Args:
            prompt_tokens: the prompt's tokens (an estimate; err high).
            completion_tokens: the most the reply may use (``max_tokens``).

        Raises:
            BudgetExceeded: the reservation does not fit under the ceiling.
        """
        cost = self.cost(prompt_tokens, completion_tokens)
        if self.max_cost is not None and cost > self.max_cost:
            raise StageError(
                f"a call that may cost {cost:.6g} can never fit under the cost ceiling of "
                f"{self.max_cost:g}: raise the ceiling (CostBudget's max_cost, the app's "
                "--max-cost) or lower the call's max_tokens"
            )
        if cost > self.remaining:
            self.refused += 1
            raise BudgetExceeded(
                f"the cost ceiling of {self.max_cost:g} would be passed: a call that may "
                f"cost {cost:.6g} does not fit in the {max(0.0, self.remaining):.6g} left "
                f"(spent {self.spent:.6g}, {self.reserved:.6g} reserved by calls in flight)"
            )
        self.reserved += cost
        self.reservations += 1
        self.reserved_ever += cost
        return CostReservation(self, cost, prompt_tokens, completion_tokens)

    @property
    def mean_reservation(self) -> float | None:
        """The mean worst-case cost of the calls reserved so far, or ``None`` before one."""
        return self.reserved_ever / self.reservations if self.reservations else None

    def charge(self, prompt_tokens: int, completion_tokens: int) -> None:
        """
        Count tokens used without a reservation.
        """
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.spent += self.cost(prompt_tokens, completion_tokens)

    def __repr__(self) -> str:
        return (
            f"CostBudget({self.prompt_price:g}, {self.completion_price:g}, "
            f"max_cost={self.max_cost}, spent={self.spent:.6g})"
        )


class CostReservation:
    """
    The worst-case cost of one call, held by a `CostBudget` until `settle`.

    .. versionadded:: 0.1
    """

    __slots__ = ("_budget", "completion_tokens", "cost", "prompt_tokens", "settled")

    def __init__(
        self, budget: CostBudget, cost: float, prompt_tokens: int, completion_tokens: int
    ) -> None:
        self._budget = budget
        self.cost = cost
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.settled = False

    def settle(
        self, prompt_tokens: int | None = None, completion_tokens: int | None = None
    ) -> None:
        """
        Release the reservation and count the tokens really used: the ``usage`` of the
        reply, 0 and 0 for a call the server refused without charging, or nothing (the
        worst case reserved) when it is unknown, e.g. after a timeout.

        Raises:
            RuntimeError: the reservation is settled already.
        """
        if self.settled:
            raise RuntimeError("this cost reservation is settled already")
        self.settled = True
        budget = self._budget
        budget.reserved = max(0.0, budget.reserved - self.cost)
        budget.charge(
            self.prompt_tokens if prompt_tokens is None else prompt_tokens,
            self.completion_tokens if completion_tokens is None else completion_tokens,
        )


def parse_prices(text: str) -> tuple[float, float]:
    """
    Parse ``"0.15,0.60"`` (prompt, completion per million tokens) into two prices.

    Raises:
        ConfigError: the text is not two finite numbers >= 0.
    """
    parts = text.split(",")
    try:
        prices = tuple(float(part) for part in parts)
    except ValueError:
        prices = ()
    if len(prices) != 2 or not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ConfigError(
            f"cannot read prices {text!r}: write PROMPT,COMPLETION per million tokens, "
            "e.g. 0.15,0.60"
        )
    return prices[0], prices[1]


def parse_cost(text: str) -> float:
    """
    Parse ``"5.00"`` (or ``"$5"``) into a cost ceiling.

    Raises:
        ConfigError: the text is not a finite number > 0.
    """
    try:
        cost = float(text.strip().removeprefix("$"))
    except ValueError:
        cost = math.nan
    if not (math.isfinite(cost) and cost > 0):
        raise ConfigError(f"cannot read cost ceiling {text!r}: write a number > 0, e.g. 5.00")
    return cost
