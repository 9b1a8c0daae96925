"""The per-session implementation of targets as of commit 434c245, frozen as the oracle the
vectorised targets are compared with bit for bit (tests only; not used by the package)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import session_index, shift_sessions, trading_days
from quantlab_assets.feature_store.core.schema import exit_column
from quantlab_assets.strategy_lab.core.schema import TARGETS
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TargetsResult

# Rebalance phases count sessions from one fixed anchor, never from a run's first date.
REBALANCE_ANCHOR = "1990-01-02"
EPS = 1e-12


def rebalance_mask(dates: pd.DatetimeIndex, spec: StrategySpec) -> np.ndarray:
    """True on the sessions where the strategy decides new targets."""
    freq = spec.rebalance.frequency
    if freq == "daily":
        return np.ones(len(dates), dtype=bool)
    if freq == "every_n":
        return session_index(dates, REBALANCE_ANCHOR) % spec.rebalance.n == 0
    # First session of each ISO week / calendar month: compare with the previous session.
    prev = pd.DatetimeIndex([trading_days(d - pd.Timedelta(days=10), d - pd.Timedelta(days=1))[-1] for d in dates])
    if freq == "weekly":
        return np.asarray(dates.isocalendar().week.values != prev.isocalendar().week.values) | np.asarray(
            (dates - prev).days > 7
        )
    return np.asarray((dates.month != prev.month) | (dates.year != prev.year))


def cross_sectional(values: pd.Series, transform: str) -> pd.Series:
    """z-score (population std) or percentile rank in (0, 1] across the symbols with values."""
    valid = values.dropna()
    if transform == "rank":
        return valid.rank(method="average", pct=True).reindex(values.index)
    if len(valid) < 2:
        return pd.Series(np.nan, index=values.index)
    std = valid.std(ddof=0)
    if not std > 0:
        return pd.Series(0.0, index=valid.index).reindex(values.index)
    return ((valid - valid.mean()) / std).reindex(values.index)


@dataclass(frozen=True)
class Decision:
    weights: pd.Series  # per symbol of the universe, 0 where not held
    scores: pd.Series
    note: str = ""  # why the book is flat or trimmed, if it is


def _cap(weights: pd.Series, side_total: float, cap: float) -> pd.Series:
    """Scale to ``side_total`` with no name above ``cap``: excess flows to uncapped names."""
    w = weights.copy()
    if w.empty or side_total <= 0:
        return w * 0.0
    w = w / w.sum() * side_total
    for _ in range(len(w)):
        over = w > cap + EPS
        if not over.any():
            break
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = w < cap - EPS
        if not free.any():
            break  # infeasible: the side stays below its total
        w[free] += excess * w[free] / w[free].sum()
    return w


def decide(scores: pd.Series, vols: pd.Series | None, spec: StrategySpec) -> Decision:
    """Selection, weighting and constraints for one session's scores (higher = better)."""
    c, sel = spec.constraints, spec.selection
    valid = scores.dropna().sort_index()
    flat = pd.Series(0.0, index=scores.index)
    if len(valid) < c.min_names:
        return Decision(flat, scores, f"{len(valid)} scorable names < min_names {c.min_names}: flat")
    # Stable ordering: by score, ties by symbol.
    order = valid.sort_values(ascending=False, kind="stable")
    if sel.kind == "top_k":
        longs, shorts = order.index[: sel.k], pd.Index([])
    elif sel.kind == "all":
        longs, shorts = order.index, pd.Index([])
    else:
        n = max(1, int(np.floor(len(order) * sel.quantile)))
        longs, shorts = order.index[:n], order.index[-n:]
    long_total = (c.gross_exposure + c.net_exposure) / 2 if len(shorts) else c.gross_exposure
    short_total = (c.gross_exposure - c.net_exposure) / 2 if len(shorts) else 0.0

    def raw(names: pd.Index, side: int) -> pd.Series:
        if spec.weighting.kind == "equal":
            return pd.Series(1.0, index=names)
        if spec.weighting.kind == "inverse_vol":
            v = vols.reindex(names) if vols is not None else pd.Series(np.nan, index=names)
            inv = 1.0 / v.where(v > 0)
            return inv.fillna(inv.median() if inv.notna().any() else 1.0)
        s = valid.reindex(names) * side
        return (s - s.min()) + (s.max() - s.min() + 1.0) * 0.05  # positive, score-proportional

    weights = flat.copy()
    weights[longs] = _cap(raw(longs, 1), long_total, c.max_weight)
    if len(shorts):
        weights[shorts] = -_cap(raw(shorts, -1), short_total, c.max_weight)
    held = int((weights.abs() > EPS).sum())
    if held < c.min_names:
        return Decision(flat, scores, f"only {held} names selected < min_names {c.min_names}: flat")
    return Decision(weights, scores)


def limit_turnover(new: pd.Series, prev: pd.Series, max_turnover: float | None) -> tuple[pd.Series, float]:
    """Move from ``prev`` toward ``new`` by at most ``max_turnover`` one-way (Σ|Δw| / 2).

    Names of ``prev`` missing from ``new``'s index have left the universe: they are sold in full,
    and their exit is counted first; the rest of the book moves within what is left of the budget
    (if the exits alone exceed it, the rest holds and the returned turnover says so). A convex
    blend of two feasible books keeps every linear limit (caps, gross, net).
    """
    leaving = prev[~prev.index.isin(new.index)]
    forced = float(leaving.abs().sum() / 2)
    prev = prev.reindex(new.index).fillna(0.0)
    turnover = float((new - prev).abs().sum() / 2)
    if max_turnover is None or turnover + forced <= max_turnover + EPS or turnover <= EPS:
        return new, turnover + forced
    budget = max(max_turnover - forced, 0.0)
    return prev + (budget / turnover) * (new - prev), forced + budget


def constraint_violations(weights: pd.Series, spec: StrategySpec, turnover: float | None = None) -> list[str]:
    """Readable sentences, one per violated limit (empty = compliant)."""
    c = spec.constraints
    out = []
    w = weights.fillna(0.0)
    held = w[w.abs() > EPS]
    if len(held) and held.abs().max() > c.max_weight + 1e-9:
        name = held.abs().idxmax()
        out.append(f"{name} weight {held[name]:.4f} exceeds max_weight {c.max_weight}")
    gross, net = float(w.abs().sum()), float(w.sum())
    if gross > c.gross_exposure + 1e-9:
        out.append(f"gross exposure {gross:.4f} exceeds {c.gross_exposure}")
    # Net is a limit between flat and the target: turnover blends from a flat book stay inside.
    lo, hi = sorted((0.0, c.net_exposure))
    if net < lo - 1e-9 or net > hi + 1e-9:
        out.append(f"net exposure {net:.4f} outside [{lo}, {hi}]")
    if 0 < len(held) < c.min_names:
        out.append(f"{len(held)} names held < min_names {c.min_names}")
    if turnover is not None and c.max_turnover is not None and turnover > c.max_turnover + 1e-9:
        out.append(f"turnover {turnover:.4f} exceeds max_turnover {c.max_turnover}")
    return out


def _z_matrix(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({n: cross_sectional(frame[n], "zscore") for n in names})


def ridge_fit(features: pd.DataFrame, labels: pd.DataFrame, spec: StrategySpec, refit_date) -> np.ndarray | None:
    """The walk-forward ridge as of commit 1c068b8 (before the other model kinds), frozen: ridge
    on cross-sectional z-scores, trained only on labels known at ``refit_date`` (exit bar at or
    before it) from the ``train_sessions`` before it."""
    m = spec.signal.model
    lo = shift_sessions(refit_date, -m.train_sessions)  # refit_date is a session
    known = labels[
        (labels["date"] >= lo) & (labels["date"] < refit_date) & (labels[exit_column(m.horizon)] <= refit_date)
    ].dropna(subset=[m.label])
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
    features: pd.DataFrame,
    spec: StrategySpec,
    universe: Sequence[str],
    start,
    end,
    prev_weights: pd.Series | None = None,
    labels: pd.DataFrame | None = None,
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
    by_date = {
        d: f.set_index("symbol") for d, f in features[features["symbol"].isin(universe)].groupby("date", sort=True)
    }
    vol_name = spec.weighting.vol_feature if spec.weighting.kind == "inverse_vol" else None
    result = TargetsResult(pd.DataFrame(), weights)
    betas: dict = {}
    frames = []
    for i, (day, rebalance) in enumerate(zip(days, mask)):
        today = by_date.get(day, pd.DataFrame(index=pd.Index([], name="symbol"), columns=spec.features_used())).reindex(
            universe
        )
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
        frames.append(
            pd.DataFrame(
                {
                    "date": day,
                    "strategy": spec.name,
                    "symbol": universe,
                    "score": scores.to_numpy(float),
                    "weight": weights.to_numpy(float),
                    "rebalance": bool(rebalance),
                }
            )
        )
    result.targets = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TARGETS.column_names))[
        TARGETS.column_names
    ]
    result.final_weights = weights
    return result


def _last_refit(day: pd.Timestamp, every: int) -> pd.Timestamp:
    """The latest session R <= day whose index since the anchor is a multiple of ``every``."""
    idx = int(session_index(pd.DatetimeIndex([day]), REBALANCE_ANCHOR)[0])
    back = idx % every
    return day if back == 0 else trading_days(day - pd.Timedelta(days=back * 2 + 10), day)[-(back + 1)]
