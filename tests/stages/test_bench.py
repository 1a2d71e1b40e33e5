"""
Tests of the benchmark harness: its bound, utilisation, advisor and report logic, and one
end-to-end smoke run (slow: it runs the real OCR).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from asyncpipe import StageError

ROOT = Path(__file__).resolve().parents[2]
# The harness lives in benchmarks/, outside the installed packages.
sys.path.insert(0, str(ROOT / "benchmarks"))

from docbench import (  # noqa: E402
    Capacities,
    Config,
    RateCheck,
    RayComparison,
    advise,
    bound,
    max_in_window,
    min_makespan,
    rate_utilisation,
    run_rate_check,
)
from docbench._main import (  # noqa: E402
    _advice_checks,
    _parser,
    add_bound,
    bound_pages,
    goals_verdict,
    llm_bound_rate,
    main,
    measured_limiter,
    ocr_capacities,
    run_order,
    sweep_configs,
    too_small,
)
from docbench._model import Advice  # noqa: E402
from docbench._ocrbound import (  # noqa: E402
    OcrComparison,
    OcrTiming,
    decode_pages,
    ocr_on_engines,
    ocr_report,
    prepare_page,
)
from docbench._report import (  # noqa: E402
    bound_warnings,
    compare_baselines,
    failed_runs,
    format_table,
    headline,
    regime_report,
    summary_line,
)
from docbench._runners import RunResult  # noqa: E402

ONE_CALL_EACH = {"correct": 1.0, "fix": 1.0, "structure": 1.0}


def caps(t_ocr: float = 2.0, latency: float = 1.0, cores: int = 2) -> Capacities:
    return Capacities(
        t_engine=0.5,
        t_load=0.0,
        t_preprocess=0.0,
        t_ocr=t_ocr,
        latency=latency,
        call_seconds=latency,
        calls=ONE_CALL_EACH,
        cores=cores,
    )


class TestBound:
    def test_ocr_term_is_capped_at_cores(self) -> None:
        """Four OCR workers on two cores count as two."""
        b = bound(caps(t_ocr=2.0), Config(ocr=4, llm=32))
        assert b.ocr == pytest.approx(1.0)
        assert b.limiter == "ocr"
        assert b.regime == "ocr"

    def test_rate_term_divides_by_calls_per_item(self) -> None:
        """60 calls per 30 s at 3 calls per item is 2/3 item/s."""
        b = bound(caps(t_ocr=0.1), Config(ocr=2, llm=32, rate=(60, 30.0)))
        assert b.llm_rate == pytest.approx(2 / 3)
        assert b.value == pytest.approx(2 / 3)
        assert b.limiter == "llm-rate"
        assert b.regime == "llm"

    def test_concurrency_term(self) -> None:
        """One worker per stage at 2 s per call is 0.5 item/s, whatever the OCR."""
        b = bound(caps(t_ocr=0.1, latency=2.0), Config(ocr=2, llm=1))
        assert b.llm_concurrency == pytest.approx(0.5)
        assert b.limiter == "llm-concurrency"

    def test_a_stage_with_two_calls_halves_its_term(self) -> None:
        """A stage making two calls per item (a repair) needs twice the workers."""
        cap = Capacities(
            0.0, 0.0, 0.0, 0.1, 1.0, 1.0, {"correct": 1.0, "fix": 1.0, "structure": 2.0}, 2
        )
        assert bound(cap, Config(ocr=2, llm=4)).llm_concurrency == pytest.approx(2.0)

    def test_no_rate_limit_is_infinite(self) -> None:
        """Without a limit the rate term never binds."""
        assert math.isinf(bound(caps(), Config(ocr=1, llm=1)).llm_rate)


class TestMinMakespan:
    def test_ocr_bound_adds_fill_and_drain(self) -> None:
        """OCR-bound: engine + n OCR times / workers + one call per LLM stage."""
        t = min_makespan(caps(t_ocr=2.0, latency=1.0), Config(ocr=2, llm=32), 10)
        assert t == pytest.approx(0.5 + 10 * 2.0 / 2 + 3 * 1.0)

    def test_tends_to_the_steady_bound(self) -> None:
        """n / min_makespan approaches the steady bound as n grows."""
        cap, config = caps(), Config(ocr=1, llm=1, rate=(100, 120.0))
        rate = 1e6 / min_makespan(cap, config, 1_000_000)
        assert rate == pytest.approx(bound(cap, config).value, rel=1e-3)

    def test_rate_bound(self) -> None:
        """Rate-bound: the first item's OCR, then a whole period per window's worth of calls."""
        t = min_makespan(caps(t_ocr=0.1), Config(ocr=2, llm=32, rate=(10, 10.0)), 10)
        assert t == pytest.approx(0.5 + 0.1 + 2 * 10.0 + 1.0)

    def test_rate_bound_lets_a_window_through_at_once(self) -> None:
        """12 calls at 3 per 40.5 s take 3 periods, not 11 spacings of 13.5 s (the
        reviewer's rate-limited run did 1.05 of the old bound)."""
        cap = caps(t_ocr=10.0, latency=1.0)
        t = min_makespan(cap, Config(ocr=1, llm=2, rate=(3, 40.5)), 4)
        assert t == pytest.approx(0.5 + 10.0 + 3 * 40.5 + 1.0)

    def test_concurrency_counts_whole_rounds(self) -> None:
        """Three items with two workers take two rounds of calls in each stage."""
        t = min_makespan(caps(t_ocr=0.1, latency=1.0), Config(ocr=2, llm=2), 3)
        assert t == pytest.approx(0.5 + 0.1 + 2 * 1.0 + 2 * 1.0)


class TestRateUtilisation:
    def test_evenly_spaced_calls(self) -> None:
        """Calls spaced period/(L-1) apart use (L-1)/L of the limit; period/L apart, all."""
        limit, period = 100, 50.0
        arrivals = [i * period / (limit - 1) for i in range(300)]
        assert rate_utilisation(arrivals, limit, period) == pytest.approx(0.99, rel=1e-3)
        arrivals = [i * period / limit for i in range(300)]
        assert rate_utilisation(arrivals, limit, period) == pytest.approx(1.0, rel=1e-3)

    def test_bursts_count_at_their_rate(self) -> None:
        """A window's worth at once, every period + 0.1 s: 10/10.1 of the limit."""
        arrivals = [k * 10.1 for k in range(8) for _ in range(20)]
        assert rate_utilisation(arrivals, 20, 10.0) == pytest.approx(10 / 10.1, rel=0.02)

    def test_fill_and_drain_are_trimmed(self) -> None:
        """Sparse calls at either end do not lower the steady figure."""
        steady = [10 + i * 0.5 for i in range(81)]
        arrivals = [0.0, 5.0, *steady, 60.0]
        assert rate_utilisation(arrivals, 2, 1.0) == pytest.approx(1.0, rel=0.02)

    def test_too_short_is_nan(self) -> None:
        """A steady part shorter than one window says nothing about a windowed rate."""
        assert math.isnan(rate_utilisation([0.0, 1.0], 10, 1.0))
        assert math.isnan(rate_utilisation([0.0, 1.0, 2.0], 10, 5.0))

    def test_an_over_sending_client_fails_the_check(self) -> None:
        """Calls at 2x the limit show as a window over it; at 0.8x, as utilisation."""
        fast = [i * 0.25 for i in range(120)]
        slow = [i * 0.625 for i in range(80)]
        assert max_in_window(fast, 10.0) == 40
        assert rate_utilisation(slow, 20, 10.0) == pytest.approx(0.8, rel=0.02)
        for arrivals, rejected in ((fast, 0), (slow, 0)):
            check = RateCheck(
                20,
                10.0,
                40,
                len(arrivals),
                arrivals[-1],
                max_in_window(arrivals, 10.0),
                rate_utilisation(arrivals, 20, 10.0),
                rejected,
            )
            assert not check.passed
            assert "FAIL" in check.line()

    def test_max_in_window(self) -> None:
        """The window is half-open: a call exactly one period later starts a new one."""
        assert max_in_window([0.0, 0.5, 1.0, 1.2, 1.4], 1.0) == 4
        assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
        assert max_in_window([], 1.0) == 0


class TestAdvisor:
    def test_cpu_bound_uses_every_core(self) -> None:
        """Without a rate limit OCR gets one engine per core and is the bottleneck."""
        advice = advise(caps(t_ocr=2.0, latency=1.0, cores=2))
        assert advice.config.ocr == 2
        assert advice.bottleneck == "ocr"
        # 1 page/s x 1 s per call x 1 call x 2 headroom
        assert advice.config.llm == 2
        assert advice.predicted == pytest.approx(1.0)

    def test_rate_bound_needs_fewer_ocr_workers(self) -> None:
        """Under a low rate limit one OCR worker keeps up, and the limit binds."""
        advice = advise(caps(t_ocr=0.5, cores=4), (30, 60.0))
        assert advice.config.ocr == 1
        assert advice.bottleneck == "llm-rate"
        assert advice.config.rate == (30, 60.0)
        # 1/6 page/s x 1 s x 1 call x 2 rounds up to 1, plus one call waiting at the limit
        assert advice.config.llm == 2

    def test_llm_workers_follow_latency(self) -> None:
        """Longer calls need more calls in flight (Little's law)."""
        fast = advise(caps(t_ocr=2.0, latency=0.5))
        slow = advise(caps(t_ocr=2.0, latency=4.0))
        assert slow.config.llm == 8 * fast.config.llm

    def test_llm_workers_are_capped(self) -> None:
        """The advisor never asks for more than max_llm workers per stage."""
        assert advise(caps(t_ocr=0.001, latency=10.0), max_llm=16).config.llm == 16

    def test_llm_bound_rate_caps_below_cpu(self) -> None:
        """The chosen limit caps the pipeline at 60 % of one OCR thread."""
        cap = caps(t_ocr=2.0)
        limit, period = llm_bound_rate(cap, 32)
        assert limit / period / 3 == pytest.approx(0.6 / 2.0, rel=0.01)
        assert bound(cap, Config(2, 8, (limit, period))).limiter == "llm-rate"

    def test_llm_bound_rate_spans_four_windows(self) -> None:
        """The run's calls are four times the limit: the limit binds over whole windows."""
        cap = caps(t_ocr=2.0)
        limit, period = llm_bound_rate(cap, 8)
        assert limit == 6  # 8 items x 3 calls / 4
        seconds = 8 * 3 / (limit / period)
        assert seconds / period == pytest.approx(4.0, rel=0.02)


class TestReport:
    ROWS = [  # noqa: RUF012
        {
            "name": "asyncpipe",
            "regime": "ocr",
            "ratio": 0.8,
            "config": "a",
            "items": 1,
            "items_per_s": 1.0,
        },
        {
            "name": "asyncpipe",
            "regime": "ocr",
            "ratio": 0.95,
            "config": "b",
            "items": 1,
            "items_per_s": 1.0,
        },
        {
            "name": "asyncpipe",
            "regime": "llm",
            "ratio": 0.91,
            "config": "c",
            "items": 1,
            "items_per_s": 1.0,
        },
        {
            "name": "stage-by-stage",
            "regime": "llm",
            "ratio": 0.99,
            "config": "d",
            "items": 1,
            "items_per_s": 1.0,
        },
    ]

    def test_headline_is_the_best_asyncpipe_ratio_per_regime(self) -> None:
        """Baseline rows never count toward B."""
        assert headline(self.ROWS) == {"ocr": 0.95, "llm": 0.91}

    def test_summary_line_takes_the_worse_regime(self) -> None:
        """B must hold in both regimes, so the line shows the lower one."""
        line = summary_line({"ocr": 0.95, "llm": 0.91}, 2.345, 1.0123)
        assert line == (
            "bench best_ratio_to_bound=0.910 speedup_vs_threadpool=2.35 rss_growth=1.012"
        )

    def test_summary_line_without_a_regime_is_nan(self) -> None:
        """A missing regime is not silently passed."""
        assert "best_ratio_to_bound=nan" in summary_line({"ocr": 0.99}, 2.0, 1.0)

    def test_summary_line_takes_no_ratio_above_one(self) -> None:
        """A regime whose run beat its bound makes B nan, not the other regime's ratio
        (the reviewer's run printed 1.052 beside an OCR-bound 2.317)."""
        line = summary_line({"ocr": 2.317, "llm": 0.88}, 0.86, 1.075)
        assert line.startswith("bench best_ratio_to_bound=nan ")
        assert "=nan " in summary_line({"ocr": 0.9, "llm": 1.052}, 0.86, 1.075)
        assert "=1.010 " in summary_line({"ocr": 1.01, "llm": 1.02}, 0.86, 1.075)

    def test_regime_report_says_which_bound_was_not_one(self) -> None:
        """The regimes' lines name a ratio above 1 as no bound and explain the nan."""
        first, second = regime_report({"ocr": 2.317, "llm": 0.88})
        assert "OCR-bound 2.317 (above 1: its bound was not a bound), LLM-bound 0.880" in first
        assert second.startswith("best_ratio_to_bound=nan on the last line: the OCR-bound")
        _, second = regime_report({"ocr": 0.95, "llm": 0.91})
        assert second.startswith("best_ratio_to_bound=0.910 on the last line: the lower")
        _, second = regime_report({"ocr": 0.95})
        assert "the LLM-bound regime was not run" in second

    def test_bound_warnings_name_each_run_once_and_the_bound_it_beat(self) -> None:
        """Runs above 1 are named with their pattern, OCR and LLM bounds apart."""
        rows: list[dict[str, Any]] = [
            {"name": "asyncpipe", "config": "ocr=1 llm=8", "ratio": 2.3, "limiter": "ocr"},
            {"name": "stage-by-stage", "config": "ocr=1 llm=8", "ratio": 1.7, "limiter": "ocr"},
            {"name": "asyncpipe", "config": "ocr=2 llm=1", "ratio": 0.7, "limiter": "ocr"},
            {"name": "asyncpipe", "config": "r", "ratio": 1.05, "limiter": "llm-rate"},
            {"name": "sequential", "config": "1 thread"},
        ]
        ocr, llm = bound_warnings(rows)
        assert ocr.startswith(
            "warning: ratio above 1 for asyncpipe ocr=1 llm=8 (2.300), stage-by-stage "
            "ocr=1 llm=8 (1.700): these runs beat their OCR bound"
        )
        assert llm.startswith("warning: ratio above 1 for asyncpipe r (1.050): these runs ")
        assert "LLM bound" in llm
        assert bound_warnings(rows[2:3]) == []

    def test_the_ocr_warning_names_the_load(self) -> None:
        """The OCR bound is the bare engine with the run's workers: only the load moves it."""
        row = {"name": "asyncpipe", "config": "ocr=1 llm=8", "ratio": 1.8, "limiter": "ocr"}
        (line,) = bound_warnings([row])
        assert line.endswith(
            "it is the bare engine's best reading with the run's OCR workers (capped at the "
            "cores), and the machine's load was lower during those runs than when the bare "
            "engine was timed"
        )

    def test_table_marks_missing_values(self) -> None:
        """Rows without a bound show dashes, not crashes."""
        table = format_table(self.ROWS)
        assert table.count("\n") == len(self.ROWS) + 1
        assert " - " in table


class TestSweepConfigs:
    """Which worker counts the sweep runs."""

    def test_named_worker_counts_all_run(self) -> None:
        """Asked for 1,2 x 1,8 with --quick, all 4 pairs run (the reviewer got 3)."""
        configs, skipped = sweep_configs([1, 2], [1, 8], quick=True, named=True)
        assert configs == [Config(1, 1), Config(1, 8), Config(2, 1), Config(2, 8)]
        assert skipped == []

    def test_the_default_quick_sweep_leaves_its_slowest_corner_and_says_so(self) -> None:
        """--quick on its own defaults skips ocr=1 llm=1 and returns it as skipped."""
        configs, skipped = sweep_configs([1, 2], [1, 8], quick=True, named=False)
        assert configs == [Config(1, 8), Config(2, 1), Config(2, 8)]
        assert skipped == [Config(1, 1)]
        assert sweep_configs([1, 2], [1, 8], quick=False, named=False)[1] == []


class TestGoalsVerdict:
    """A missed goal gates the exit status only under --check, and only in a run big
    enough to judge it."""

    def test_a_missed_goal_is_exit_0_without_check(self) -> None:
        """The reviewer's worker-count comparison exited 3; it is reported, exit 0."""
        line, status = goals_verdict(2, None, check=False)
        assert status == 0
        assert line is not None and line.startswith("goals missed: 2, not gating (exit 0;")

    def test_check_makes_it_exit_3(self) -> None:
        """--check keeps the old gate."""
        line, status = goals_verdict(2, None, check=True)
        assert (status, line) == (3, "goals missed: 2 (exit 3, --check): the lines above "
                                     "that say so")  # fmt: skip
        assert goals_verdict(0, None, check=True) == (None, 0)

    def test_a_tiny_run_is_too_small_to_judge(self) -> None:
        """2 items and 2 OCR pages judge nothing: said, and exit 0."""
        small = too_small(2, 2)
        assert small == "too small to judge the goals (items 2 < 4, OCR pages 2 < 16)"
        line, status = goals_verdict(2, small, check=False)
        assert status == 0
        assert line is not None and line.startswith("goals: too small to judge the goals")
        assert too_small(4, 16) is None

    def test_check_refuses_a_tiny_run_before_it_starts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--check on 2 items stops at once, before any run or output, with exit 2 as
        bad arguments (it was exit 1, which a failed --ray comparison is)."""
        out = tmp_path / "out"
        with pytest.raises(SystemExit) as stopped:
            main(["--check", "--items", "2", "--out", str(out)])
        assert stopped.value.code == 2
        assert "--check: too small to judge the goals (items 2" in capsys.readouterr().err
        assert not out.exists()


class TestRayOption:
    RESULT = RayComparison(
        pages=4,
        calls=1000,
        repeat=2,
        noop_us_threads=41.26,
        noop_us_ray=812.04,
        ocr_threads=0.5,
        ocr_ray=0.45,
        ocr_steady_threads=0.6,
        ocr_steady_ray=0.58,
        ray_version="2.60.0",
        init_seconds=5.0,
    )

    def test_off_by_default(self) -> None:
        """Without --ray the bench runs as before."""
        assert _parser().parse_args([]).ray is False
        assert _parser().parse_args(["--quick", "--ray"]).ray is True

    def test_without_ray_it_stops_before_any_run(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A missing ray is reported at once, with the extra to install (exit 2)."""
        monkeypatch.setitem(sys.modules, "ray", None)
        monkeypatch.setattr("asyncpipe._ray.importlib.util.find_spec", lambda name: None)
        with pytest.raises(SystemExit) as stopped:
            main(["--ray", "--out", str(tmp_path)])
        assert stopped.value.code == 2
        assert re.search(r"--ray: .*pip install 'asyncpipe\[ray\]'", capsys.readouterr().err)
        assert list(tmp_path.iterdir()) == []

    def test_row(self) -> None:
        """The section names both overheads, Ray's first, and the throughput ratio."""
        head, detail = self.RESULT.row().splitlines()
        assert head == (
            "ray vs threads: per-call overhead 812.0 µs vs 41.3 µs, OCR throughput ratio 0.90"
        )
        assert "ray 0.450 vs threads 0.500 pages/s" in detail

    def test_script_lines_end_with_the_key_values(self) -> None:
        """benchmarks/ray_vs_threads.py keeps its last line."""
        assert self.RESULT.lines()[-1] == (
            "ray_vs_threads noop_us_threads=41.3 noop_us_ray=812.0 ocr_ratio=0.90"
        )

    def test_json(self) -> None:
        """The JSON results carry the figures and the ratio."""
        data = self.RESULT.to_json()
        assert data["ocr_ratio"] == pytest.approx(0.9)
        assert data["noop_us_per_call_ray"] == pytest.approx(812.04)

    def test_ratio_without_threads_is_nan(self) -> None:
        """No threads throughput gives no ratio, not a ZeroDivisionError."""
        assert math.isnan(RayComparison(3, 4, 1, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0).ocr_ratio)


class TestAdviceCheck:
    """The advisor's prediction is compared with the measured bottleneck, term by term."""

    ROW: ClassVar[dict[str, Any]] = {
        "name": "asyncpipe",
        "advised": True,
        "config": "ocr=2 llm=8",
        "items_per_s": 0.3,
        "ratio": 0.9,
        "ratio_steady": 0.95,
        "items": 16,
        "bottleneck": "ocr",
        "rate_utilisation": 0.2,
    }

    def test_measured_limiter(self) -> None:
        """A saturated limit is llm-rate; otherwise the busiest stage names the term."""
        assert measured_limiter({**self.ROW, "rate_utilisation": 0.97}) == "llm-rate"
        assert measured_limiter(self.ROW) == "ocr"
        assert measured_limiter({**self.ROW, "bottleneck": "fix"}) == "llm-concurrency"
        assert measured_limiter({**self.ROW, "bottleneck": "load"}) == "load"

    def test_says_plainly_when_they_differ(self) -> None:
        """A rate-limit prediction met by an OCR-bound run is reported as different."""
        advice = Advice(Config(ocr=2, llm=8), predicted=0.3, bottleneck="llm-rate", reasons=[])
        (line,) = _advice_checks([self.ROW], advice)
        assert "DIFFERS from the prediction: predicted llm-rate, measured ocr" in line
        assert line.endswith("(MISSED)")
        agree = Advice(Config(ocr=2, llm=8), predicted=0.3, bottleneck="ocr", reasons=[])
        (line,) = _advice_checks([self.ROW], agree)
        assert line.endswith("measured/predicted 1.00: as predicted")

    def test_the_right_bottleneck_at_a_fraction_of_the_rate_is_missed(self) -> None:
        """The predicted bottleneck at 0.27 of the bound fails the check (round 24's
        audit: it printed 'as predicted')."""
        agree = Advice(Config(ocr=2, llm=8), predicted=0.3, bottleneck="ocr", reasons=[])
        (line,) = _advice_checks([{**self.ROW, "ratio": 0.27}], agree)
        assert line.endswith("bottleneck as predicted, but under 0.8 of its bound (MISSED)")

    def test_a_run_above_its_bound_confirms_nothing(self) -> None:
        """The predicted bottleneck at 1.60 of the bound is no confirmation either: a
        run that beats its bound shows the bound wrong."""
        agree = Advice(Config(ocr=2, llm=8), predicted=0.3, bottleneck="ocr", reasons=[])
        (line,) = _advice_checks([{**self.ROW, "ratio": 1.6}], agree)
        assert line.endswith("above its bound (1.60): the bound was not one (MISSED)")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smoke(tmp_path: Path, sroie: Path) -> None:
    """A one-item run of the whole harness ends with the summary line and writes its files."""
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench.py"),
        "--items",
        "1",
        "--ocr-workers",
        "1",
        "--llm-workers",
        "2",
        "--latency",
        "0.05",
        "--rss-items",
        "1",
        "--ocr-pages",
        "1",
        "--out",
        str(tmp_path),
        "--tag",
        "smoke",
        str(sroie / "img" / "000.jpg"),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=580, check=False)
    # A one-item run is too small to judge the goals: it says so and exits 0.
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "smoke.json").read_text())["rows"]
    assert [r["failed"] for r in rows] == [0] * len(rows)
    assert rows[-1]["items"] == 2 and all(r["items"] == 1 for r in rows[:-1])
    assert "FAILED" not in done.stdout
    assert "goals: too small to judge the goals (items 1 < 4, OCR pages 1 < 16)" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"bench best_ratio_to_bound=\S+ speedup_vs_threadpool=\S+ "
        r"rss_growth=\S+",
        last,
    ), last
    assert (tmp_path / "smoke.json").is_file()
    assert (tmp_path / "smoke.png").stat().st_size > 0


class TestRateCheck:
    """The rate-limit check fails on any missed goal."""

    def test_goals(self) -> None:
        """Over the limit, a 429, or utilisation under 0.95 each fail it."""
        good = RateCheck(20, 10.0, 28, 84, 44.0, 20, 0.96, 0)
        assert good.passed
        assert "PASS" in good.line()
        assert good.windows == pytest.approx(4.4)
        assert not RateCheck(20, 10.0, 28, 84, 44.0, 21, 0.96, 0).passed
        assert not RateCheck(20, 10.0, 28, 84, 44.0, 20, 0.96, 1).passed
        bad = RateCheck(20, 10.0, 28, 84, 47.2, 19, 0.88, 0)
        assert not bad.passed
        assert bad.to_json()["passed"] is False


class TestRateCheckAgainstTheServer:
    """The whole check, against the rate-limited test server, fails for a bad client."""

    def test_a_client_over_the_limit_fails(self, tmp_path: Path) -> None:
        """A client allowed twice the server's limit sends a window over it and gets 429s."""
        check = run_rate_check(10, 1.0, 0.02, tmp_path, client_rate=(20, 1.0))
        assert check.max_in_period > 10
        assert check.rejected > 0
        assert not check.passed
        assert "FAIL" in check.line()

    def test_a_client_under_the_limit_fails(self, tmp_path: Path) -> None:
        """A client allowed 7 of the server's 10 calls a second misses the utilisation goal."""
        check = run_rate_check(10, 1.0, 0.02, tmp_path, client_rate=(7, 1.0))
        assert check.max_in_period <= 10
        assert check.rejected == 0
        assert check.utilisation < 0.8
        assert not check.passed


def _row(name: str, config: str, per_s: float, **extra: object) -> dict[str, Any]:
    return {"name": name, "config": config, "items_per_s": per_s, "items": 4, **extra}


class TestFairBaselines:
    """asyncpipe and the stage-by-stage pattern compared over the same configs."""

    ROWS: ClassVar[list[dict[str, Any]]] = [
        _row("sequential", "1 thread", 0.1),
        _row("asyncpipe", "ocr=1 llm=1", 0.3, limiter="llm-concurrency"),
        _row("asyncpipe", "ocr=2 llm=8", 0.5, limiter="ocr"),
        _row("asyncpipe", "ocr=1 llm=8", 0.4, limiter="ocr"),
        _row("asyncpipe", "ocr=1 llm=8 rate=20/10s", 0.2, rate=[20, 10.0], limiter="ocr"),
        _row("stage-by-stage", "ocr=1 llm=1", 0.1),
        _row("stage-by-stage", "ocr=2 llm=8", 0.45),
        _row("stage-by-stage", "ocr=1 llm=8", 0.2),
    ]

    def test_best_against_best_and_spread(self) -> None:
        """Each pattern at its own best config, named; min/median/max at equal configs."""
        fair = compare_baselines(self.ROWS)
        assert fair is not None
        assert (fair["asyncpipe_best"], fair["baseline_best"]) == ("ocr=2 llm=8", "ocr=2 llm=8")
        assert fair["best_vs_best"] == pytest.approx(0.5 / 0.45)
        assert fair["configs"] == 3
        assert (fair["min"], fair["median"], fair["max"]) == pytest.approx((0.5 / 0.45, 2.0, 3.0))

    def test_the_two_sides_alternate_and_their_cpu_share_is_printed(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """asyncpipe ran first at every config, so a rising load always fell on the
        baseline; the order now alternates, and each side's cpu_share is printed beside
        the ratio at its config."""
        bench = FakeBench(monkeypatch, {})
        assert FakeBench.run(tmp_path, "--quick") == 0
        pairs = [name for name, config in bench.ran if config != "1 thread"][:6]
        assert pairs == (["asyncpipe", "stage-by-stage", "stage-by-stage", "asyncpipe"] * 2)[:6]
        out = capsys.readouterr().out
        assert re.search(r"x\S+ \(cpu_share \S+ vs \S+\); at equal configs", out)
        lines = re.findall(r"^    at ocr=\S+ llm=\S+: x\S+; (\S+) .*then (\S+) ", out, re.M)
        assert lines[:2] == [("asyncpipe", "stage-by-stage"), ("stage-by-stage", "asyncpipe")]
        assert run_order(0) == ["asyncpipe", "stage-by-stage"]
        assert run_order(1) == ["stage-by-stage", "asyncpipe"]
        assert run_order(1, baseline=False) == ["asyncpipe"]

    def test_no_baseline_no_comparison(self) -> None:
        """Without stage-by-stage rows there is nothing to compare."""
        assert compare_baselines(self.ROWS[:5]) is None


class TestOcrBound:
    """The bare engine and the OCR-bound pipeline, compared on the same pages."""

    def test_the_bound_reads_the_runs_pages(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """--quick's runs read 4 receipts: the bound reads those 4, four times each (it
        read the first 16, which cost 4 % more CPU a page), and so does the rate-limited
        run (it read the first 8)."""
        bench = FakeBench(monkeypatch, {})
        assert FakeBench.run(tmp_path, "--quick") == 0
        pages = sorted(set(bench.run_refs[0]))
        assert [Path(p).name for p in pages] == ["000.jpg", "001.jpg", "002.jpg", "003.jpg"]
        assert [sorted(refs) for refs in bench.bound_refs] == [sorted(pages * 4)] * 2
        assert all(sorted(set(refs)) == pages for refs in bench.run_refs)
        assert len(bench.run_refs[-1]) == 8

    def test_bound_pages_repeat_each_page_as_often(self) -> None:
        from stages._page import PageRef

        refs = [PageRef(id=f"p{i}", source=f"p{i}.jpg", page=1, kind="jpeg") for i in range(3)]
        assert bound_pages(refs, 16) == refs * 6
        assert bound_pages(refs, 3) == refs
        assert bound_pages(refs, 1) == refs

    def test_a_warm_up_comes_before_the_first_timed_pass(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The first engine of a process imports rapidocr and reads its first page slower
        (a first pass 3.10 CPU s a page against 2.58): an untimed warm-up takes that, and
        the second call, after the runs, has none."""
        from docbench import _ocrbound

        ran: list[str] = []
        monkeypatch.setattr(_ocrbound, "warm_up", lambda ref: ran.append(f"warm {ref}"))
        monkeypatch.setattr(_ocrbound, "correct_text", lambda text: text)

        def bare(refs: Any, threads: int, number: int) -> OcrTiming:
            ran.append(f"bare x{threads}")
            return OcrTiming("bare", threads, 1, 1.0, 1.0, number)

        monkeypatch.setattr(_ocrbound, "time_bare", bare)
        _ocrbound.measure_ocr(["a", "b"], 2, ["bare"], bare=[1])  # type: ignore[list-item]
        assert ran == ["warm a", "bare x1", "bare x2"]
        ran.clear()
        _ocrbound.measure_ocr(["a"], 2, ["bare"], warm=False)  # type: ignore[list-item]
        assert ran == ["bare x2"]

    TIMINGS = (
        OcrTiming("bare", 1, 8, 32.0, 32.0, 0),
        OcrTiming("bare", 2, 8, 20.0, 34.0, 0),
        OcrTiming("pipeline", 2, 8, 22.0, 36.0, 0),
        OcrTiming("pipeline-no-trim", 2, 8, 21.0, 33.0, 0),
        OcrTiming("pipeline", 2, 8, 20.0, 38.0, 1),
        OcrTiming("bare", 2, 8, 16.0, 34.0, 1),
        OcrTiming("pipeline", 2, 8, 19.0, 37.0, 2),
        OcrTiming("bare", 2, 8, 18.0, 36.0, 2),
    )

    def test_ratios_per_round_and_best_against_best(self) -> None:
        """Each pipeline pass over the pool's in its round, the median judged; best kept."""
        r = OcrComparison(2, self.TIMINGS).ratios()
        pipe = r["pipeline"]
        assert pipe["rounds"] == pytest.approx([20 / 22, 16 / 20, 18 / 19])
        assert pipe["vs_hand"] == pytest.approx(20 / 22)
        assert pipe["best_vs_best"] == pytest.approx((8 / 19) / (8 / 16))
        assert pipe["vs_physical"] == pytest.approx((8 / 19) / (2 * 8 / 32))
        assert r["pool_cpu_per_page"] == pytest.approx(34 / 8)
        assert pipe["cpu_per_page"] == pytest.approx(37 / 8)
        assert r["pipeline-no-trim"]["rounds"] == pytest.approx([20 / 21])
        assert "pipeline-trim-each" not in r

    def test_each_run_is_bound_by_the_bare_engine_with_its_workers(self) -> None:
        """
        Round 30's loaded run (2 pages, 2 cores): one engine alone did 0.122 pages/s,
        the pool 0.164 (0.082 an engine), and every ocr=1 run did 1.5-1.8 of the pool's
        share.  An ocr=1 run's bound is the engine alone, its best reading before and
        after; ocr=2's the pool's best, and ocr=4's too (capped at the cores).
        """
        ocr = OcrComparison(
            2,
            (
                OcrTiming("bare", 1, 2, 2 / 0.110, 20.0, 0),
                OcrTiming("bare", 2, 2, 2 / 0.164, 25.0, 0),
                OcrTiming("bare", 2, 2, 2 / 0.150, 25.0, 1),
                OcrTiming("bare", 1, 2, 2 / 0.122, 19.0, 1),
            ),
        )
        cap = caps(t_ocr=1 / 0.110)
        bounds = {}
        for config in (None, Config(1, 8), Config(2, 8), Config(4, 8)):
            run = RunResult("asyncpipe", config, 2, 0, 10.0, [5.0, 10.0], {}, "ocr", 0, (0, 10))
            row: dict[str, Any] = {}
            add_bound(row, run, cap, ocr)
            bounds[config.ocr if config else "sequential"] = row["bound_terms"]["ocr"]
        assert bounds == pytest.approx({"sequential": 0.122, 1: 0.122, 2: 0.164, 4: 0.164})
        assert ocr_capacities(cap, ocr, 1).t_ocr == pytest.approx(1 / 0.122)
        assert ocr_capacities(cap, ocr, 2).t_ocr == pytest.approx(2 / 0.164)
        with pytest.raises(ValueError, match="not timed with 3 threads"):
            OcrComparison(4, ocr.timings).bare_rate(3)

    def test_report_says_when_the_goal_is_missed(self) -> None:
        """A median of 0.91 of the pool is reported as not met."""
        text = "\n".join(ocr_report(OcrComparison(2, self.TIMINGS)))
        assert (
            "(as it ships; goal >= 0.95 of the pool, judged by the median of 3 rounds: 0.91, "
            "NOT met): median over rounds 0.91"
        ) in text
        assert "(rounds: 0.91 0.80 0.95, spread 0.15)" in text

    def test_two_rounds_are_judged_best_against_best(self) -> None:
        """The bench's two rounds, 0.83 and 1.33: their median (1.08) said "met"; best
        against best (0.83) does not, and the line says which judged it."""
        timings = (
            OcrTiming("bare", 1, 2, 10.0, 10.0, 0),
            OcrTiming("bare", 2, 2, 10.0, 10.0, 0),
            OcrTiming("pipeline", 2, 2, 10.0 / 0.83, 10.0, 0),
            OcrTiming("bare", 2, 2, 20.0, 10.0, 1),
            OcrTiming("pipeline", 2, 2, 20.0 / 1.33, 10.0, 1),
        )
        text = "\n".join(ocr_report(OcrComparison(2, timings)))
        assert (
            "goal >= 0.95 of the pool, judged best against best, as 2 round(s) are too few "
            "for a median (3 needed): 0.83, NOT met"
        ) in text
        assert "(rounds: 0.83 1.33, spread 0.50)" in text

    def test_contenders_rotate_every_round(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No contender always runs first: the order shifts by one each round."""
        from docbench import _ocrbound

        ran: list[tuple[int, str]] = []

        def fake(name: str) -> Any:
            def timed(refs: Any, threads: int, *rest: Any) -> OcrTiming:
                number = rest[-1]
                ran.append((number, name if name == "bare" else rest[0]))
                return OcrTiming(ran[-1][1], threads, 1, 1.0, 1.0, number)

            return timed

        monkeypatch.setattr(_ocrbound, "time_bare", fake("bare"))
        monkeypatch.setattr(_ocrbound, "time_pipeline", fake("pipeline"))
        monkeypatch.setattr(_ocrbound, "correct_text", lambda text: text)
        _ocrbound.measure_ocr([], 2, ["bare", "pipeline", "pipeline-no-trim"], rounds=3)
        assert ran == [
            (0, "bare"), (0, "pipeline"), (0, "pipeline-no-trim"),
            (1, "pipeline"), (1, "pipeline-no-trim"), (1, "bare"),
            (2, "pipeline-no-trim"), (2, "bare"), (2, "pipeline"),
        ]  # fmt: skip

    @pytest.mark.slow
    @pytest.mark.timeout(300)
    def test_engines_from_a_factory_are_built_per_thread_and_closed(self, sroie: Path) -> None:
        """Two threads each build one engine, OCR a real receipt each, and close them."""
        from stages.inputs import discover
        from stages.ocr import make_engine

        refs = sorted(discover([sroie / "img"]), key=lambda ref: ref.source)[:2]
        built: list[Any] = []

        def factory() -> Any:
            built.append(make_engine("rapidocr"))
            return built[-1]

        texts = ocr_on_engines(factory, refs, 2, prepare=prepare_page)
        assert sorted(texts) == sorted(Path(ref.source).stem for ref in refs)
        assert all(len(text) > 20 for text in texts.values())
        assert 1 <= len(built) <= 2
        with pytest.raises(StageError):
            built[0].recognize(decode_pages(refs[:1])[0].image)


class FakeBench:
    """
    `main` with every measurement replaced by made-up results (no OCR, no server), so
    that what it prints and returns for given results can be checked in a second.
    ``failed`` maps a contender's name to the items its runs fail; ``ran`` records the
    contenders in the order they ran.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failed: dict[str, int]) -> None:
        from contextlib import contextmanager

        from docbench import _main

        self.failed = failed
        self.ran: list[tuple[str, str]] = []
        self.bound_refs: list[list[str]] = []
        self.run_refs: list[list[str]] = []

        class Server:
            url = "http://fake"

            def read_log(self) -> list[dict[str, Any]]:
                return [{"ts": 1.0, "task": task, "status": 200} for task in ONE_CALL_EACH]

        @contextmanager
        def server(**kwargs: Any) -> Any:
            yield Server()

        def ocr(refs: Any, cores: int, contenders: Any, **kw: Any) -> list[OcrTiming]:
            self.bound_refs.append([ref.source for ref in refs])
            first = kw.get("first_round", 0)
            out = [OcrTiming("bare", w, len(refs), 10.0, 10.0, first) for w in kw.get("bare", ())]
            return out + [
                OcrTiming(name, cores, len(refs), 8.0, 16.0, first) for name in contenders
            ]

        def run(name: str) -> Any:
            def fake(refs: Any, url: str, *rest: Any) -> RunResult:
                config = rest[0] if len(rest) > 1 else None
                self.ran.append((name, config.label() if config else "1 thread"))
                self.run_refs.append([ref.source for ref in refs])
                bad = min(self.failed.get(name, 0), len(refs))
                stage = {"workers": 1, "busy": 1.0, "utilisation": 0.5}
                return RunResult(
                    name,
                    config,
                    len(refs) - bad,
                    bad,
                    10.0,
                    [10.0] * len(refs),
                    {"ocr": stage},
                    "ocr",
                    0,
                    (0.0, 2.0),
                    stage_seconds={
                        "load": 0.0,
                        "preprocess": 0.0,
                        "ocr": 2.0,
                        "correct": 1.0,
                        "fix": 1.0,
                        "structure": 1.0,
                    },
                    engine_seconds=0.5,
                )

            return fake

        monkeypatch.setattr(_main, "run_server", server)
        monkeypatch.setattr(_main, "measure_ocr", ocr)
        monkeypatch.setattr(_main, "run_sequential", run("sequential"))
        monkeypatch.setattr(_main, "run_asyncpipe", run("asyncpipe"))
        monkeypatch.setattr(_main, "run_stage_by_stage", run("stage-by-stage"))

    @staticmethod
    def run(tmp_path: Path, *extra: str) -> int:
        pages = tmp_path / "pages"
        pages.mkdir(exist_ok=True)
        for i in range(20):
            (pages / f"{i:03d}.jpg").write_bytes(b"\xff\xd8\xff")
        args = ["--skip-rss", "--no-plot", "--out", str(tmp_path / "out"), *extra]
        return main([*args, str(pages)])


class TestFailedItems:
    """Throughput counts only the items done ok, for every contender, and a run in which
    items failed is no result: said plainly, no ratio reported, exit 4."""

    def test_the_table_has_a_failed_column(self) -> None:
        row = _row("asyncpipe", "ocr=2 llm=8", 0.0, failed=4, items=0)
        head, _, line = format_table([row]).splitlines()
        assert head.split()[:5] == ["run", "config", "n", "failed", "items/s"]
        assert line.split()[3:6] == ["0", "4", "0.000"]

    def test_a_config_with_failures_is_no_comparison(self) -> None:
        """The reviewer's run: asyncpipe failed every item, yet printed x25.58."""
        rows = [
            _row("asyncpipe", "ocr=2 llm=8", 1.47, failed=4),
            _row("stage-by-stage", "ocr=2 llm=8", 0.0575),
            _row("asyncpipe", "ocr=1 llm=8", 0.4, ratio=0.9, regime="ocr"),
            _row("stage-by-stage", "ocr=1 llm=8", 0.2),
        ]
        fair = compare_baselines(rows)
        assert fair is not None and fair["configs"] == 1
        assert fair["best_vs_best"] == pytest.approx(2.0)
        assert compare_baselines(rows[:2]) is None
        assert failed_runs(rows) == ["asyncpipe ocr=2 llm=8 (4 of 8 items failed)"]
        assert headline([{**rows[2], "failed": 1}]) == {}

    def test_the_advisor_check_does_not_pass_a_run_with_failures(self) -> None:
        agree = Advice(Config(ocr=2, llm=8), predicted=0.3, bottleneck="ocr", reasons=[])
        (line,) = _advice_checks([{**TestAdviceCheck.ROW, "failed": 2}], agree)
        assert line.endswith("2 items failed: no result (MISSED)")

    def test_a_run_with_failed_items_exits_4_without_check(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        FakeBench(monkeypatch, {"asyncpipe": 4})
        status = FakeBench.run(tmp_path, "--quick", "--llm-workers", "8")
        out = capsys.readouterr().out
        assert status == 4
        assert "vs stage-by-stage: no result, as items failed" in out
        assert "vs stage-by-stage, best against best" not in out
        assert re.search(
            r"^FAILED: items failed in \d run\(s\): asyncpipe ocr=1 llm=8 \(4 of 4", out, re.M
        )
        assert (
            out.strip()
            .splitlines()[-1]
            .startswith("bench best_ratio_to_bound=nan speedup_vs_threadpool=nan")
        )
        data = (tmp_path / "out" / "bench-quick.json").read_text()
        assert '"failed_runs": [' in data

    def test_a_run_without_failures_is_reported(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The guard of the test above: the same made-up run with no failure exits 0."""
        FakeBench(monkeypatch, {})
        assert FakeBench.run(tmp_path, "--quick", "--llm-workers", "8") == 0
        out = capsys.readouterr().out
        assert "vs stage-by-stage, best against best" in out
        assert "FAILED" not in out

    @pytest.mark.timeout(120)
    def test_the_real_runners_count_only_items_done_ok(
        self, tmp_path: Path, blockbuster: Any
    ) -> None:
        """Four missing files fail at load in every contender: none is counted as done
        (asyncpipe counted all four and reported 1.47 items/s).  The harness samples its
        memory on the event loop (a benchmark, not the library), so blocking calls pass."""
        from docbench._runners import run_asyncpipe, run_sequential, run_stage_by_stage

        from stages._page import PageRef
        from stages.testing.llm_server.testing import run_server

        blockbuster.deactivate()
        refs = [PageRef(id=f"m{i}", source=f"/nonexistent/{i}.jpg", page=1, kind="jpeg")
                for i in range(4)]  # fmt: skip
        with run_server(latency=0.01, workdir=tmp_path) as server:
            results = [
                run_asyncpipe(refs, server.url, Config(1, 2), tmp_path / "a.jsonl"),
                run_stage_by_stage(refs, server.url, Config(1, 2), tmp_path / "s.csv"),
                run_sequential(refs, server.url, tmp_path / "q.jsonl"),
            ]
        for result in results:
            assert (result.name, result.items, result.failed) == (result.name, 0, 4)
            assert result.items_per_second == 0.0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_soak_child_reports_its_own_peak(tmp_path: Path, sroie: Path) -> None:
    """
    A soak child's peak RSS is its own (``VmHWM``), not the peak of the process that
    started it: after this process held 1.5 GB, a child that runs the pipeline over no
    page reported ``ru_maxrss``, over 1.5 GB.
    """
    held = bytearray(3 << 29)
    held[:: 1 << 12] = b"\x01" * len(range(0, len(held), 1 << 12))
    command = [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--child"]
    command += ["--data", str(sroie), "--cache", str(tmp_path), "--items", "0", "--window", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)
    del held
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["items"] == 0
    assert 20 < line["peak_rss_mb"] < 1000
