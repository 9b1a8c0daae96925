"""The arrays a sweep's variants share, and one variant's run on them.

``SharedArrays`` holds prices and features as (sessions x registry symbols) arrays, built once
per sweep (or once per ``ResearchData`` for the fast path); ``run_variant`` runs one spec's
targets and the engine's ``simulate`` kernel on them, the cores the assets call. ``period_kpis``
gives the KPIs of each variant's returns over a period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.engine import BacktestState, simulate
from quantlab_assets.backtest_engine.core.holding import keep_array
from quantlab_assets.backtest_engine.core.kpis import (
    annual_volatility,
    cagr,
    max_drawdown,
    sharpe_ratio,
    total_return,
)
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.bars import adjusted_open
from quantlab_assets.research.api import ResearchData
from quantlab_assets.research.sweep_spec import SweepError
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import book_arrays, model_predictions, wide_features

KPIS: dict[str, Callable[[np.ndarray], float]] = {
    "sharpe": sharpe_ratio,
    "cagr": cagr,
    "volatility": annual_volatility,
    "max_drawdown": max_drawdown,
    "total_return": total_return,
}


@dataclass
class SharedArrays:
    """Prices and features as (sessions x registry symbols) arrays, built once per sweep."""

    data: ResearchData
    sessions: pd.DatetimeIndex
    symbols: list[str]
    open_: np.ndarray
    close: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, data: ResearchData, start, end) -> SharedArrays:
        bars = data.bars[(data.bars["date"] >= pd.Timestamp(start)) & (data.bars["date"] <= pd.Timestamp(end))]
        sessions = trading_days(start, end)
        have = pd.DatetimeIndex(np.unique(bars["date"].to_numpy()))
        if not np.array_equal(have.to_numpy(), sessions.to_numpy()):
            raise ValueError(
                f"bars miss {len(sessions.difference(have))} session(s) in {pd.Timestamp(start).date()}.."
                f"{pd.Timestamp(end).date()}; sweeps need every session (use research.backtest)"
            )
        symbols = sorted(data.symbols)
        rows = sessions.get_indexer(bars["date"])
        cols = pd.Index(symbols).get_indexer(bars["symbol"])
        ok = cols >= 0
        open_ = np.full((len(sessions), len(symbols)), np.nan)
        close = np.full_like(open_, np.nan)
        open_[rows[ok], cols[ok]] = adjusted_open(bars)[ok]  # the engine's fill price
        close[rows[ok], cols[ok]] = bars["adj_close"].to_numpy(np.float64)[ok]
        return cls(data, sessions, symbols, open_, close)

    def feature(self, name: str) -> np.ndarray:
        if name not in self.features:
            self.features.update(wide_features(self.data.features, [name], self.sessions, self.symbols))
        return self.features[name]


def run_variant(shared: SharedArrays, spec: StrategySpec) -> dict[str, np.ndarray]:
    """Daily ret, turnover and costs of one spec over the shared sessions: the targets' and the
    backtest's cores on the shared arrays (equal to ``research.backtest``, a test holds it)."""
    universe = shared.data.universe(spec)
    cols = pd.Index(shared.symbols).get_indexer(universe)
    wide = {f: shared.feature(f)[:, cols] for f in spec.features_used()}
    wf = model_predictions(shared.data.features, shared.data.labels, spec, shared.sessions, wide, universe)
    predictions = wf.scores if wf is not None else None
    mask, _, book, _, _, _ = book_arrays(wide, spec, shared.sessions, np.zeros(len(cols)), predictions=predictions)
    decisions = np.where(mask[:, None], book, np.nan)
    if spec.costs.max_participation is not None:
        # The shared arrays carry no volume; a capped variant would silently trade uncapped.
        raise SweepError(
            f"strategy '{spec.name}': field 'costs.max_participation' is not supported in sweeps "
            "(run the variant with `quantlab backtest`)"
        )
    _, res = simulate(
        BacktestState.initial(len(cols), spec.capital),
        shared.open_[:, cols],
        shared.close[:, cols],
        decisions,
        spec.costs.fee_bps,
        spec.costs.slippage_bps,
        borrow_bps=spec.costs.borrow_bps,
        cash_interest_bps=spec.costs.cash_interest_bps,
        keep=keep_array(book) if spec.holding.kind == "until_change" else None,
        band=spec.holding.band,
    )
    return {"ret": res.ret, "turnover": res.turnover, "costs": res.costs}


def period_kpis(ret: np.ndarray, sessions: pd.DatetimeIndex, period) -> dict[str, np.ndarray]:
    """KPIs of each column of ``ret`` (sessions x variants) over the sessions in ``period``."""
    rows = (sessions >= period[0]) & (sessions <= period[1])
    # One contiguous column at a time: a 2-D reduction sums in another order (last bits differ
    # from the same variant's KPIs computed alone).
    cols = [np.ascontiguousarray(ret[rows, j]) for j in range(ret.shape[1])]
    return {k: np.array([float(f(c)) for c in cols]) for k, f in KPIS.items()}
