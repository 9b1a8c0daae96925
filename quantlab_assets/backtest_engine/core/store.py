"""Warehouse tables of the backtest (one set shared by all strategies, keyed by strategy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.account import CASH_SYMBOL
from quantlab_assets.backtest_engine.core.frames import (
    BacktestOutput,
    run_backtest,
)
from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY, BACKTEST_SPEC, BACKTEST_STATE, BACKTEST_TRADES
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import ensure_table, read_strategy_slice
from quantlab_assets.data_curator.core.bars import adjusted_open

# Earlier than any stored session: "since start" reads of a strategy's history begin here.
FIRST_SESSION = "1990-01-01"


def read_resume_state(con, strategy: str, start) -> tuple[pd.DataFrame | None, pd.Timestamp | None]:
    """The stored state at the close before ``start`` (None when there is none) and the latest
    stored state date before that close (None for a strategy without history): the inputs of the
    resume rule (``core.step.state_gap``)."""
    prev = shift_sessions(start, -1)
    state = read_strategy_slice(con, BACKTEST_STATE, strategy, prev, prev)
    if len(state):
        return state, prev
    last = con.execute(
        f'SELECT max(date) FROM "{BACKTEST_STATE.name}" WHERE strategy = ? AND date < ?', [strategy, prev.date()]
    ).fetchall()[0][0]
    return None, (None if last is None else pd.Timestamp(last))


def read_spec_at(con, strategy: str, day) -> tuple[str, str] | None:
    """(spec version, spec JSON) the stored state of ``day`` was built under; None when no
    version is stored for it (no state, or a state from before versions were recorded)."""
    rows = read_strategy_slice(con, BACKTEST_SPEC, strategy, day, day)
    if not len(rows):
        return None
    return str(rows["spec_version"].iloc[0]), str(rows["spec"].iloc[0])


def read_equity_history(con, strategy: str, end) -> pd.DataFrame:
    """A strategy's stored equity rows from its first session to ``end``: what its KPIs are over."""
    return read_strategy_slice(con, BACKTEST_EQUITY, strategy, FIRST_SESSION, end)


def read_trades(con, strategy: str, start, end) -> pd.DataFrame:
    """A strategy's stored fills dated in [start, end]."""
    return read_strategy_slice(con, BACKTEST_TRADES, strategy, start, end)


def with_strategy(frame: pd.DataFrame, strategy: str) -> pd.DataFrame:
    out = frame.copy()
    out.insert(1, "strategy", strategy)
    return out


def equal_weight_benchmark(bars: pd.DataFrame, first_invested=None) -> pd.Series:
    """Daily return of an equal-weight, daily-rebalanced book of the universe (close to close,
    adjusted), indexed by date; the first session has no return. The bars of one symbol give that
    symbol's own return (a named benchmark, the spec's ``benchmark``).

    ``first_invested``: the benchmark under the strategy's execution convention. The strategy
    holds nothing before the open of its first fill (a decision at a close fills at the next
    open), so the benchmark has no return before that session (NaN: relative figures start where
    both sides can be invested), earns open to close on it (bought at the same open) and close to
    close after. None: close to close on every session."""
    wide = bars.pivot_table(index="date", columns="symbol", values="adj_close", aggfunc="first").sort_index()
    rets = (wide / wide.shift(1) - 1.0).mean(axis=1, skipna=True)
    if first_invested is None:
        return rets
    first = pd.Timestamp(first_invested)
    opens = bars.assign(adj_open=adjusted_open(bars))
    opens = opens.pivot_table(index="date", columns="symbol", values="adj_open", aggfunc="first").sort_index()
    intraday = (wide / opens.reindex_like(wide) - 1.0).mean(axis=1, skipna=True)
    index = pd.DatetimeIndex(rets.index)
    return rets.where(index > first, intraday.where(index == first))


def first_invested_session(equity: pd.DataFrame, invested_before: bool = False):
    """The first session of ``equity`` whose open filled an order or whose close held a book (the
    strategy's first invested session); the frame's first date when it was invested before; None
    when it never held anything in the frame."""
    if not len(equity):
        return None
    if invested_before:
        return pd.Timestamp(equity["date"].min()) - pd.Timedelta(days=1)
    held = (equity["gross_exposure"].to_numpy() > 0) | (equity["turnover"].to_numpy() > 0)
    return pd.Timestamp(equity["date"].to_numpy()[held].min()) if held.any() else None


def read_invested_before(con, strategy: str, start) -> bool:
    """Whether the stored backtest of ``strategy`` held a book (or traded) before ``start``."""
    ensure_table(con, BACKTEST_EQUITY)
    row = con.execute(
        f'SELECT count(*) FROM "{BACKTEST_EQUITY.name}" WHERE strategy = ? AND date < ? '
        "AND (gross_exposure > 0 OR turnover > 0)",
        [strategy, pd.Timestamp(start).date()],
    ).fetchone()
    return bool(row and row[0])


def accounting_breaks(equity: pd.DataFrame, positions: pd.DataFrame, tolerance: float = 1e-6) -> pd.DataFrame:
    """Dates where equity != cash + Σ shares × price (relative tolerance), from stored tables."""
    held = positions.assign(v=positions["shares"] * positions["price"]).groupby("date")["v"].sum()
    book = equity.set_index("date")
    value = held.reindex(book.index).fillna(0.0)
    gap = (book["equity"] - (book["cash"] + value)).abs()
    bad = gap > tolerance * np.maximum(1.0, book["equity"].abs())
    return pd.DataFrame(
        {
            "date": book.index[bad],
            "equity": book["equity"][bad].to_numpy(),
            "cash_plus_positions": (book["cash"] + value)[bad].to_numpy(),
        }
    )


def backtest_strategy(
    bars: pd.DataFrame,
    decisions: pd.DataFrame,
    start,
    end,
    costs,
    capital: float,
    state: pd.DataFrame | None = None,
    holding: tuple[pd.DataFrame | None, float | None] = (None, None),
    invested_before: bool = False,
    benchmark_bars: pd.DataFrame | None = None,
) -> tuple[BacktestOutput, pd.DataFrame]:
    """A strategy's backtest over [start, end] with its ``costs`` (the spec's costs model) and
    ``capital``; returns the engine's output and the equity rows with the benchmark's return
    (``benchmark_ret``). One call for every caller (the asset, the research API), so their numbers
    are the same.

    ``bars`` starts one session before ``start`` (the benchmark's first return needs it).
    ``invested_before``: the strategy held a book before ``start`` (the stored history says so);
    the benchmark is credited from the strategy's first invested session (``equal_weight_benchmark``).
    ``benchmark_bars``: the bars of a named benchmark symbol (the spec's ``benchmark``) over the
    same sessions, under the same execution convention; None: the equal-weight universe (``bars``).
    """
    out = run_backtest(
        bars,  # run_backtest keeps the sessions in [start, end]
        decisions,
        start,
        end,
        state=state,
        fee_bps=costs.fee_bps,
        slippage_bps=costs.slippage_bps,
        capital=capital,
        borrow_bps=costs.borrow_bps,
        cash_interest_bps=costs.cash_interest_bps,
        max_participation=costs.max_participation,
        holding=holding,
    )
    held = state is not None and bool((state.loc[state["symbol"] != CASH_SYMBOL, "shares"].to_numpy() != 0).any())
    first = first_invested_session(out.equity, invested_before or held)
    if first is None:
        return out, out.equity.assign(benchmark_ret=np.nan)
    bench = equal_weight_benchmark(bars if benchmark_bars is None else benchmark_bars, first)
    return out, out.equity.assign(benchmark_ret=bench.reindex(out.equity["date"]).to_numpy())
