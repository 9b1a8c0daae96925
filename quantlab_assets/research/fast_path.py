"""The research fast path ``evaluate``: one spec's targets and the engine's kernel on the arrays
shared by every call on the same ``ResearchData``, then the since-start KPIs; no frames of
positions or trades, so a notebook loop over variants stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import SINCE_START, invested_kpi_table
from quantlab_assets.research.api import ResearchData, load_spec
from quantlab_assets.research.shared_arrays import SharedArrays, run_variant
from quantlab_assets.strategy_lab.core.spec import StrategySpec


@dataclass(frozen=True)
class Evaluation:
    """One variant's daily returns, turnover and costs, and its since-start KPIs at the end."""

    spec: StrategySpec
    sessions: pd.DatetimeIndex
    ret: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    kpis: dict

    @property
    def equity(self) -> pd.Series:
        """The book's value after each close, indexed by session (``ret`` compounded from capital)."""
        return pd.Series(self.spec.capital * np.cumprod(1.0 + self.ret), index=self.sessions, name="equity")


def evaluate(spec, data: ResearchData, overrides=None) -> Evaluation:
    """The fast path of a notebook loop: targets and the engine's kernel on the arrays shared by
    every call on ``data`` (built once), then the KPI table; no frames of positions or trades.
    The returns equal ``research.backtest``'s equity ``ret`` over the data's range bit for bit."""
    spec = load_spec(spec, overrides)
    shared = data.wide.get("shared")
    if shared is None:
        shared = data.wide["shared"] = SharedArrays.build(data, data.start, data.end)
    run = run_variant(shared, spec)
    table = invested_kpi_table(pd.DataFrame({"date": shared.sessions, "ret": run["ret"], "turnover": run["turnover"]}))
    last = table[table["scope"] == SINCE_START].iloc[-1]
    return Evaluation(
        spec,
        shared.sessions,
        run["ret"],
        run["turnover"],
        run["costs"],
        {k: float(v) for k, v in last.drop(["date", "scope"]).items()},
    )
