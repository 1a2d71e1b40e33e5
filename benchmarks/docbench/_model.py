"""
The arithmetic of the benchmark: stage capacities, the theoretical bound, rate-limit
utilisation and the worker-count advisor.  Pure functions, so the tests can check them.

The bound of a configuration is the brief's steady-state rate (items/s)::

    min( min(ocr_workers, cores) / t_ocr,                 # OCR, one engine per core
         (limit / period) / llm_calls_per_item,           # the shared rate limit
         min over LLM stages s of workers_s / (latency * calls_s) )   # LLM concurrency

A run of N items also pays an unavoidable fill and drain (the first item must cross every
stage before the bottleneck, the last one every stage after it), so `min_makespan` gives
the shortest possible run of N items under the same capacities, and ``N / min_makespan``
is the bound a finite run is held to.  It tends to the steady bound as N grows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LLM_STAGES",
    "Advice",
    "Bound",
    "Capacities",
    "Config",
    "advise",
    "bound",
    "max_in_window",
    "min_makespan",
    "rate_utilisation",
]

LLM_STAGES = ("correct", "fix", "structure")


@dataclass(frozen=True)
class Capacities:
    """
    Single-thread costs of the stages, measured by the sequential baseline.

    Attributes:
        t_engine: seconds to build one OCR engine.
        t_load: seconds to load one page.
        t_preprocess: seconds to preprocess one page.
        t_ocr: seconds of OCR per page, one thread.
        latency: the server's configured latency per LLM call (the bound uses it: a real
            call can only be slower).
        call_seconds: the mean measured duration of one LLM call (the advisor uses it).
        calls: LLM calls per item, by stage.
        cores: CPU cores usable by this process.
    """

    t_engine: float
    t_load: float
    t_preprocess: float
    t_ocr: float
    latency: float
    call_seconds: float
    calls: Mapping[str, float]
    cores: int

    @property
    def ocr_rate(self) -> float:
        """Pages per second of one OCR thread."""
        return 1.0 / self.t_ocr if self.t_ocr > 0 else math.inf

    @property
    def calls_per_item(self) -> float:
        """LLM calls per item, all stages."""
        return float(sum(self.calls.values()))

    def to_json(self) -> dict[str, object]:
        return {
            "t_engine": self.t_engine,
            "t_load": self.t_load,
            "t_preprocess": self.t_preprocess,
            "t_ocr": self.t_ocr,
            "ocr_rate_1_thread": self.ocr_rate,
            "latency": self.latency,
            "call_seconds": self.call_seconds,
            "calls": dict(self.calls),
            "calls_per_item": self.calls_per_item,
            "cores": self.cores,
        }


@dataclass(frozen=True)
class Config:
    """
    Worker counts of one run: OCR threads, workers of *each* LLM stage, and the rate limit
    (``(limit, period)`` or ``None``).
    """

    ocr: int
    llm: int
    rate: tuple[int, float] | None = None

    def label(self) -> str:
        rate = f" rate={self.rate[0]}/{self.rate[1]:g}s" if self.rate else ""
        return f"ocr={self.ocr} llm={self.llm}{rate}"


@dataclass(frozen=True)
class Bound:
    """
    The three terms of the steady-state bound, in items/s.
    """

    ocr: float
    llm_rate: float
    llm_concurrency: float

    @property
    def value(self) -> float:
        """The bound: the smallest term."""
        return min(self.ocr, self.llm_rate, self.llm_concurrency)

    @property
    def limiter(self) -> str:
        """Which term binds: ``ocr``, ``llm-rate`` or ``llm-concurrency``."""
        terms = {
            "ocr": self.ocr,
            "llm-rate": self.llm_rate,
            "llm-concurrency": self.llm_concurrency,
        }
        return min(terms, key=lambda name: terms[name])

    @property
    def regime(self) -> str:
        """``ocr`` or ``llm``: the stage that should be the bottleneck."""
        return "ocr" if self.limiter == "ocr" else "llm"

    def to_json(self) -> dict[str, object]:
        return {
            "ocr": self.ocr,
            "llm_rate": _finite(self.llm_rate),
            "llm_concurrency": _finite(self.llm_concurrency),
            "value": self.value,
            "limiter": self.limiter,
            "regime": self.regime,
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def bound(cap: Capacities, config: Config) -> Bound:
    """
    The steady-state bound of ``config`` on this machine.

    Args:
        cap: the measured capacities.
        config: the worker counts and rate limit.

    Returns:
        The three terms; `Bound.value` is the bound.
    """
    ocr = min(config.ocr, cap.cores) * cap.ocr_rate
    if config.rate is not None and cap.calls_per_item > 0:
        limit, period = config.rate
        rate = limit / period / cap.calls_per_item
    else:
        rate = math.inf
    concurrency = min(
        (config.llm / (cap.latency * calls) for calls in cap.calls.values() if calls > 0),
        default=math.inf,
    )
    if cap.latency <= 0:
        concurrency = math.inf
    return Bound(ocr=ocr, llm_rate=rate, llm_concurrency=concurrency)


def min_makespan(cap: Capacities, config: Config, n: int) -> float:
    """
    The shortest possible run of ``n`` items: the bottleneck's work plus the fill before
    it and the drain after it, each the single-item time of the other stages.

    Every term is a lower bound on the run time, so their maximum is too.  Engine start-up
    is counted once (the engines are built in parallel, inside the timed run).

    Args:
        cap: the measured capacities.
        config: the worker counts and rate limit.
        n: the number of items.

    Returns:
        Seconds.
    """
    llm = [s for s in LLM_STAGES if cap.calls.get(s, 0) > 0]
    before_ocr = cap.t_engine + cap.t_load + cap.t_preprocess
    before_llm = before_ocr + cap.t_ocr
    tail = cap.latency * len(llm)
    terms = [before_ocr + n * cap.t_ocr / max(1, min(config.ocr, cap.cores, n)) + tail]
    if config.rate is not None and llm:
        limit, period = config.rate
        calls = math.ceil(n * cap.calls_per_item)
        # The server admits ``limit`` calls in any window of ``period`` (a sliding
        # window, not calls spaced ``period / limit`` apart): the first ``limit`` go at
        # once, and call k waits k // limit whole periods.  Spacing every call made this
        # term too long for a run of a few windows, and the run beat its "bound" (1.05
        # of it at 12 calls of 3 a window).
        terms.append(before_llm + (max(0, calls - 1) // limit) * period + cap.latency)
    for i, stage in enumerate(llm):
        work = math.ceil(n * cap.calls[stage] / config.llm) * cap.latency
        terms.append(before_llm + i * cap.latency + work + (len(llm) - 1 - i) * cap.latency)
    return max(terms)


def rate_utilisation(
    arrivals: Sequence[float], limit: int, period: float, *, trim: float = 0.1
) -> float:
    """
    The mean number of calls in a window of ``period`` over the steady part of the run, as
    a fraction of ``limit``.

    The steady part drops the first and last ``trim`` of the calls (fill and drain, however
    sparse).  Every window ``[a, a + period)`` from its first call to its last counts
    (all calls are counted in them), weighted alike: the mean
    is exact (an integral over ``a``, not a sample), and it is right whatever the calls'
    pattern, evenly spaced or in bursts of a window's worth (counting calls between the
    first and the last one would reward a burst that ends just inside the steady part).

    Args:
        arrivals: call arrival times in seconds (any order).
        limit: the most calls in any window of ``period``.
        period: the window in seconds.
        trim: the fraction of the calls dropped at each end.

    Returns:
        The utilisation, or NaN unless the steady part is longer than one window.
    """
    times = sorted(arrivals)
    if len(times) < 2:
        return math.nan
    drop = int(trim * len(times))
    # The window starts a in [first, last]: windows from the steady part's first call to
    # its last.
    first, last = times[drop], times[len(times) - 1 - drop] - period
    if last <= first:
        return math.nan
    # A call at t is in [a, a + period) for a in (t - period, t]: its share of [first, last].
    covered = sum(max(0.0, min(last, t) - max(first, t - period)) for t in times)
    return covered / (last - first) / limit


def max_in_window(arrivals: Sequence[float], period: float) -> int:
    """
    The most calls that arrived within any window of ``period`` seconds (``[t, t+period)``).
    """
    times = sorted(arrivals)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class Advice:
    """
    Worker counts recommended for this machine and this latency, and what to expect.

    Attributes:
        config: the recommended configuration.
        predicted: the steady bound of that configuration, items/s.
        bottleneck: the term expected to bind (`Bound.limiter`).
        reasons: one line per decision.
    """

    config: Config
    predicted: float
    bottleneck: str
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "ocr": self.config.ocr,
            "llm": self.config.llm,
            "rate": self.config.rate,
            "predicted": self.predicted,
            "bottleneck": self.bottleneck,
            "reasons": list(self.reasons),
        }


def advise(
    cap: Capacities,
    rate: tuple[int, float] | None = None,
    *,
    headroom: float = 1.25,
    llm_headroom: float = 2.0,
    max_llm: int = 64,
) -> Advice:
    """
    Recommend worker counts from measured capacities.

    OCR is CPU work: one engine per core is the most that helps, and fewer suffice when
    the rate limit caps the pipeline below that.  The LLM stages wait on the network:
    each needs about ``rate * call time * calls`` calls in flight (Little's law) to keep
    up.  OCR gets ``headroom`` spare; the LLM stages get ``llm_headroom``, as an LLM
    worker is a cheap coroutine and a rate limit loses every slot no call is waiting for.
    (1.25 and 2 are judgements, not measurements.)

    Args:
        cap: the measured capacities.
        rate: the LLM rate limit ``(limit, period)``, or ``None``.
        headroom: spare OCR capacity when OCR is not the bottleneck.
        llm_headroom: spare LLM concurrency.
        max_llm: the most workers per LLM stage it will recommend.

    Returns:
        The advice.
    """
    reasons = []
    cpu_per_item = cap.t_load + cap.t_preprocess + cap.t_ocr
    cpu_rate = cap.cores / cpu_per_item if cpu_per_item > 0 else math.inf
    reasons.append(
        f"CPU: {cap.cores} cores / {cpu_per_item:.3f} s per page "
        f"(load+preprocess+ocr) = {cpu_rate:.3f} pages/s at most"
    )
    target = cpu_rate
    if rate is not None and cap.calls_per_item > 0:
        rate_items = rate[0] / rate[1] / cap.calls_per_item
        reasons.append(
            f"rate limit: {rate[0]}/{rate[1]:g}s / {cap.calls_per_item:g} calls "
            f"per page = {rate_items:.3f} pages/s"
        )
        target = min(target, rate_items)
    if target < cpu_rate:
        ocr = min(cap.cores, max(1, math.ceil(target * headroom / cap.ocr_rate)))
        reasons.append(
            f"OCR workers {ocr}: enough for {target:.3f} pages/s with "
            f"{headroom:g}x headroom; more would only idle"
        )
    else:
        ocr = cap.cores
        reasons.append(f"OCR workers {ocr}: one engine per core; more only time-slice")
    calls = max((c for c in cap.calls.values()), default=1.0)
    need = target * cap.call_seconds * calls * llm_headroom if math.isfinite(target) else 1.0
    llm = max(1, math.ceil(need))
    if target < cpu_rate:
        # The rate limit binds: a slot with no call waiting at the limiter is lost for
        # good, so each stage keeps one more call queued there besides those in flight.
        llm += 1
    llm = min(max_llm, llm)
    reasons.append(
        f"LLM workers per stage {llm}: {target:.3f} pages/s x "
        f"{cap.call_seconds:.2f} s per call x {calls:g} calls x {llm_headroom:g}"
        + (" + 1 waiting at the rate limit" if target < cpu_rate else "")
    )
    config = Config(ocr=ocr, llm=llm, rate=rate)
    b = bound(cap, config)
    reasons.append(f"expected bottleneck: {b.limiter} at {b.value:.3f} pages/s")
    return Advice(config=config, predicted=b.value, bottleneck=b.limiter, reasons=reasons)
