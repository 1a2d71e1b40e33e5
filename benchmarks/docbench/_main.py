"""
``python benchmarks/bench.py``: run the real document pipeline on receipts against the
local LLM server, sweep worker counts, compare with the baselines and the bare OCR engine,
advise, and report.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import cycle, islice
from pathlib import Path
from typing import Any, NoReturn

from asyncpipe import ConfigError
from stages._malloc import tune_malloc
from stages._page import PageRef
from stages.inputs import discover, load_page
from stages.testing.llm_server.testing import ServerHandle, run_server

from ._model import (
    LLM_STAGES,
    Advice,
    Capacities,
    Config,
    advise,
    bound,
    max_in_window,
    min_makespan,
    rate_utilisation,
)
from ._ocrbound import PIPELINES, OcrComparison, measure_ocr, ocr_report
from ._ray import RayComparison, require_ray, run_comparison
from ._report import (
    bound_warnings,
    compare_baselines,
    failed_runs,
    format_table,
    headline,
    plot,
    regime_report,
    summary_line,
)
from ._runners import RunResult, run_asyncpipe, run_sequential, run_stage_by_stage

__all__ = ["main"]

# The folder that holds this package: the RSS children import it from there.
_HOME = Path(__file__).resolve().parents[1]
_PROG = "python benchmarks/bench.py"
# The OCR bound's contenders: the hand-written pool and the pipeline's trim policies, one
# round before the LLM runs and one after (``benchmarks/ocr_bound.py`` runs more rounds).
BOUND_CONTENDERS = ("bare", *PIPELINES)


def _refuse(message: str) -> NoReturn:
    """Stop before any run, as argparse stops on bad arguments: ``message`` on stderr,
    exit 2 (a bare ``SystemExit(message)`` is exit 1, which the epilog gives a failed
    --ray comparison)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _default_inputs() -> list[str]:
    """
    The SROIE receipts named by ``$ASYNCPIPE_SROIE``; the harness never guesses a path.
    """
    env = os.environ.get("ASYNCPIPE_SROIE")
    if not env:
        _refuse(
            f"{_PROG}: name the receipts (paths or globs), or set ASYNCPIPE_SROIE to the "
            "SROIE folder (its img/ subfolder is used)"
        )
    return [str(Path(env) / "img")]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _rate(text: str) -> tuple[int, float]:
    count, _, period = text.partition("/")
    return int(count), float(period)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_PROG,
        description="Benchmark the document pipeline: worker sweep, baselines, bound, advisor.",
        epilog="How long (2 cores): the OCR bound times --ocr-pages pages (16) in 10 passes "
        "in every mode, so it sets the floor.  The full run took 22 min on an idle machine "
        "(1335 s, load 0.8-1.9, benchmarks/results/bench.txt), 4 min of it the bound of 9 "
        "passes then; "
        "--quick is about 7 min there (estimated from that run's phases: the same bound, a "
        "quarter of the items, 3 configs of 9 and the advised one).  A loaded machine takes "
        "several times longer (one engine's page: 2.9 s idle, 8-24 s at load 4-7): --quick "
        "--items 2 --ocr-pages 2 --rss-items 1 --ocr-workers 1,2 --llm-workers 1,8 took "
        "582 s and 377 s at load 4-7.  Exit status: 0 whatever the goals say, unless "
        "--check; 3 a goal missed under --check; 4 items failed in a run (with or without "
        "--check: its items/s and every ratio built on it are no result, and none is "
        "reported); 1 the --ray comparison failed; 2 bad "
        "arguments, or a run refused before it starts (no receipts, ray not installed, "
        "--check on a run too small to judge).",
    )
    p.add_argument("inputs", nargs="*", help="receipts (default: $ASYNCPIPE_SROIE/img)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run (about 7 min on 2 idle cores, several times that on a loaded "
        "machine; see below): 4 items, OCR workers 1,2 x LLM workers 1,8 but not the slowest "
        "corner, ocr=1 llm=1 (it runs when you name the worker counts)",
    )
    p.add_argument(
        "--items",
        type=int,
        help="items per run (default 4 quick, 16 full); the rate-limited run takes twice as many",
    )
    p.add_argument("--latency", type=float, default=1.0, help="server seconds per call (1.0)")
    p.add_argument("--ocr-workers", help="OCR worker counts to sweep (default 1,2 quick; 1,2,4)")
    p.add_argument("--llm-workers", help="LLM workers per stage to sweep (1,8 quick; 1,8,32)")
    p.add_argument(
        "--rate-limit",
        default=None,
        help="the LLM-bound regime's limit LIMIT/SECONDS (default: a quarter of that "
        "run's calls, so it spans 4 windows, per the period that caps the pipeline at 60%% "
        "of one OCR thread's rate)",
    )
    p.add_argument(
        "--ocr-pages",
        type=int,
        help="pages of the OCR bound: bare engine and OCR-bound pipeline (default 16; at 8 a "
        "pass's ratio moves by about 0.1 between runs): the runs' pages, each repeated as "
        "often to reach at least this many",
    )
    p.add_argument("--rss-items", type=int, help="items of the 1x RSS run (default 2 quick, 6)")
    p.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="results folder (bench-results)"
    )
    p.add_argument("--tag", default=None, help="file name stem (default bench-quick / bench)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"exit 3 if a goal is missed (an advisor check, the OCR-bound pipeline under "
        f"0.95 of the pool); refused below {JUDGED_ITEMS} items or {JUDGED_OCR_PAGES} OCR "
        "pages, too few to judge them.  Without it the goals are reported and the exit "
        "status is 0",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="after the other runs, compare the Ray executor with local threads (a no-op "
        "stage's per-call overhead and OCR throughput; needs ray: pip install "
        "'asyncpipe[ray]')",
    )
    p.add_argument("--skip-rss", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--skip-baselines", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rss-ocr", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p


def pick_refs(inputs: Sequence[str], n: int) -> list[PageRef]:
    """
    The first ``n`` pages of the inputs, in discovery order, repeated if there are fewer.
    """
    refs = list(islice(discover(list(inputs)), n))
    if not refs:
        _refuse(f"{_PROG}: no documents found in {' '.join(inputs)}")
    return list(islice(cycle(refs), n))


def run_order(index: int, *, baseline: bool = True) -> list[str]:
    """
    The contenders at the ``index``-th config, in the order they run: asyncpipe first at
    even indexes, the stage-by-stage pattern first at odd ones.
    """
    names = ["asyncpipe", "stage-by-stage"] if baseline else ["asyncpipe"]
    return names[::-1] if index % 2 else names


def bound_pages(refs: Sequence[PageRef], count: int) -> list[PageRef]:
    """
    The runs' pages ``refs`` repeated to at least ``count`` pages, each as often: the
    pages the OCR bound (and the rate-limited run) reads, so that a bound costs what the
    runs it judges cost a page (``--quick``'s 4 receipts cost 2.43 CPU s a page, the
    first 16 receipts 2.52).
    """
    times = max(1, math.ceil(count / max(1, len(refs))))
    return list(refs) * times


def _calls(server: ServerHandle, wall: tuple[float, float]) -> list[dict[str, Any]]:
    return [r for r in server.read_log() if wall[0] - 0.5 <= r["ts"] <= wall[1] + 0.5]


def capacities(seq: RunResult, server: ServerHandle, latency: float, n: int) -> Capacities:
    """
    The single-thread capacities from the sequential run and its server log.
    """
    log = _calls(server, seq.wall)
    by_task = Counter(r["task"] for r in log if r.get("status") == 200)
    calls = {task: by_task.get(task, 0) / n for task in LLM_STAGES}
    llm_seconds = sum(seq.stage_seconds.get(task, 0.0) * n for task in LLM_STAGES)
    call_seconds = llm_seconds / max(1, sum(by_task.values()))
    return Capacities(
        t_engine=seq.engine_seconds,
        t_load=seq.stage_seconds["load"],
        t_preprocess=seq.stage_seconds["preprocess"],
        t_ocr=seq.stage_seconds["ocr"],
        latency=latency,
        call_seconds=call_seconds,
        calls=calls,
        cores=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 1,
    )


def make_row(result: RunResult, server: ServerHandle | None, **extra: Any) -> dict[str, Any]:
    """
    The JSON row of one run and its LLM call figures (`add_bound` adds the bound later).
    """
    config = result.config
    row: dict[str, Any] = {
        "name": result.name,
        "config": config.label() if config else "1 thread",
        "ocr": config.ocr if config else None,
        "llm": config.llm if config else None,
        "rate": list(config.rate) if config and config.rate else None,
        "items": result.items,
        "failed": result.failed,
        "elapsed": result.elapsed,
        "items_per_s": result.items_per_second,
        "bottleneck": result.bottleneck,
        "utilisation": {k: v["utilisation"] for k, v in result.stages.items()},
        "stages": result.stages,
        "peak_rss_mb": result.peak_rss / 2**20,
        "cpu_seconds": result.cpu_seconds,
        "cpu_share": result.cpu_seconds / result.elapsed if result.elapsed > 0 else None,
        "cpu_pressure_avg10": _cpu_pressure(),
        **extra,
    }
    if server is not None:
        log = _calls(server, result.wall)
        arrivals = [r["ts"] for r in log]
        row["llm_calls"] = len(log)
        row["llm_429"] = sum(1 for r in log if r.get("status") == 429)
        if config is not None and config.rate is not None:
            limit, period = config.rate
            row["rate_utilisation"] = rate_utilisation(arrivals, limit, period)
            row["max_calls_in_period"] = max_in_window(arrivals, period)
            short = min(period, 10.0)
            row["max_rate_in_10s_window"] = max_in_window(arrivals, short) / short
            row["rate_limit_per_s"] = limit / period
    return row


def ocr_capacities(cap: Capacities, ocr: OcrComparison, workers: int) -> Capacities:
    """
    ``cap`` with the OCR seconds per page and engine that make the bound's OCR term, for
    ``workers`` OCR workers, the bare engine's best rate with as many threads, capped at
    the cores (`OcrComparison.bare_rate`).
    """
    engines = min(workers, cap.cores)
    return replace(cap, t_ocr=engines / ocr.bare_rate(engines))


def add_bound(row: dict[str, Any], result: RunResult, cap: Capacities, ocr: OcrComparison) -> None:
    """
    Add the run's bound (steady and for its item count) and its ratios to them.  Its OCR
    term is the bare engine timed with the run's OCR workers (`ocr_capacities`).
    """
    config = result.config
    cfg = config or Config(ocr=1, llm=1)
    cap = ocr_capacities(cap, ocr, cfg.ocr)
    b = bound(cap, cfg)
    row["bound"] = b.value
    row["bound_terms"] = b.to_json()
    row["limiter"] = b.limiter if config else "sequential"
    row["regime"] = b.regime
    if config is not None:
        n = result.items + result.failed
        row["bound_n"] = n / min_makespan(cap, cfg, n)
        row["ratio"] = result.items_per_second / row["bound_n"]
        row["ratio_steady"] = result.items_per_second / b.value


def _autogroup() -> str | None:
    """
    Whether Linux groups processes by session for scheduling (``sched_autogroup``), and
    this process's group.  With it on, ``nice`` only ranks processes *within* a session:
    another session's ``nice -n 19`` job takes as much CPU as this bench (sched(7)).
    """
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled", encoding="ascii") as fh:
            enabled = fh.read().strip() == "1"
        with open("/proc/self/autogroup", encoding="ascii") as fh:
            group = fh.read().strip()
    except OSError:
        return None
    return f"on ({group})" if enabled else "off"


def _cpu_pressure() -> float | None:
    """The share of the last 10 s some task waited for a CPU (Linux PSI), or ``None``."""
    try:
        with open("/proc/pressure/cpu", encoding="ascii") as fh:
            return float(fh.readline().split()[1].split("=")[1]) / 100
    except (OSError, IndexError, ValueError):
        return None


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_HOME), env.get("PYTHONPATH")]))
    return env


def _rss_child(args: argparse.Namespace) -> int:
    refs = pick_refs(args.inputs or _default_inputs(), args.rss_items)
    refs = refs * (args.items // len(refs))
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(ocr=args.rss_ocr, llm=8)
        result = run_asyncpipe(refs, args.url, config, Path(tmp) / "out.jsonl")
    peak = _peak_rss()
    print(
        json.dumps(
            {
                "items": result.items,
                "failed": result.failed,
                "peak_rss": peak,
                "elapsed": result.elapsed,
            }
        )
    )
    return 0


def _peak_rss() -> int:
    """
    This process's peak resident set, bytes.  ``VmHWM`` belongs to the current address
    space; ``ru_maxrss`` would not do, as Linux carries it over from the forking parent.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_runs(inputs: list[str], url: str, n: int) -> dict[str, Any]:
    """
    Peak RSS of two fresh processes running the same pipeline on the same n items, once
    and repeated 4 times, so only the item count differs (not the page sizes, which set
    the OCR engine's buffers).  One OCR worker: with two, the 1x run gives each engine
    one page and the 4x run both, so each engine's native buffers grow to the larger page
    and that, not the item count, showed as growth (measured: 1.47 with two engines).
    They run side by side: separate processes share no heap.
    """
    procs = {}
    for count in (n, 4 * n):
        cmd = [
            sys.executable,
            "-m",
            "docbench",
            "--rss-child",
            "--rss-items",
            str(n),
            "--items",
            str(count),
            "--url",
            url,
            *inputs,
        ]
        procs[count] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env()
        )
    out = {}
    for count, proc in procs.items():
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"RSS child ({count} items) failed:\n{stderr.decode()}")
        out[count] = json.loads(stdout.decode().strip().splitlines()[-1])
    growth = out[4 * n]["peak_rss"] / out[n]["peak_rss"]
    return {
        "items_1x": n,
        "items_4x": 4 * n,
        "peak_rss_1x_mb": out[n]["peak_rss"] / 2**20,
        "peak_rss_4x_mb": out[4 * n]["peak_rss"] / 2**20,
        "growth": growth,
        "runs": {str(k): v for k, v in out.items()},
    }


def llm_bound_rate(
    cap: Capacities, items: int, *, windows: int = 4, share: float = 0.6
) -> tuple[int, float]:
    """
    A rate limit scaled so that the rate-limited run of ``items`` items spans ``windows``
    windows (at least 3 make the limit bind over whole windows, so the run can fail it),
    with a period chosen so that the limit caps the pipeline at ``share`` of what *one*
    OCR thread can do: the LLM is then the bottleneck even if a busy shared machine leaves
    the OCR workers only one core.  (0.6 is a judgement; capping at half the two-core
    rate was not enough: with colleagues' tests running, two OCR workers got about one
    core and OCR became the bottleneck too.)
    """
    calls = items * max(cap.calls_per_item, 1.0)
    limit = max(2, int(calls // windows))
    calls_per_s = share * cap.ocr_rate * max(cap.calls_per_item, 1.0)
    return limit, round(limit / calls_per_s, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the bench.  Returns the exit code.
    """
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.rss_child:
        return _rss_child(args)
    if args.ray:
        try:
            require_ray()  # now, not after minutes of other runs
        except ConfigError as exc:
            _refuse(f"{_PROG} --ray: {exc}")
    quick = args.quick
    n = args.items or (4 if quick else 16)
    ocr_pages = args.ocr_pages or 16
    small = too_small(n, ocr_pages)
    if args.check and small:
        # Now, not after minutes of runs whose goals could not be judged.
        _refuse(f"{_PROG} --check: {small}; the goals are judged from there up")
    ocr_list = _ints(args.ocr_workers or ("1,2" if quick else "1,2,4"))
    llm_list = _ints(args.llm_workers or ("1,8" if quick else "1,8,32"))
    fixed_rate = _rate(args.rate_limit) if args.rate_limit else None
    rss_n = args.rss_items or (2 if quick else 6)
    inputs = args.inputs or _default_inputs()
    out_dir = args.out
    tag = args.tag or ("bench-quick" if quick else "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    latency = args.latency
    started = time.perf_counter()
    refs = pick_refs(inputs, n)
    rows: list[dict[str, Any]] = []

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    # The process is put in the pipeline's state before anything is timed (2 malloc
    # arenas; the preprocess sets OpenCV to 1 thread): the OCR timings before and after
    # the pipeline runs used to differ in both, not only in load.
    tune_malloc()
    # The OCR bound comes first and from the bare engine alone: it is independent of the
    # runs it judges.  The pool and the OCR-bound pipeline alternate on the same pages,
    # which are the runs' pages (`bound_pages`).
    ocr_refs = bound_pages(refs, ocr_pages)
    ocr_timings = measure_ocr(ocr_refs, cores, list(BOUND_CONTENDERS), bare=[1], say=say)
    with tempfile.TemporaryDirectory(prefix="asyncpipe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "plain").mkdir()
        (tmp / "rated").mkdir()
        with run_server(latency=latency, workdir=tmp / "plain") as server:
            say(f"sequential on {n} items (latency {latency:g}s)")
            seq = _timed(run_sequential, refs, server.url, tmp / "seq.jsonl")
            cap = capacities(seq, server, latency, n)
            rows.append(make_row(seq, server))
            runs = [seq]
            say(
                f"capacities: ocr {cap.t_ocr:.3f}s/page, {cap.calls_per_item:g} calls/page, "
                f"call {cap.call_seconds:.3f}s"
            )
            # The bound's OCR time is the bare engine's, not the sequential run's (which
            # includes the wrapper) nor any pipeline run's.
            cap_sequential = cap
            single = OcrComparison(cores, tuple(ocr_timings)).single
            cap = replace(cap, t_ocr=1.0 / single.pages_per_s)
            advice = advise(cap)
            rate = fixed_rate or llm_bound_rate(cap, 2 * n)
            rated_advice = advise(cap, rate)
            configs, skipped = sweep_configs(
                ocr_list, llm_list, quick=quick, named=bool(args.ocr_workers or args.llm_workers)
            )
            for config in skipped:
                say(f"{config.label()} not run: {SKIPPED_WHY}")
            if advice.config not in configs:
                configs.append(advice.config)
            # Every config of both patterns runs on the same items, the two patterns back to
            # back at each config, so that a change of load moves both: best against best
            # and the ratios at equal configs compare like with like.  Which runs first
            # alternates from config to config (`run_order`), so that neither side always
            # meets the load the other left.
            for index, config in enumerate(configs):
                for name in run_order(index, baseline=not args.skip_baselines):
                    say(f"{name} {config.label()}")
                    if name == "asyncpipe":
                        result = _timed(run_asyncpipe, refs, server.url, config, tmp / "ap.jsonl")
                        row = make_row(
                            result,
                            server,
                            sweep=config.ocr in ocr_list and config.llm in llm_list,
                            advised=config == advice.config,
                        )
                    else:
                        result = _timed(
                            run_stage_by_stage, refs, server.url, config, tmp / "tp.csv"
                        )
                        row = make_row(result, server)
                    runs.append(result)
                    rows.append(row)
            rss: dict[str, Any] = {}
            if not args.skip_rss:
                say(f"RSS: {rss_n} and {4 * rss_n} items in two fresh processes")
                rss = _rss_runs(inputs, server.url, rss_n)
        with run_server(
            latency=latency, rate_limit=rate[0], rate_period=rate[1], workdir=tmp / "rated"
        ) as rated:
            say(f"LLM-bound: asyncpipe {rated_advice.config.label()}")
            result = _timed(
                run_asyncpipe,
                bound_pages(refs, 2 * n),
                rated.url,
                rated_advice.config,
                tmp / "rated.jsonl",
            )
            runs.append(result)
            rows.append(make_row(result, rated, advised=True))
    # Again after the runs: on a shared machine the load drifts, and the two readings
    # bracket the runs they judge.  The bare engine is timed with every OCR worker count
    # the runs had (the pool has the cores'), as each run's bound is the bare engine
    # with its worker count.
    counts = sorted({min(r.config.ocr, cores) for r in runs if r.config} - {cores})
    ocr_timings += measure_ocr(
        ocr_refs, cores, list(BOUND_CONTENDERS), first_round=1, bare=counts, warm=False, say=say
    )
    ocr = OcrComparison(cores, tuple(ocr_timings))
    ray: RayComparison | str | None = None
    if args.ray:
        ray = _ray_runs(inputs, quick, say)
    elapsed = time.perf_counter() - started
    # Each run is judged against the bare engine in a hand-written pool of as many engines
    # as the run has OCR workers (capped at the cores), at its best of the readings before
    # and after the runs: measured in the same session, by code that is not the
    # pipeline's.  The single engine times the cores was the bound before round 24 (a
    # loaded machine's pool reached 0.57 of it); the pool's rate per engine was the bound
    # of every run until round 31, and one engine alone beat it by 1.5-1.8x at load 5-7.
    cap_advice = cap
    for row, run in zip(rows, runs, strict=True):
        add_bound(row, run, cap_advice, ocr)
    cap = ocr_capacities(cap_advice, ocr, cores)  # the bound at one engine a core
    by_workers = {w: ocr.bare_rate(w) for w in sorted({1, *counts, cores})}

    seq_row = rows[0]
    for r in rows:
        r["speedup_vs_sequential"] = r["items_per_s"] / seq_row["items_per_s"]
    broken = failed_runs(rows)
    best = headline(rows)
    fair = compare_baselines(rows)
    checks = _advice_checks(rows, advice, rated_advice)
    autogroup = _autogroup()
    results = {
        "command": f"{_PROG} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cores": cap.cores,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "sched_autogroup": autogroup,
        },
        "items": n,
        "latency": latency,
        "rate_limit": list(rate),
        "journal": "off (no checkpoints) in every run",
        "capacities": cap.to_json(),
        "single_thread_ocr_from": (
            f"the bare engine in the hand-written pool ({cap.cores} engines), its best "
            "reading before and after the runs, per engine; each run's bound has the bare "
            "engine's rate with its OCR workers (ocr_bound_pages_per_s)"
        ),
        "ocr_bound_pages_per_s": by_workers,
        "capacities_advice": cap_advice.to_json(),
        "capacities_sequential": cap_sequential.to_json(),
        "advice": advice.to_json(),
        "advice_rate_limited": rated_advice.to_json(),
        "advice_checks": checks,
        "speedup_vs_threadpool": fair["best_vs_best"] if fair and not broken else math.nan,
        "failed_runs": broken,
        "best_ratio_by_regime": best,
        "rss": rss,
        "ocr_bound": ocr.to_json(),
        "vs_stage_by_stage": fair,
        "rows": rows,
        "not_run": {config.label(): SKIPPED_WHY for config in skipped},
        "bench_seconds": elapsed,
    }
    if ray is not None:
        results["ray_vs_threads"] = (
            ray.to_json() if isinstance(ray, RayComparison) else {"error": ray}
        )
    json_path = out_dir / f"{tag}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(format_table(rows))
    for config in skipped:
        print(f"{config.label()} not run: {SKIPPED_WHY}")
    if ray is not None:
        print()
        print(ray.row() if isinstance(ray, RayComparison) else f"ray vs threads: failed: {ray}")
    print()
    print(f"capacities: {json.dumps(cap.to_json())}")
    if (autogroup or "").startswith("on"):
        print(
            "sched_autogroup is on: other sessions' nice 19 jobs compete with this run as "
            "equals; the CPU share of each run is in its row (cpu_share)"
        )
    print(
        "OCR bound of a run, the bare engine with its OCR workers at its best: "
        + ", ".join(f"x{w} {rate:.3f} pages/s" for w, rate in by_workers.items())
        + f"; single-thread OCR {cap_advice.t_ocr:.3f} s/page alone before the runs, "
        f"the sequential run {cap_sequential.t_ocr:.3f}; CPU pressure during the runs: "
        + " ".join(
            f"{r['cpu_pressure_avg10']:.2f}"
            for r in rows
            if r.get("cpu_pressure_avg10") is not None
        )
    )
    for line in bound_warnings(rows):
        print(line)
    for label, adv in (
        ("advisor (no rate limit)", advice),
        (f"advisor (rate limit {rate[0]}/{rate[1]:g}s)", rated_advice),
    ):
        print(
            f"{label}: {adv.config.label()} -> {adv.predicted:.3f} items/s, "
            f"bottleneck {adv.bottleneck}"
        )
        for reason in adv.reasons:
            print(f"    {reason}")
    for check in checks:
        print(f"advisor check: {check}")
    rated_row = rows[-1]
    print(
        f"rate limit: utilisation {rated_row.get('rate_utilisation', math.nan):.4f} of "
        f"{rate[0]}/{rate[1]:g}s in the steady window; max {rated_row.get('max_calls_in_period')}"
        f" calls in any {rate[1]:g}s window; {rated_row.get('llm_429')} x 429"
    )
    if broken and any(r["name"] == "stage-by-stage" for r in rows):
        print("vs stage-by-stage: no result, as items failed (FAILED below names the runs)")
    elif fair is not None:
        print(
            f"vs stage-by-stage, best against best: asyncpipe {fair['asyncpipe_best']} "
            f"{fair['asyncpipe_items_per_s']:.3f} items/s vs stage-by-stage "
            f"{fair['baseline_best']} {fair['baseline_items_per_s']:.3f}: "
            f"x{fair['best_vs_best']:.2f} (cpu_share {_share(fair['asyncpipe_cpu_share'])} vs "
            f"{_share(fair['baseline_cpu_share'])}); at equal configs ({fair['configs']}): "
            f"min x{fair['min']:.2f} median x{fair['median']:.2f} max x{fair['max']:.2f}"
        )
        for line in equal_config_lines(fair):
            print(f"    {line}")
    for line in ocr_report(ocr):
        print(line)
    if rss:
        print(
            f"RSS: {rss['items_1x']} items {rss['peak_rss_1x_mb']:.0f} MB, {rss['items_4x']} "
            f"items {rss['peak_rss_4x_mb']:.0f} MB: growth {rss['growth']:.3f}"
        )
    for line in regime_report(best):
        print(line)
    if not args.no_plot:
        png = out_dir / f"{tag}.png"
        plot(
            rows,
            png,
            f"{_PROG}: {n} SROIE receipts, latency {latency:g}s/call, "
            f"{cap.cores} cores, rapidocr ({cap.t_ocr:.2f}s/page/thread)",
        )
        print(f"wrote {json_path} and {png}")
    else:
        print(f"wrote {json_path}")
    print(f"bench took {elapsed:.0f} s")
    missed = [c for c in checks if c.endswith(_MISSED)] + [
        line for line in ocr_report(ocr) if "NOT met" in line
    ]
    verdict, status = goals_verdict(len(missed), small, check=args.check)
    if verdict:
        print(verdict)
    if broken:
        print(failed_line(broken))
        best = {}
    headline_speedup = fair["best_vs_best"] if fair is not None and not broken else math.nan
    print(summary_line(best, headline_speedup, rss.get("growth", math.nan)))
    if broken:
        return FAILED_ITEMS
    if isinstance(ray, str):
        return 1
    return status


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def equal_config_lines(fair: dict[str, Any]) -> list[str]:
    """
    One line per config both patterns ran: the ratio, each side's items/s and CPU share
    (this process's CPU seconds over the wall seconds: a side the machine gave less shows
    a lower share), the side that ran first named first.
    """
    out = []
    for config, sides in fair["sides"].items():
        parts = [
            f"{side['name']} {side['items_per_s']:.3f} items/s "
            f"cpu_share {_share(side['cpu_share'])}"
            for side in sides
        ]
        out.append(f"at {config}: x{fair['at_equal_configs'][config]:.2f}; " + " then ".join(parts))
    return out


#: The exit status of a run in which items failed (with or without ``--check``).
FAILED_ITEMS = 4


def failed_line(broken: Sequence[str]) -> str:
    """
    The closing line of a run in which items failed (`failed_runs`): its figures count
    fewer items than it was given, so they are no result, whatever else it printed.
    """
    return (
        f"FAILED: items failed in {len(broken)} run(s): {'; '.join(broken)}; their items/s "
        "and every ratio and comparison built on them are no result (the last line has "
        f"nan; exit {FAILED_ITEMS})"
    )


#: The smallest run whose goals are judged: the ``--quick`` defaults' items and OCR pages,
#: the smallest run the project's figures were taken at.  With 8 pages a pass of the OCR
#: bound moved by about 0.1 between runs (benchmarks/README.md, round 6), twice the
#: 0.95 goal's margin; with fewer than 4 items one item is over a quarter of a run.
JUDGED_ITEMS = 4
JUDGED_OCR_PAGES = 16


def too_small(items: int, ocr_pages: int) -> str | None:
    """
    Why a run of ``items`` items and ``ocr_pages`` OCR-bound pages is too small to judge
    the goals, or ``None`` if it is not.
    """
    short = []
    if items < JUDGED_ITEMS:
        short.append(f"items {items} < {JUDGED_ITEMS}")
    if ocr_pages < JUDGED_OCR_PAGES:
        short.append(f"OCR pages {ocr_pages} < {JUDGED_OCR_PAGES}")
    return f"too small to judge the goals ({', '.join(short)})" if short else None


def goals_verdict(missed: int, small: str | None, *, check: bool) -> tuple[str | None, int]:
    """
    The goals' closing line and the exit status.  The goals (the advisor's checks, the
    OCR-bound pipeline against the pool) are a check of the project, not of the user's
    run: a missed goal is exit 3 only under ``--check`` (which refuses a run too small to
    judge them, before it starts); otherwise it is reported and the status is 0.  A
    worker-count comparison on a loaded machine, or a tiny run, used to end with exit 3.
    """
    if small:
        return f"goals: {small}: the checks above are printed, not judged (exit 0)", 0
    if not missed:
        return None, 0
    if check:
        return f"goals missed: {missed} (exit 3, --check): the lines above that say so", 3
    return (
        f"goals missed: {missed}, not gating (exit 0; --check makes it exit 3): the lines "
        "above that say so",
        0,
    )


SKIPPED_WHY = (
    "--quick leaves the slowest corner (fewest workers everywhere) to the full run, as it "
    "is OCR-bound like its neighbour with more LLM workers; name --ocr-workers or "
    "--llm-workers to run every pair"
)


def sweep_configs(
    ocr_list: Sequence[int], llm_list: Sequence[int], *, quick: bool, named: bool
) -> tuple[list[Config], list[Config]]:
    """
    The sweep's configs, every OCR count with every LLM count, and those left out: the
    default ``--quick`` sweep leaves out its slowest corner (`SKIPPED_WHY`); worker counts
    the user named all run (the corner was dropped from them too, unsaid: asked for
    ``1,2`` x ``1,8``, a user got 3 of the 4).
    """
    configs = [Config(o, c) for o in ocr_list for c in llm_list]
    skipped = []
    if quick and not named and len(configs) > 3:
        skipped.append(Config(min(ocr_list), min(llm_list)))
        configs.remove(skipped[0])
    return configs, skipped


def _timed(run: Callable[..., RunResult], *args: Any) -> RunResult:
    """
    ``run(*args)``, with this process's CPU seconds over it (the LLM server is another
    process) kept on the result: how much of the machine the run got, beside its rate.
    """
    cpu = time.process_time()
    result = run(*args)
    result.cpu_seconds = time.process_time() - cpu
    return result


def _ray_runs(
    inputs: Sequence[str], quick: bool, say: Callable[[str], None]
) -> RayComparison | str:
    """
    The Ray-against-threads comparison (`docbench._ray`) on the bench's first pages,
    or what went wrong: the other runs' results are still reported.
    """
    # 4 pages and 1000 calls keep the quick run near a minute on 2 cores; the full run
    # uses the figures of benchmarks/ray_vs_threads.py.
    pages = [load_page(ref) for ref in pick_refs(inputs, 4 if quick else 6)]
    say(f"Ray executor vs local threads: no-op stage and OCR on {len(pages)} pages")
    try:
        return run_comparison(pages, calls=1000 if quick else 2000, repeat=2, progress=say)
    except Exception as exc:
        say(f"the Ray comparison failed: {type(exc).__name__}: {exc}")
        return f"{type(exc).__name__}: {exc}"


def measured_limiter(row: dict[str, Any]) -> str:
    """
    What bound a measured run, in the advisor's terms: ``llm-rate`` when the shared rate
    limit was saturated (>= 0.95 used: three stages share it, so no one stage looks busy),
    else ``ocr`` or ``llm-concurrency`` by the busiest stage, else that stage's name.
    """
    if row.get("rate_utilisation", 0.0) >= 0.95:
        return "llm-rate"
    busiest = str(row.get("bottleneck"))
    if busiest == "ocr":
        return "ocr"
    return "llm-concurrency" if busiest in LLM_STAGES else busiest


def _advice_checks(rows: Sequence[dict[str, Any]], *advices: Advice) -> list[str]:
    out = []
    for adv in advices:
        row = next(
            (
                r
                for r in rows
                if r["name"] == "asyncpipe"
                and r.get("advised")
                and r["config"] == adv.config.label()
            ),
            None,
        )
        if row is None:
            continue
        measured = measured_limiter(row)
        if row.get("failed"):
            verdict = f"{row['failed']} items failed: no result"
        elif measured != adv.bottleneck:
            verdict = (
                f"DIFFERS from the prediction: predicted {adv.bottleneck}, measured {measured}"
            )
        elif row["ratio"] > 1:
            # A run faster than its bound shows the bound wrong, so it confirms nothing.
            verdict = f"above its bound ({row['ratio']:.2f}): the bound was not one"
        elif row["ratio"] < ADVICE_MIN:
            # The right bottleneck at a fraction of the rate the advice promised is no
            # confirmation (round 24's audit: 0.27 of it passed as predicted).
            verdict = f"bottleneck as predicted, but under {ADVICE_MIN} of its bound"
        else:
            verdict = "as predicted"
        out.append(
            f"{adv.config.label()}: measured {row['items_per_s']:.3f} items/s "
            f"({row['ratio']:.2f} of the bound for {row['items']} items, "
            f"{row['ratio_steady']:.2f} of the steady {adv.predicted:.3f}); predicted "
            f"bottleneck {adv.bottleneck}, measured {measured} (busiest stage "
            f"{row['bottleneck']}, rate "
            f"limit utilisation {row.get('rate_utilisation', math.nan):.3f}); "
            f"measured/predicted {row['items_per_s'] / adv.predicted:.2f}: {verdict}"
            + ("" if verdict == "as predicted" else f" {_MISSED}")
        )
    return out


#: An advised config that runs at less than this share of its bound fails its check.
ADVICE_MIN = 0.8
_MISSED = "(MISSED)"
