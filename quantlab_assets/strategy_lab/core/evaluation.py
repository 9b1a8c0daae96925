"""The strategy's own KPIs (seed: reproducibility, turnover, constraint violations 0, top-k
precision) and the signal's quality against labels: information coefficients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.feature_store.core.labels import label_column
from quantlab_assets.strategy_lab.core.construct import EPS
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def signal_quality(targets: pd.DataFrame, labels: pd.DataFrame, horizon: int = 5) -> dict[str, float]:
    """Per decision date: IC (Pearson of score vs forward return), rank IC (Spearman), and
    top-k precision (share of held long names whose forward return beats the date's median).

    Only dates whose labels are available count; the means are over those dates.
    """
    col = label_column(horizon)
    if targets.empty or labels.empty:  # no decision date (a holiday partition): nothing to evaluate
        targets, labels = (f.iloc[:0].astype({"date": "datetime64[us]"}) for f in (targets, labels))
    data = targets.merge(labels[["date", "symbol", col]], on=["date", "symbol"], how="inner")
    data = data.dropna(subset=["score", col])
    ics, rank_ics, precisions = [], [], []
    for _, day in data.groupby("date", sort=True):
        if len(day) < 3 or day["score"].nunique() < 2 or day[col].nunique() < 2:
            continue
        ics.append(np.corrcoef(day["score"], day[col])[0, 1])
        rank_ics.append(np.corrcoef(day["score"].rank(), day[col].rank())[0, 1])
        held = day[day["weight"] > 0]
        if len(held):
            precisions.append(float((held[col] > day[col].median()).mean()))
    ic = np.asarray(ics)
    return {
        "dates_evaluated": float(len(ics)),
        "ic_mean": float(ic.mean()) if len(ic) else float("nan"),
        "ic_ir": float(ic.mean() / ic.std(ddof=1)) if len(ic) > 1 and ic.std(ddof=1) > 0 else float("nan"),
        "rank_ic_mean": float(np.mean(rank_ics)) if rank_ics else float("nan"),
        "top_k_precision": float(np.mean(precisions)) if precisions else float("nan"),
    }


def book_stats(targets: pd.DataFrame, turnover: dict) -> dict[str, float]:
    rebal = targets[targets["rebalance"]]
    held = rebal[rebal["weight"].abs() > EPS].groupby("date").size()
    gross = targets.groupby("date")["weight"].apply(lambda w: w.abs().sum())
    return {
        "rebalances": float(rebal["date"].nunique()),
        "names_held_mean": float(held.mean()) if len(held) else 0.0,
        "gross_exposure_mean": float(gross.mean()) if len(gross) else 0.0,
        "turnover_per_rebalance_mean": float(np.mean(list(turnover.values()))) if turnover else 0.0,
    }


def book_per_day(targets: pd.DataFrame) -> dict[pd.Timestamp, dict]:
    """Each session's names held, gross exposure and whether it was a decision day."""
    return {
        day: {
            "names": int((g["weight"].abs() > EPS).sum()),
            "gross": float(g["weight"].abs().sum()),
            "rebalance": bool(g["rebalance"].iloc[0]),
        }
        for day, g in targets.groupby("date")
    }


def strategy_summary_markdown(
    spec: StrategySpec,
    start,
    end,
    universe: Sequence[str],
    stats: dict,
    quality: dict,
    violations: Sequence[str],
    notes: Sequence[str],
    latest: pd.DataFrame,
) -> str:
    c = spec.constraints
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"  # noqa: E731
    lines = [
        f"## {spec.name}: {pd.Timestamp(start).date()} … {pd.Timestamp(end).date()}",
        "",
        spec.description or "",
        "",
        f"- universe: {len(universe)} symbols"
        + (f" (sectors {', '.join(spec.universe.sectors)})" if spec.universe.sectors else ""),
        f"- signal: {spec.signal.kind} on {', '.join(spec.signal.features_used())}"
        f" (direction {spec.signal.direction:+d}); selection {spec.selection.kind}; weighting {spec.weighting.kind}; "
        f"rebalance {spec.rebalance.frequency}",
        f"- constraints: max weight {c.max_weight}, gross {c.gross_exposure}, net {c.net_exposure}, "
        f"min names {c.min_names}, max turnover {c.max_turnover if c.max_turnover is not None else 'none'}",
        f"- rebalances: {int(stats['rebalances'])}; names held (mean) {fmt(stats['names_held_mean'])}; "
        f"turnover per rebalance (mean, one-way) {fmt(stats['turnover_per_rebalance_mean'])}",
        f"- constraint violations: **{len(violations)}**",
        f"- signal quality vs 5-day labels over {int(quality['dates_evaluated'])} dates: IC {fmt(quality['ic_mean'])}, "
        f"rank IC {fmt(quality['rank_ic_mean'])}, IC IR {fmt(quality['ic_ir'])}, top-k precision "
        f"{fmt(quality['top_k_precision'])}",
    ]
    if violations:
        lines += ["", "### Violations", "", *[f"- {v}" for v in violations[:20]]]
    if notes:
        lines += ["", "### Notes", "", *[f"- {n}" for n in notes[:20]]]
    held = latest[latest["weight"].abs() > EPS].sort_values("weight", ascending=False)
    lines += [
        "",
        f"### Book at {pd.Timestamp(end).date()}",
        "",
        markdown_table(held[["symbol", "score", "weight"]], 30),
    ]
    return "\n".join(lines) + "\n"
