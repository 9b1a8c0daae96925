"""Targets over a range of sessions: the strategy's book decided at each close."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import session_index, trading_days
from quantlab_assets.common.warehouse import Column, TableSchema
from quantlab_assets.strategy_lab.core.construct import (
    EPS,
    REBALANCE_ANCHOR,
    constraint_violations,
    cross_sectional,
    decide,
    limit_turnover,
    rebalance_mask,
)
from quantlab_assets.strategy_lab.core.spec import StrategySpec

TARGETS = TableSchema(
    name="targets",
    description="Target weights per (date, strategy, symbol), decided at the close of date.",
    columns=(
        Column("date", "DATE", False, "decision date (close); filled at the next session's open"),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("score", "DOUBLE", description="signal, higher = more attractive; NULL if not scorable"),
        Column("weight", "DOUBLE", False, "target weight of equity (negative = short)"),
        Column("rebalance", "BOOLEAN", False, "a decision day: the backtest trades to these weights"),
    ),
)


def _empty_targets() -> pd.DataFrame:
    """No session in the range (a holiday): no rows, but the columns' types, so filters still work."""
    return pd.DataFrame({"date": pd.Series(dtype="datetime64[us]"), "strategy": pd.Series(dtype=object),
                         "symbol": pd.Series(dtype=object), "score": pd.Series(dtype=float),
                         "weight": pd.Series(dtype=float), "rebalance": pd.Series(dtype=bool)})


@dataclass
class TargetsResult:
    targets: pd.DataFrame
    final_weights: pd.Series
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    turnover: dict = field(default_factory=dict)  # rebalance (or forced-exit) date -> one-way turnover


def _z_matrix(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({n: cross_sectional(frame[n], "zscore") for n in names})


def ridge_fit(features: pd.DataFrame, labels: pd.DataFrame, spec: StrategySpec, refit_date) -> np.ndarray | None:
    """Walk-forward ridge on cross-sectional z-scores, trained only on labels known at ``refit_date``
    (exit bar at or before it) from the ``train_sessions`` before it."""
    m = spec.signal.model
    h = int(m.label.rsplit("_", 1)[1])
    lo = trading_days(pd.Timestamp(refit_date) - pd.Timedelta(days=int(m.train_sessions * 1.6) + 10),
                      refit_date)[-(m.train_sessions + 1):][0]
    known = labels[(labels["date"] >= lo) & (labels["date"] < refit_date)
                   & (labels[f"exit_date_{h}"] <= refit_date)].dropna(subset=[m.label])
    data = features.merge(known[["date", "symbol", m.label]], on=["date", "symbol"], how="inner")
    xs, ys = [], []
    for _, day in data.groupby("date", sort=True):
        day = day.set_index("symbol").sort_index()
        z = _z_matrix(day, m.features)
        y = day[m.label] - day[m.label].mean()
        ok = z.notna().all(axis=1) & y.notna()
        xs.append(z[ok].to_numpy())
        ys.append(y[ok].to_numpy())
    if not xs or sum(len(x) for x in xs) < 10 * len(m.features):
        return None
    x, y = np.vstack(xs), np.concatenate(ys)
    return np.linalg.solve(x.T @ x + m.alpha * len(x) * np.eye(x.shape[1]), x.T @ y)


def score_day(day: pd.DataFrame, spec: StrategySpec, beta: np.ndarray | None) -> pd.Series:
    """Scores of one session's universe (index = symbol); NaN where a needed feature is missing."""
    sig = spec.signal
    if sig.kind == "feature":
        raw = cross_sectional(day[sig.feature], "zscore")
    elif sig.kind == "blend":
        parts = [t.weight * cross_sectional(day[t.feature], t.transform) for t in sig.blend]
        raw = sum(parts[1:], parts[0])
    else:
        if beta is None:
            return pd.Series(np.nan, index=day.index)
        z = _z_matrix(day, sig.model.features)
        raw = pd.Series(z.to_numpy() @ beta, index=day.index).where(z.notna().all(axis=1))
    return raw * sig.direction


def compute_targets(
    features: pd.DataFrame, spec: StrategySpec, universe: Sequence[str], start, end,
    prev_weights: pd.Series | None = None, labels: pd.DataFrame | None = None,
) -> TargetsResult:
    """The book for every session in [start, end].

    ``features`` are long rows (date, symbol, features...) covering [start, end] (and, for a
    model signal, its training window); ``prev_weights`` are the targets of the session
    before ``start``. Off rebalance days the previous weights carry over.
    """
    universe = sorted(universe)
    days = trading_days(start, end)
    prev = prev_weights if prev_weights is not None else pd.Series(dtype=float)
    weights = prev.reindex(universe).fillna(0.0)
    # Names held yesterday that are no longer in the universe are sold at the first session;
    # their exit counts in that session's turnover (and against max_turnover).
    leaving = prev[~prev.index.isin(universe) & (prev.abs() > EPS)]
    mask = rebalance_mask(days, spec)
    by_date = {d: f.set_index("symbol") for d, f in features[features["symbol"].isin(universe)]
               .groupby("date", sort=True)}
    vol_name = spec.weighting.vol_feature if spec.weighting.kind == "inverse_vol" else None
    result = TargetsResult(pd.DataFrame(), weights)
    betas: dict = {}
    frames = []
    for i, (day, rebalance) in enumerate(zip(days, mask)):
        today = by_date.get(day, pd.DataFrame(index=pd.Index([], name="symbol"),
                                              columns=spec.features_used())).reindex(universe)
        beta = None
        if spec.signal.kind == "model":
            refit = _last_refit(day, spec.signal.model.refit_every)
            if refit not in betas:
                betas[refit] = ridge_fit(features, labels, spec, refit) if labels is not None else None
            beta = betas[refit]
        scores = score_day(today, spec, beta)
        if spec.universe.min_log_dollar_volume is not None:
            scores = scores.where(today["log_dollar_volume_20"] >= spec.universe.min_log_dollar_volume)
        exits = i == 0 and len(leaving) > 0
        target = None
        if rebalance:
            decision = decide(scores, today[vol_name] if vol_name else None, spec)
            if decision.note:
                result.notes.append(f"{day.date()}: {decision.note}")
            target = decision.weights
        elif exits:
            target = weights  # off a rebalance the book holds; only the leavers are sold
        if target is not None:
            held = pd.concat([weights, leaving]) if exits else weights
            weights, turnover = limit_turnover(target, held, spec.constraints.max_turnover)
            result.turnover[day] = turnover
            result.violations += [f"{day.date()}: {v}" for v in constraint_violations(weights, spec, turnover)]
        if exits:
            result.notes.append(f"{day.date()}: sold {', '.join(leaving.index)} (left the universe)")
        frames.append(pd.DataFrame({"date": day, "strategy": spec.name, "symbol": universe,
                                    "score": scores.to_numpy(float), "weight": weights.to_numpy(float),
                                    "rebalance": bool(rebalance)}))
    result.targets = (pd.concat(frames, ignore_index=True) if frames
                      else _empty_targets())[TARGETS.column_names]
    result.final_weights = weights
    return result


def _last_refit(day: pd.Timestamp, every: int) -> pd.Timestamp:
    """The latest session R <= day whose index since the anchor is a multiple of ``every``."""
    idx = int(session_index(pd.DatetimeIndex([day]), REBALANCE_ANCHOR)[0])
    back = idx % every
    return day if back == 0 else trading_days(day - pd.Timedelta(days=back * 2 + 10), day)[-(back + 1)]
