"""The strategy's own KPIs (seed: reproducibility, turnover, constraint violations 0, top-k
precision) and the signal's quality against labels: information coefficients."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numba import njit

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.feature_store.core.schema import label_column
from quantlab_assets.strategy_lab.core.limits import EPS
from quantlab_assets.strategy_lab.core.spec import StrategySpec

QUALITY_HORIZON = 5  # the labels the signal is judged against (days ahead)


def day_groups(dates: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """``groupby("date", sort=True)`` as positions: the rows in group order (days ascending,
    frame order within a day, no NaT), each day's bounds in that order (``bounds[i]:bounds[i + 1]``)
    and the days. Reductions over a day's slice then see the values pandas' groups would."""
    values = dates.to_numpy()
    keep = np.flatnonzero(~pd.isna(values))
    order = keep[np.argsort(values[keep], kind="stable")]
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(order) else np.zeros(0, np.int64)
    return order, np.r_[starts, len(order)], pd.DatetimeIndex(ordered[starts])


@njit(cache=True)
def average_ranks(x, bounds):
    """Each day's ranks (``x[bounds[i]:bounds[i + 1]]``) from 1, ties sharing their average, as
    pandas ``rank()`` gives them (exact: halves of integers)."""
    out = np.empty(len(x))
    for d in range(len(bounds) - 1):
        lo, hi = bounds[d], bounds[d + 1]
        vals = x[lo:hi]
        order = np.argsort(vals, kind="mergesort")
        i, m = 0, hi - lo
        while i < m:
            j = i
            while j + 1 < m and vals[order[j + 1]] == vals[order[i]]:
                j += 1
            for q in range(i, j + 1):
                out[lo + order[q]] = (i + 1 + j + 1) / 2
            i = j + 1
    return out


def _with_label(rows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``rows.merge(labels, on=["date", "symbol"], how="inner")`` (labels: date, symbol, one label)
    as a lookup on integer keys: the rows that have a label, in their order, with it. Labels
    with a (date, symbol) twice take pandas' merge, which repeats such rows."""
    n, on = len(rows), ["date", "symbol"]
    dates = np.concatenate([f["date"].to_numpy("datetime64[ns]") for f in (rows, labels)])
    symbols = np.concatenate([f["symbol"].to_numpy(object) for f in (rows, labels)])
    day_code, _ = pd.factorize(dates, use_na_sentinel=False)  # NaN keys match each other, as in a merge
    symbol_code, names = pd.factorize(symbols, use_na_sentinel=False)
    key = day_code.astype(np.int64) * max(len(names), 1) + symbol_code
    order = np.argsort(key[n:], kind="stable")
    label_keys = key[n:][order]
    if (label_keys[1:] == label_keys[:-1]).any():
        return rows.merge(labels, on=on, how="inner")
    at = np.minimum(np.searchsorted(label_keys, key[:n]), max(len(label_keys) - 1, 0))
    found = label_keys[at] == key[:n] if len(label_keys) else np.zeros(n, bool)
    out = rows[found].reset_index(drop=True)
    column = labels.columns.drop(on)[0]
    out[column] = labels[column].to_numpy()[order[at[found]]]
    return out


def signal_quality(targets: pd.DataFrame, labels: pd.DataFrame, horizon: int = QUALITY_HORIZON) -> dict[str, float]:
    """Per decision date: IC (Pearson of score vs forward return), rank IC (Spearman), and
    top-k precision (share of held long names whose forward return beats the date's median).

    Only dates whose labels are available count; the means are over those dates.
    """
    col = label_column(horizon)
    if targets.empty or labels.empty:  # no decision date (a holiday partition): nothing to evaluate
        targets, labels = (f.iloc[:0].astype({"date": "datetime64[us]"}) for f in (targets, labels))
    data = _with_label(targets[["date", "symbol", "score", "weight"]], labels[["date", "symbol", col]])
    data = data.dropna(subset=["score", col])
    order, bounds, _ = day_groups(data["date"])
    score, label, weight = (data[c].to_numpy(np.float64)[order] for c in ("score", col, "weight"))
    return _quality(score, label, weight, bounds)


def signal_quality_wide(
    score: np.ndarray,
    weight: np.ndarray,
    days: pd.DatetimeIndex,
    universe: Sequence[str],
    labels: pd.DataFrame,
    horizon: int = QUALITY_HORIZON,
) -> dict[str, float] | None:
    """``signal_quality`` of targets whose rows are ``score`` and ``weight`` (sessions ``days`` x
    symbols ``universe``, unique and sorted) read row by row, as ``compute_targets`` lays them out:
    each label is placed in its cell once instead of joining 1.3 M rows. None when the labels hold
    a (date, symbol) twice (the frame's join would repeat that row): use ``signal_quality``."""
    col = label_column(horizon)
    rows = days.get_indexer(pd.DatetimeIndex(labels["date"]))
    cols = pd.Index(universe).get_indexer(labels["symbol"])
    keep = (rows >= 0) & (cols >= 0)
    cell = rows[keep].astype(np.int64) * len(universe) + cols[keep]
    if len(cell) and np.bincount(cell).max() > 1:
        return None
    label = np.full(score.shape, np.nan)
    label.ravel()[cell] = labels[col].to_numpy(np.float64)[keep]
    ok = ~np.isnan(score) & ~np.isnan(label)  # the rows the frame's join and dropna keep, in its order
    bounds = np.r_[0, np.cumsum(ok.sum(axis=1))]
    return _quality(score[ok], label[ok], weight[ok], bounds)


def _quality(score: np.ndarray, label: np.ndarray, weight: np.ndarray, bounds: np.ndarray) -> dict[str, float]:
    """The figures of ``signal_quality`` from each date's scored and labelled rows
    (``[bounds[i]:bounds[i + 1]]``, dates ascending)."""
    score_rank, label_rank = average_ranks(score, bounds), average_ranks(label, bounds)
    ics, rank_ics, precisions = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):  # one date's rows; numpy, not a pandas frame per date
        s, y = score[a:b], label[a:b]
        if b - a < 3 or not (s.min() < s.max() and y.min() < y.max()):  # fewer than 2 distinct values
            continue
        ics.append(np.corrcoef(s, y)[0, 1])
        rank_ics.append(np.corrcoef(score_rank[a:b], label_rank[a:b])[0, 1])
        held = weight[a:b] > 0
        if held.any():
            precisions.append(float((y[held] > np.median(y)).mean()))
    ic = np.asarray(ics)
    return {
        "dates_evaluated": float(len(ics)),
        "ic_mean": float(ic.mean()) if len(ic) else float("nan"),
        "ic_ir": float(ic.mean() / ic.std(ddof=1)) if len(ic) > 1 and ic.std(ddof=1) > 0 else float("nan"),
        "rank_ic_mean": float(np.mean(rank_ics)) if rank_ics else float("nan"),
        "top_k_precision": float(np.mean(precisions)) if precisions else float("nan"),
    }


def _gross_per_day(weight: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Each day's Σ|w| (NaN counted as 0), summed as pandas sums one group (numpy's pairwise sum)."""
    absw = np.abs(np.nan_to_num(weight, nan=0.0, posinf=np.inf, neginf=-np.inf))
    return np.array([absw[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float64)


def book_stats(targets: pd.DataFrame, turnover: dict) -> dict[str, float]:
    order, bounds, _ = day_groups(targets["date"])
    weight = targets["weight"].to_numpy(np.float64)[order]
    rebalance = targets["rebalance"].to_numpy(bool)[order]
    held_rows = rebalance & (np.abs(weight) > EPS)
    # Names held per decision day with any name held (a flat day has no group).
    held = np.array([held_rows[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.int64)
    held = pd.Series(held[held > 0])
    gross = pd.Series(_gross_per_day(weight, bounds))
    rebalance_days = np.array([rebalance[a:b].any() for a, b in zip(bounds[:-1], bounds[1:])], dtype=bool)
    return {
        "rebalances": float(rebalance_days.sum()),
        "names_held_mean": float(held.mean()) if len(held) else 0.0,
        "gross_exposure_mean": float(gross.mean()) if len(gross) else 0.0,
        "turnover_per_rebalance_mean": float(np.mean(list(turnover.values()))) if turnover else 0.0,
    }


def book_per_day(targets: pd.DataFrame) -> dict[pd.Timestamp, dict]:
    """Each session's names held, gross exposure and whether it was a decision day."""
    order, bounds, days = day_groups(targets["date"])
    weight = targets["weight"].to_numpy(np.float64)[order]
    rebalance = targets["rebalance"].to_numpy(bool)[order]
    held = np.abs(weight) > EPS
    gross = _gross_per_day(weight, bounds)
    return {
        day: {"names": int(held[a:b].sum()), "gross": float(g), "rebalance": bool(rebalance[a])}
        for day, a, b, g in zip(days, bounds[:-1], bounds[1:], gross)
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
