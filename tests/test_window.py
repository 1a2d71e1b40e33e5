from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncpipe._window import Entry, Window


def window(limit: int, period: int, burst: int = 1) -> Window:
    """A Window with RateLimit's spacing, on exact (Fraction) time."""
    interval = F(period, limit)
    return Window(limit, F(period), interval, (burst - 1) * interval)


def take(w: Window, weight: int, now: F) -> tuple[F, Entry]:
    """Admit ``weight`` at the first time >= ``now`` the window allows; return (time, entry)."""
    at = max(now, w.ready_at(weight, now))
    assert w.ready_at(weight, at) <= at
    return at, w.admit(weight, at)


def heaviest_window(events: Sequence[tuple[F, int]], period: F) -> int:
    """The most units any half-open window [a, a + period) holds."""
    times = sorted(events)
    best = 0
    for i, (start, _) in enumerate(times):
        best = max(best, sum(u for t, u in times[i:] if t < start + period))
    return best


class TestSpacing:
    """Rule 2: units are spread evenly, period / limit seconds per unit."""

    def test_calls_are_spaced(self) -> None:
        """Weight-1 acquisitions go one interval apart, from t=0 (no start-up burst)."""
        w = window(4, 4)
        times = [take(w, 1, F(0))[0] for _ in range(6)]
        assert times == [0, 1, 2, 3, 4, 5]

    def test_full_rate(self) -> None:
        """Spacing runs at exactly the limit's rate: the window rule binds, never over it."""
        w = window(4, 4)
        times = [take(w, 1, F(0))[0] for _ in range(41)]
        assert times[-1] == 40  # 40 intervals for 41 calls: utilisation 1
        assert heaviest_window([(t, 1) for t in times], F(4)) == 4

    def test_margin_costs_only_its_share(self) -> None:
        """With the window widened by a margin m, ``limit`` units go every period + m."""
        w = Window(4, F(41, 10), F(1))  # RateLimit(4, 4, margin=0.1)
        times = [take(w, 1, F(0))[0] for _ in range(9)]
        assert times == [0, 1, 2, 3, F(41, 10), F(51, 10), F(61, 10), F(71, 10), F(82, 10)]

    def test_weight_pays_after(self) -> None:
        """A heavy acquisition goes at once and the next one waits its share of time."""
        w = window(10, 10)  # one unit per second
        assert take(w, 4, F(0))[0] == 0
        assert take(w, 1, F(0))[0] == 4
        assert take(w, 1, F(0))[0] == 5

    def test_burst_lets_units_go_together(self) -> None:
        """With burst=b, b units go at t=0 before spacing applies."""
        w = window(10, 10, burst=3)
        assert [take(w, 1, F(0))[0] for _ in range(4)] == [0, 0, 0, 1]


class TestWindowRule:
    """Rule 1: no half-open window of ``period`` holds more than ``limit`` units."""

    def test_full_weight_waits_a_period(self) -> None:
        """Two acquisitions of the whole limit go exactly one period apart, not sooner."""
        w = window(100, 10, burst=100)
        assert take(w, 100, F(0))[0] == 0
        assert w.ready_at(100, F(5)) == 10
        assert w.ready_at(1, F(9)) == 10
        assert take(w, 100, F(9))[0] == 10

    def test_only_enough_entries_expire(self) -> None:
        """The wait ends when enough old units leave the window, not when all do."""
        w = window(10, 10, burst=10)
        for t, units in [(0, 3), (2, 3), (4, 4)]:
            assert take(w, units, F(t))[0] == t
        assert w.ready_at(3, F(5)) == 10  # the 3 units of t=0 make room
        assert w.ready_at(6, F(5)) == 12  # 6 needs t=0 and t=2 gone


class TestSettlement:
    """Refunds give units back at once; charges count at once and delay what follows."""

    def test_refund_frees_the_window_and_spacing(self) -> None:
        """Settling 10 reserved units at 2 frees 8 at once."""
        w = window(10, 10, burst=10)
        _, entry = take(w, 10, F(0))
        assert w.ready_at(8, F(1)) == 10
        w.refund(entry, 8, F(1))
        assert w.in_window == 2
        assert w.ready_at(8, F(1)) <= 1
        assert w.ready_at(9, F(1)) == 10

    def test_refund_after_expiry_changes_nothing(self) -> None:
        """A refund of an entry that already left the window does not go negative."""
        w = window(10, 10, burst=10)
        _, entry = take(w, 5, F(0))
        take(w, 3, F(11))
        w.refund(entry, 5, F(12))
        assert w.in_window == 3

    def test_restamp_counts_the_units_from_when_they_go(self) -> None:
        """Units taken at t=0 but sent at t=5 hold the window until t=15, in time order."""
        w = window(2, 10, burst=2)
        _, early = take(w, 1, F(0))
        take(w, 1, F(1))
        w.restamp(early, F(5))
        assert [e.time for e in w.log] == [1, 5]
        assert w.ready_at(1, F(10)) == 11  # not 10: the first unit went at 5
        assert w.ready_at(2, F(11)) == 15

    def test_restamp_after_expiry_counts_again(self) -> None:
        """An entry that already left the log is counted again from its new time."""
        w = window(2, 10, burst=2)
        _, entry = take(w, 1, F(0))
        w.restamp(entry, F(12))
        assert w.in_window == 1 and w.ready_at(2, F(13)) == 22

    def test_charge_delays_later_units(self) -> None:
        """Excess charged at t=3 stays in the window until t=13."""
        w = window(10, 10, burst=10)
        take(w, 2, F(0))
        w.charge(9, F(3))
        assert w.in_window == 11  # over: the excess was spent already
        assert w.ready_at(1, F(4)) == 10  # the 2 units of t=0 leave
        assert w.ready_at(2, F(4)) == 13  # 2 more need the excess gone


class TestPauseAndServer:
    """Rules 3 and 4: a global pause, and the server's remaining/reset counts."""

    def test_pause_holds_everything(self) -> None:
        """Nothing goes before the pause ends; a shorter pause does not shorten it."""
        w = window(10, 10, burst=10)
        w.pause(F(5), F(1))
        w.pause(F(1), F(2))
        assert w.ready_at(1, F(2)) == 6
        assert take(w, 1, F(2))[0] == 6

    def test_remaining_without_limit_waits_for_reset(self) -> None:
        """remaining=3, reset=5: three units now, the fourth at the reset."""
        w = window(100, 10, burst=100)
        w.observe(3, F(5), None, F(0))
        assert [take(w, 1, F(0))[0] for _ in range(4)] == [0, 0, 0, 5]

    def test_remaining_refills_linearly(self) -> None:
        """remaining=0 of 10, reset=5: the server refills 2 units a second."""
        w = window(100, 10, burst=100)
        w.observe(0, F(5), 10, F(0))
        assert take(w, 4, F(0))[0] == 2
        assert take(w, 2, F(0))[0] == 3

    def test_outstanding_units_count_against_remaining(self) -> None:
        """Units reserved and not settled come off what the server says is left."""
        w = window(100, 10, burst=100)
        w.outstanding = 2
        w.observe(3, F(5), None, F(0))
        assert take(w, 1, F(0))[0] == 0
        assert take(w, 1, F(0))[0] == 5

    def test_latest_answer_wins(self) -> None:
        """A later answer replaces the last one, looser or stricter."""
        w = window(100, 10, burst=100)
        w.observe(1, F(5), None, F(0))
        take(w, 1, F(0))
        assert w.ready_at(1, F(1)) == 5
        w.observe(50, F(5), None, F(1))  # the server has refilled meanwhile
        assert w.ready_at(1, F(1)) <= 1
        w.observe(0, F(8), None, F(2))
        assert w.ready_at(1, F(2)) == 10
        assert w.ready_at(1, F(10)) <= 10  # after the reset the server's word lapses


@dataclass(order=True)
class _Settle:
    time: F
    seq: int
    entry: Entry = field(compare=False)
    estimate: int = field(compare=False)
    actual: int = field(compare=False)


@dataclass
class Run:
    """What a simulation did: admissions (entries at their settled weight) and charges."""

    admissions: list[tuple[int, Entry]] = field(default_factory=list)  # (order, entry)
    charges: list[tuple[int, F, int]] = field(default_factory=list)  # (order, time, units)

    def events(self) -> list[tuple[int, F, int, bool]]:
        """(order, time, units, is_admission), in the order they happened."""
        out = [(n, e.time, e.weight, True) for n, e in self.admissions]
        return sorted(out + [(n, t, u, False) for n, t, u in self.charges])


def simulate(
    limit: int,
    period: int,
    burst: int,
    calls: Sequence[tuple[int, int, int | None, int]],
    pauses: Sequence[tuple[int, int]],
    observes: Sequence[tuple[int, int, int, int | None]] = (),
) -> Run:
    """
    Run a FIFO queue of calls through a Window on a simulated clock.

    ``calls`` are (arrival quarter-seconds, weight, actual or None, latency); a call with an
    actual is a reservation settled ``latency`` quarter-seconds after admission.  Pauses
    are (time, seconds) and server answers (time, remaining, reset, limit), in quarters.
    """
    w = window(limit, period, burst)
    queue = sorted(
        (F(arrival, 4), n, weight, actual, F(latency, 4))
        for n, (arrival, weight, actual, latency) in enumerate(calls)
    )
    pending_pauses = sorted((F(t, 4), F(s, 4)) for t, s in pauses)
    pending_observes = sorted(
        ((F(t, 4), r, F(reset, 4), lim) for t, r, reset, lim in observes), key=lambda o: o[0]
    )
    settles: list[_Settle] = []
    run = Run()
    order = 0
    now = F(0)
    for _ in range(10_000):
        while settles and settles[0].time <= now:
            s = heapq.heappop(settles)
            if s.actual < s.estimate:
                w.refund(s.entry, s.estimate - s.actual, now)
            elif s.actual > s.estimate:
                w.charge(s.actual - s.estimate, now)
                run.charges.append((order, now, s.actual - s.estimate))
                order += 1
        while pending_pauses and pending_pauses[0][0] <= now:
            w.pause(pending_pauses.pop(0)[1], now)
        while pending_observes and pending_observes[0][0] <= now:
            _, remaining, reset, server_limit = pending_observes.pop(0)
            w.observe(remaining, reset, server_limit, now)
        if not queue and not settles:
            break
        wakes = [settles[0].time] if settles else []
        wakes += [pending_pauses[0][0]] if pending_pauses else []
        wakes += [pending_observes[0][0]] if pending_observes else []
        if queue:
            arrival, n, weight, actual, latency = queue[0]
            at = max(arrival, w.ready_at(weight, now))
            assert math.isfinite(at)
            if at <= now:
                queue.pop(0)
                entry = w.admit(weight, now)
                run.admissions.append((order, entry))
                order += 1
                if actual is not None:
                    heapq.heappush(settles, _Settle(now + latency, n, entry, weight, actual))
                continue
            wakes.append(at)
        now = min(wakes)
    else:
        pytest.fail("the simulation did not finish in 10000 steps")
    return run


calls_strategy = st.lists(
    st.tuples(
        st.integers(0, 80),
        st.integers(1, 30),
        st.one_of(st.none(), st.integers(0, 45)),
        st.integers(0, 12),
    ),
    min_size=1,
    max_size=25,
)


class TestProperty:
    """No half-open window ever holds more units than the rules allow."""

    @settings(max_examples=300, deadline=None)
    @given(
        limit=st.integers(1, 30),
        period=st.integers(1, 12),
        burst_share=st.floats(0, 1),
        calls=calls_strategy,
        pauses=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 20)), max_size=3),
        observes=st.lists(
            st.tuples(
                st.integers(0, 80),
                st.integers(0, 30),
                st.integers(1, 40),
                st.one_of(st.none(), st.integers(0, 60)),
            ),
            max_size=3,
        ),
    )
    def test_never_over_when_estimates_hold(
        self,
        limit: int,
        period: int,
        burst_share: float,
        calls: list[tuple[int, int, int | None, int]],
        pauses: list[tuple[int, int]],
        observes: list[tuple[int, int, int, int | None]],
    ) -> None:
        """With every actual at most its estimate, every window holds at most ``limit``,
        whatever pauses and server answers come, and every call gets through."""
        calls = [
            (a, min(w, limit), None if u is None else min(u, w, limit), lat)
            for a, w, u, lat in calls
        ]
        burst = 1 + int(burst_share * (limit - 1))
        run = simulate(limit, period, burst, calls, pauses, observes)
        assert len(run.admissions) == len(calls)
        assert run.charges == []
        events = [(t, u) for _, t, u, _ in run.events()]
        assert heaviest_window(events, F(period)) <= limit

    @settings(max_examples=300, deadline=None)
    @given(
        limit=st.integers(1, 30),
        period=st.integers(1, 12),
        burst_share=st.floats(0, 1),
        calls=calls_strategy,
    )
    def test_overshoot_is_only_late_excess(
        self,
        limit: int,
        period: int,
        burst_share: float,
        calls: list[tuple[int, int, int | None, int]],
    ) -> None:
        """In any window, the units up to its last admission are at most ``limit``."""
        calls = [(a, min(w, limit), u, lat) for a, w, u, lat in calls]
        burst = 1 + int(burst_share * (limit - 1))
        run = simulate(limit, period, burst, calls, [])
        assert len(run.admissions) == len(calls)
        events = run.events()
        per = F(period)
        for _, start, _, _ in events:
            inside = [(n, u, adm) for n, t, u, adm in events if start <= t < start + per]
            last = max((n for n, _, adm in inside if adm), default=None)
            if last is not None:
                # What came after the last admission can only be excess already spent.
                assert sum(u for n, u, _ in inside if n <= last) <= limit

    def test_simulation_sees_overshoot(self) -> None:
        """The checker can fail: a late excess does overshoot its window."""
        run = simulate(10, 10, 10, [(0, 5, 5, 0), (0, 5, 15, 4)], [])
        events = [(t, u) for _, t, u, _ in run.events()]
        assert heaviest_window(events, F(10)) == 20
