"""
The bench's outputs: the rows, the terminal table, the JSON file, the plot and the last line.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "BOUND_SLACK",
    "bound_warnings",
    "failed_runs",
    "format_table",
    "headline",
    "plot",
    "regime_report",
    "summary_line",
]

#: A ratio to a bound above this means the run beat its bound: that bound was no bound in
#: this run.  The 2 % is the timing's own noise at a few items (a guess, kept from the
#: warning's earlier threshold).
BOUND_SLACK = 1.02
_REGIMES = {"ocr": "OCR-bound", "llm": "LLM-bound"}


def _num(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """
    One line per run: contender, worker counts, items done ok (``n``) and failed, items/s
    (of the items done ok), the bound, the ratio to it, the bottleneck (predicted and
    measured), per-stage utilisation and peak RSS.
    """
    head = (
        f"{'run':<15} {'config':<28} {'n':>3} {'failed':>6} {'items/s':>8} {'bound':>7} "
        f"{'bound@n':>7} {'ratio':>6} {'steady':>6} {'limiter':<15} {'busiest':<10} {'rss MB':>7}  "
        "utilisation"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        util = " ".join(f"{k[:4]}={v:.2f}" for k, v in r.get("utilisation", {}).items())
        lines.append(
            f"{r['name']:<15} {r['config']:<28} {r['items']:>3} {r.get('failed', 0):>6} "
            f"{_num(r['items_per_s'], '8.3f')} "
            f"{_num(r.get('bound'), '7.3f')} {_num(r.get('bound_n'), '7.3f')} "
            f"{_num(r.get('ratio'), '6.3f')} {_num(r.get('ratio_steady'), '6.3f')} "
            f"{r.get('limiter') or '-':<15} {r.get('bottleneck') or '-':<10} "
            f"{_num(r.get('peak_rss_mb'), '7.0f')}  {util}"
        )
    return "\n".join(lines)


def failed_runs(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """
    The runs in which items failed, each as ``NAME CONFIG (F of N items failed)``: their
    items/s count fewer items than they were given, so no ratio of theirs is a result.
    """
    return [
        f"{r['name']} {r['config']} ({r['failed']} of {r['items'] + r['failed']} items failed)"
        for r in rows
        if r.get("failed")
    ]


def headline(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """
    The best ratio to the bound of the asyncpipe runs in each regime (``ocr``/``llm``);
    a run in which items failed is left out.
    """
    best: dict[str, float] = {}
    for r in rows:
        if r["name"] != "asyncpipe" or r.get("ratio") is None or r.get("extra"):
            continue
        if r.get("failed"):
            continue
        regime = r["regime"]
        best[regime] = max(best.get(regime, -math.inf), r["ratio"])
    return best


def compare_baselines(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """
    asyncpipe against the stage-by-stage pattern over the same configs (no rate limit):
    best against best (each at its own best config, both named: the headline) and the
    min, median and max of the ratio at equal configs, with each side's CPU share
    (``sides``: per config, the two runs in the order they ran).  ``None`` without both.
    A config at which either side failed items is left out (`failed_runs` names it).
    """
    ours = {r["config"]: r for r in rows if r["name"] == "asyncpipe" and not r.get("rate")}
    theirs = {r["config"]: r for r in rows if r["name"] == "stage-by-stage"}
    common = [
        config
        for config in ours
        if config in theirs and not ours[config].get("failed") and not theirs[config].get("failed")
    ]
    if not common:
        return None
    ratios = sorted(ours[c]["items_per_s"] / theirs[c]["items_per_s"] for c in common)
    best_ours = max((ours[c] for c in common), key=lambda r: r["items_per_s"])
    best_theirs = max((theirs[c] for c in common), key=lambda r: r["items_per_s"])
    order = {id(r): i for i, r in enumerate(rows)}
    sides = {
        c: [
            {"name": r["name"], "items_per_s": r["items_per_s"], "cpu_share": r.get("cpu_share")}
            for r in sorted((ours[c], theirs[c]), key=lambda r: order[id(r)])
        ]
        for c in common
    }
    return {
        "asyncpipe_best": best_ours["config"],
        "asyncpipe_items_per_s": best_ours["items_per_s"],
        "baseline_best": best_theirs["config"],
        "baseline_items_per_s": best_theirs["items_per_s"],
        "best_vs_best": best_ours["items_per_s"] / best_theirs["items_per_s"],
        "configs": len(common),
        "min": ratios[0],
        "median": statistics.median(ratios),
        "max": ratios[-1],
        "at_equal_configs": {c: ours[c]["items_per_s"] / theirs[c]["items_per_s"] for c in common},
        "asyncpipe_cpu_share": best_ours.get("cpu_share"),
        "baseline_cpu_share": best_theirs.get("cpu_share"),
        "sides": sides,
    }


def bound_warnings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """
    One warning per kind of bound that a run beat (ratio above `BOUND_SLACK`), naming the
    runs once each and why that bound was not one for them.
    """
    above: dict[bool, list[str]] = {True: [], False: []}
    for r in rows:
        if r.get("ratio", 0.0) > BOUND_SLACK:
            name = f"{r['name']} {r['config']} ({r['ratio']:.3f})"
            above[r.get("limiter") == "ocr"].append(name)
    out = []
    if above[True]:
        out.append(
            f"warning: ratio above 1 for {', '.join(above[True])}: these runs beat their "
            "OCR bound, so it was no bound for them; it is the bare engine's best reading "
            "with the run's OCR workers (capped at the cores), and the machine's load was "
            "lower during those runs than when the bare engine was timed"
        )
    if above[False]:
        out.append(
            f"warning: ratio above 1 for {', '.join(above[False])}: these runs beat their "
            "LLM bound (the server's latency and rate limit, which the load does not move), "
            "so the bound's model does not hold for them: a fault of the harness, worth an "
            "issue"
        )
    return out


def _judged(best: Mapping[str, float]) -> float:
    """The lower of the two regimes' best ratios, or NaN if either is missing or above 1."""
    values = [best.get(k, math.nan) for k in _REGIMES]
    if any(math.isnan(v) or v > BOUND_SLACK for v in values):
        return math.nan
    return min(values)


def regime_report(best: Mapping[str, float]) -> list[str]:
    """
    The best asyncpipe ratio to its bound in each regime, and what the last line's
    ``best_ratio_to_bound`` is made of: the lower of the two, when both are ratios to a
    bound; a ratio above 1 says the bound was not one, so it is named and not taken.
    """
    if not best:
        return []
    parts = []
    for key, name in _REGIMES.items():
        if key not in best:
            parts.append(f"{name} not run")
        elif best[key] > BOUND_SLACK:
            parts.append(f"{name} {best[key]:.3f} (above 1: its bound was not a bound)")
        else:
            parts.append(f"{name} {best[key]:.3f}")
    lines = ["best asyncpipe ratio to its bound for the run's items: " + ", ".join(parts)]
    b = _judged(best)
    if math.isnan(b):
        why = [
            f"the {name} ratio is above 1 (the warning above says why)"
            for key, name in _REGIMES.items()
            if best.get(key, math.nan) > BOUND_SLACK
        ] + [f"the {name} regime was not run" for key, name in _REGIMES.items() if key not in best]
        lines.append(
            "best_ratio_to_bound=nan on the last line: "
            + " and ".join(why)
            + "; it is the lower of the two regimes' ratios only when both are ratios to a "
            "bound"
        )
    else:
        lines.append(
            f"best_ratio_to_bound={b:.3f} on the last line: the lower of the two (the "
            "target must hold in both)"
        )
    return lines


def summary_line(best: Mapping[str, float], speedup: float, rss_growth: float) -> str:
    """
    ``bench best_ratio_to_bound=B speedup_vs_threadpool=S rss_growth=G``.

    B is the *lower* of the best ratios of the OCR-bound and the LLM-bound regimes (the
    target must hold in both), or NaN if either regime was not run or its best ratio is
    above `BOUND_SLACK` (the run beat that bound: it was no bound, and the lower of a
    ratio and a non-ratio is neither).
    """
    b = _judged(best)
    return (
        f"bench best_ratio_to_bound={b:.3f} speedup_vs_threadpool={speedup:.2f} "
        f"rss_growth={rss_growth:.3f}"
    )


def plot(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """
    Items/s against OCR workers (one line per LLM concurrency) and against LLM workers
    per stage (one line per OCR worker count), each with its steady bound dashed and the
    bound for the run's item count dotted; the baselines as a square and a grey line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = [r for r in rows if r["name"] == "asyncpipe" and r.get("sweep")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, x_key, group_key, x_label in (
        (axes[0], "ocr", "llm", "OCR workers"),
        (axes[1], "llm", "ocr", "LLM workers per stage (3 stages)"),
    ):
        groups = sorted({r[group_key] for r in sweep})
        for i, g in enumerate(groups):
            pts = sorted(
                (r[x_key], r["items_per_s"], r["bound"], r["bound_n"])
                for r in sweep
                if r[group_key] == g
            )
            xs = [p[0] for p in pts]
            color = f"C{i}"
            ax.plot(xs, [p[1] for p in pts], "o-", color=color, label=f"asyncpipe, {group_key}={g}")
            ax.plot(
                xs,
                [p[2] for p in pts],
                "--",
                color=color,
                alpha=0.6,
                label=f"steady bound, {group_key}={g}",
            )
            ax.plot(
                xs,
                [p[3] for p in pts],
                ":",
                color=color,
                label=f"bound for the run's items (fill+drain), {group_key}={g}",
            )
        seq = next((r for r in rows if r["name"] == "sequential"), None)
        if seq is not None:
            ax.axhline(seq["items_per_s"], color="grey", lw=1, label="sequential")
        for r in rows:
            if r["name"] == "stage-by-stage" and r.get(x_key) is not None:
                marker = "s"
                ax.plot(
                    [r[x_key]],
                    [r["items_per_s"]],
                    marker,
                    color="black",
                    label=f"{r['name']} ({r['config']})",
                )
        ticks = sorted({r[x_key] for r in sweep})
        if x_key == "llm":
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel(x_label)
        ax.set_ylabel("items/s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
