"""The backtest's gate rules, as ``GateResult``s the Dagster layer only adapts. They judge the
candidate rows of a partition before they are published (``core/step.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import SINCE_START
from quantlab_assets.backtest_engine.core.store import accounting_breaks
from quantlab_assets.common.gates import GateResult

LEVEL_KPIS = ["total_return", "cagr", "annual_volatility", "max_drawdown", "turnover"]


def accounting_identity(equity: pd.DataFrame, positions: pd.DataFrame) -> GateResult:
    breaks = accounting_breaks(equity, positions)
    return GateResult(
        "accounting_identity",
        breaks.empty,
        f"identity holds on all {len(equity)} sessions"
        if breaks.empty
        else f"{len(breaks)} sessions break it, first {breaks['date'].iloc[0].date()}",
        figures={"sessions": float(len(equity))},
        offending=breaks,
    )


def no_trade_before_decision(trades: pd.DataFrame) -> GateResult:
    early = trades[~(trades["date"] > trades["decision_date"])] if len(trades) else trades
    return GateResult(
        "no_trade_before_decision",
        early.empty,
        f"all {len(trades)} fills come after their decision"
        if early.empty
        else f"{len(early)} fills on or before their decision date, first {_first_fill(early)}",
        figures={"fills": float(len(trades))},
        offending=early,
    )


def _first_fill(fills: pd.DataFrame) -> str:
    first = fills.sort_values(["date", "symbol"]).iloc[0]
    decided = "no decision" if pd.isna(first["decision_date"]) else f"decided {first['decision_date'].date()}"
    return f"{first['date'].date()} ({first['symbol']}, {decided})"


def kpis_finite(kpis: pd.DataFrame) -> GateResult:
    since = kpis[(kpis["scope"] == SINCE_START) & (kpis["sessions"] >= 2)]
    bad = [c for c in LEVEL_KPIS if len(since) and not np.isfinite(since[c].to_numpy(float)).all()]
    return GateResult(
        "kpis_finite",
        not bad,
        "level KPIs finite" if not bad else f"non-finite values in {bad}",
        figures={"rows_checked": float(len(since))},
    )
