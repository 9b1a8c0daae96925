"""From features to target weights: score, select, weight, constrain; one session at a time.

Every decision for session D uses only D's features (and, for the model signal, labels whose
exit bar is at or before D) plus the previous session's targets, so a daily run and a
backfill make the same decisions, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import session_index, trading_days
from quantlab_assets.strategy_lab.core.spec import StrategyError, StrategySpec

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
    prev = pd.DatetimeIndex([trading_days(d - pd.Timedelta(days=10), d - pd.Timedelta(days=1))[-1]
                             for d in dates])
    if freq == "weekly":
        return np.asarray(dates.isocalendar().week.values != prev.isocalendar().week.values) | \
            np.asarray((dates - prev).days > 7)
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


def universe_filter(symbols: Sequence[str], sectors: Mapping[str, str], spec: StrategySpec) -> list[str]:
    """The registry symbols the strategy trades. A name or sector the registry does not know is
    an error naming the field (a typo would otherwise narrow or empty the universe silently), and
    so is a filter that leaves no symbol."""
    u = spec.universe
    unknown = [s for s in (*u.include, *u.exclude) if s not in symbols]
    if unknown:
        field = "include" if unknown[0] in u.include else "exclude"
        raise StrategyError(f"strategy {spec.name!r}: field 'universe.{field}': {unknown} not in the symbol "
                            f"registry ({len(symbols)} symbols)")
    known_sectors = set(sectors.get(s) for s in symbols)
    bad_sectors = [s for s in u.sectors if s not in known_sectors]
    if bad_sectors:
        raise StrategyError(f"strategy {spec.name!r}: field 'universe.sectors': {bad_sectors} matches no "
                            f"registry sector (sectors: {', '.join(sorted(map(str, known_sectors)))})")
    chosen = [s for s in symbols if (not u.include or s in u.include) and s not in u.exclude
              and (not u.sectors or sectors.get(s) in u.sectors)]
    if not chosen:
        raise StrategyError(f"strategy {spec.name!r}: field 'universe': include/exclude/sectors leave no "
                            f"symbol of the registry's {len(symbols)}")
    return sorted(chosen)
