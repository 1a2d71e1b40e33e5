"""
The bench's outputs: the rows, the terminal table, the JSON file, the plot and the last line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_table", "headline", "plot", "summary_line"]


def _num(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """
    One line per run: contender, worker counts, items/s, the bound, the ratio to it, the
    bottleneck (predicted and measured), per-stage utilisation and peak RSS.
    """
    head = (
        f"{'run':<15} {'config':<28} {'n':>3} {'items/s':>8} {'bound':>7} {'bound@n':>7} "
        f"{'ratio':>6} {'steady':>6} {'limiter':<15} {'busiest':<10} {'rss MB':>7}  "
        "utilisation"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        util = " ".join(f"{k[:4]}={v:.2f}" for k, v in r.get("utilisation", {}).items())
        lines.append(
            f"{r['name']:<15} {r['config']:<28} {r['items']:>3} {_num(r['items_per_s'], '8.3f')} "
            f"{_num(r.get('bound'), '7.3f')} {_num(r.get('bound_n'), '7.3f')} "
            f"{_num(r.get('ratio'), '6.3f')} {_num(r.get('ratio_steady'), '6.3f')} "
            f"{r.get('limiter') or '-':<15} {r.get('bottleneck') or '-':<10} "
            f"{_num(r.get('peak_rss_mb'), '7.0f')}  {util}"
        )
    return "\n".join(lines)


def headline(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """
    The best ratio to the bound of the asyncpipe runs in each regime (``ocr``/``llm``).
    """
    best: dict[str, float] = {}
    for r in rows:
        if r["name"] != "asyncpipe" or r.get("ratio") is None or r.get("extra"):
            continue
        regime = r["regime"]
        best[regime] = max(best.get(regime, -math.inf), r["ratio"])
    return best


def summary_line(best: Mapping[str, float], speedup: float, rss_growth: float) -> str:
    """
    ``bench best_ratio_to_bound=B speedup_vs_threadpool=S rss_growth=G``.

    B is the *lower* of the best ratios of the OCR-bound and the LLM-bound regimes (the
    target must hold in both), or NaN if either regime was not run.
    """
    b = min(best.get("ocr", math.nan), best.get("llm", math.nan))
    if any(math.isnan(best.get(k, math.nan)) for k in ("ocr", "llm")):
        b = math.nan
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
