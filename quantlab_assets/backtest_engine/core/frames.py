"""``run_backtest``: the long-frame adapter the asset layer calls.

Long bars and targets frames in, windowed and laid out on the (sessions x symbols) grid for
``simulate``; the equity, positions, trades, skipped orders and per-session state frames out
(``BacktestOutput``). The simulation convention is in ``backtest_engine.core.engine``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.account import (
    CASH_SYMBOL,
    DEFAULT_CAPITAL,
    STATE_COLUMNS,
    BacktestState,
    state_from_frame,
    state_to_frame,
)
from quantlab_assets.backtest_engine.core.simulation import SKIP_REASONS, DailyResult, SkippedOrders, Trades, simulate
from quantlab_assets.data_curator.core.bars import adjusted_open, adjusted_volume

EQUITY_COLUMNS = (
    "date",
    "equity",
    "cash",
    "gross_exposure",
    "net_exposure",
    "turnover",
    "costs",
    "pnl_gross",
    "pnl_net",
    "ret",
)
POSITION_COLUMNS = ("date", "symbol", "shares", "price", "value", "weight")
TRADE_COLUMNS = ("date", "decision_date", "symbol", "side", "shares", "price", "notional", "cost")
SKIPPED_COLUMNS = ("date", "decision_date", "symbol", "weight", "shares_held", "reason")


@dataclass(frozen=True, eq=False)
class BacktestOutput:
    """Frames of one ``run_backtest`` call and the state to resume from.

    equity: ``EQUITY_COLUMNS``, one row per session. positions: ``POSITION_COLUMNS``, non-zero
    holdings after each close (price = mark, weight = value / equity). trades: ``TRADE_COLUMNS``
    (shares and notional signed, side ``buy``/``sell``). skipped: ``SKIPPED_COLUMNS``.
    """

    equity: pd.DataFrame
    positions: pd.DataFrame
    trades: pd.DataFrame
    skipped: pd.DataFrame
    state: BacktestState
    symbols: tuple[str, ...]
    as_of: pd.Timestamp | None
    # The state after every session's close (``STATE_COLUMNS``), so any later session can resume.
    states: pd.DataFrame | None = None

    def state_frame(self) -> pd.DataFrame:
        if self.as_of is None:
            raise ValueError("nothing was simulated and no state was given: there is no state to store")
        return state_to_frame(self.state, self.symbols, self.as_of)


def _window(frame: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    dates = pd.to_datetime(frame["date"]).dt.normalize()
    keep = ((dates >= lo) & (dates <= hi)).to_numpy()
    return frame.assign(date=dates)[keep]


def _cells(frame: pd.DataFrame, name: str, sessions: pd.DatetimeIndex, symbols) -> tuple:
    """Row (session) and column (symbol) index of every row; duplicate cells are an error."""
    rows = sessions.get_indexer(frame["date"])
    cols = pd.Index(symbols).get_indexer(frame["symbol"])
    flat = rows.astype(np.int64) * max(len(symbols), 1) + cols
    # Counting cells is linear: sort them (np.unique) only when one repeats, to name it.
    if len(flat) and flat.min() >= 0 and np.bincount(flat).max() <= 1:
        return rows, cols
    uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
    if len(uniq) != len(flat):
        row = frame.iloc[first[np.argmax(counts > 1)]]
        raise ValueError(
            f"{name} has duplicate (date, symbol) rows, e.g. {row['symbol']} {pd.Timestamp(row['date']).date()}"
        )
    return rows, cols


def _wide(values, cells: tuple, shape: tuple[int, int]) -> np.ndarray:
    """A (sessions x symbols) array holding ``values`` at ``cells``; NaN elsewhere."""
    out = np.full(shape, np.nan)
    out[cells] = np.asarray(values, dtype=np.float64)
    return out


def run_backtest(
    bars_long: pd.DataFrame,
    targets_long: pd.DataFrame,
    start: date | str,
    end: date | str,
    state: pd.DataFrame | None = None,
    fee_bps: float = 0.0,
    slippage_bps: float = 0.0,
    capital: float = DEFAULT_CAPITAL,
    *,
    borrow_bps: float = 0.0,
    cash_interest_bps: float = 0.0,
    max_participation: float | None = None,
    holding: tuple[pd.DataFrame | None, float | None] = (None, None),
) -> BacktestOutput:
    """Simulate the sessions in [start, end] from long frames.

    bars_long: date, symbol, open, close, adj_close (the sessions are the dates present here),
    and volume when ``max_participation`` is set (taken to adjusted share units).
    targets_long: date, symbol, weight; a date with rows is a decision (absent symbols: weight
    0), a session without rows is no decision. Targets dated before ``start`` are ignored (a
    decision taken at the close before ``start`` is in the state); targets dated in the window
    on a date without bars are an error.
    state: ``state_to_frame`` rows of the close before ``start`` to resume from, or None to
    start with ``capital`` in cash. A resumed run equals one run over both windows bit for bit
    when the symbol set is the same. Stored shares and marks are in the adjustment basis of the
    bars the earlier run saw: if a provider later back-adjusts history (a new dividend or split
    rescales past adj_close), re-run from an earlier state rather than resume.
    holding: (keep rows, band) of ``simulate``'s holding rules: keep rows are date, symbol, keep
    (``core.holding.keep_flags``; the row dated on the state's date marks the pending decision)
    or None; band a float or None.
    """
    capped = max_participation is not None
    bars, targets, sessions = _windowed_inputs(bars_long, targets_long, start, end, capped)
    state_as_of = _state_date(state, sessions)
    state_symbols = [] if state is None else [s for s in state["symbol"] if s != CASH_SYMBOL]
    symbols = tuple(sorted(set(bars["symbol"].unique()) | set(targets["symbol"].unique()) | set(state_symbols)))
    initial = state_from_frame(state, symbols) if state is not None else BacktestState.initial(len(symbols), capital)
    grid = _Grid(sessions, symbols, _cells(bars, "bars_long", sessions, symbols))
    decisions, decided = _decisions(targets, grid)
    final, res = simulate(
        initial,
        grid.wide(adjusted_open(bars)),
        grid.wide(bars["adj_close"]),
        decisions,
        fee_bps,
        slippage_bps,
        borrow_bps=borrow_bps,
        cash_interest_bps=cash_interest_bps,
        max_participation=max_participation,
        volume=_volume_in_adjusted_shares(bars, grid) if capped else None,
        **_holding_arrays(holding, grid, state_as_of),
    )
    return BacktestOutput(
        equity=_equity_frame(sessions, res),
        positions=_positions_frame(sessions, symbols, res),
        trades=_trades_frame(sessions, symbols, res.trades, state_as_of),
        skipped=_skipped_frame(sessions, symbols, res.skipped, state_as_of),
        state=final,
        symbols=symbols,
        as_of=sessions[-1] if len(sessions) else state_as_of,
        states=_states_frame(sessions, symbols, res, decisions, decided),
    )


def _holding_arrays(holding: tuple, grid: _Grid, state_as_of) -> dict:
    """``simulate``'s keep, pending_keep and band from ``run_backtest``'s holding argument."""
    keep_long, band = holding
    if keep_long is None:
        return {"band": band}
    dates = pd.to_datetime(keep_long["date"]).dt.normalize()
    known = keep_long["symbol"].isin(grid.symbols).to_numpy()
    inside = keep_long.assign(date=dates)[dates.isin(grid.sessions).to_numpy() & known]
    keep = np.nan_to_num(grid.wide(inside["keep"].astype(float), _cells(inside, "keep", grid.sessions, grid.symbols)))
    pending = np.zeros(len(grid.symbols), dtype=bool)
    if state_as_of is not None:
        before = keep_long[(dates == pd.Timestamp(state_as_of)).to_numpy()]
        flags = before.set_index("symbol")["keep"].reindex(list(grid.symbols)).fillna(False)
        pending = flags.to_numpy(dtype=bool)
    return {"keep": keep.astype(bool), "pending_keep": pending, "band": band}


def _windowed_inputs(bars_long: pd.DataFrame, targets_long: pd.DataFrame, start, end, capped: bool) -> tuple:
    """The bars and targets rows dated in [start, end], and the sessions (the bars' dates)."""
    need = {"date", "symbol", "open", "close", "adj_close"}
    if need - set(bars_long.columns):
        raise ValueError(f"bars_long lacks columns {sorted(need - set(bars_long.columns))}")
    if {"date", "symbol", "weight"} - set(targets_long.columns):
        raise ValueError("targets_long needs columns date, symbol, weight")
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if capped and "volume" not in bars_long.columns:
        raise ValueError("bars_long needs a volume column for max_participation")
    bars = _window(bars_long[["date", "symbol", "open", "close", "adj_close"] + ["volume"] * capped], lo, hi)
    targets = _window(targets_long[["date", "symbol", "weight"]], lo, hi)
    sessions = pd.DatetimeIndex(np.unique(bars["date"].to_numpy()))
    stray = np.setdiff1d(targets["date"].to_numpy(), sessions.to_numpy())
    if len(stray):
        raise ValueError(f"targets dated on {len(stray)} day(s) without bars, e.g. {pd.Timestamp(stray[0]).date()}")
    return bars, targets, sessions


def _state_date(state: pd.DataFrame | None, sessions: pd.DatetimeIndex) -> pd.Timestamp | None:
    """The close a stored state was taken at, which must come before the run's first session."""
    if state is None:
        return None
    as_of = pd.Timestamp(state["date"].iloc[0]).normalize()
    if len(sessions) and as_of >= sessions[0]:
        raise ValueError(
            f"the state is dated {as_of.date()}, not before the first session {sessions[0].date()} of the run"
        )
    return as_of


@dataclass(frozen=True)
class _Grid:
    """The (sessions x symbols) grid of a run and the cells the bars occupy in it."""

    sessions: pd.DatetimeIndex
    symbols: tuple[str, ...]
    bar_cells: tuple

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.sessions), len(self.symbols))

    def wide(self, values, cells: tuple | None = None) -> np.ndarray:
        return _wide(values, self.bar_cells if cells is None else cells, self.shape)


def _decisions(targets: pd.DataFrame, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """The (T, N) weights decided at each close, and which sessions have a decision: a session
    with target rows is a decision even if its weights are all NaN (absent symbols: weight 0)."""
    cells = _cells(targets, "targets_long", grid.sessions, grid.symbols)
    decisions = grid.wide(targets["weight"], cells)
    decided = np.zeros(len(grid.sessions), dtype=bool)
    decided[cells[0]] = True  # every target date is a session (_windowed_inputs refused the others)
    decisions[decided] = np.where(np.isnan(decisions[decided]), 0.0, decisions[decided])
    return decisions, decided


def _volume_in_adjusted_shares(bars: pd.DataFrame, grid: _Grid) -> np.ndarray:
    """Volume in share units of the adjusted prices (``volume * close / adj_close``)."""
    return grid.wide(adjusted_volume(bars["volume"], bars["adj_close"], bars["close"]).to_numpy())


def _states_frame(sessions, symbols, res: DailyResult, decisions: np.ndarray, decided: np.ndarray) -> pd.DataFrame:
    """``state_to_frame`` rows for every session, from the per-session arrays."""
    t, n = len(sessions), len(symbols)
    pending = np.where(decided[:, None], decisions, np.nan)
    frame = pd.DataFrame(
        {
            "date": np.repeat(sessions.to_numpy(), n + 1),
            "symbol": np.tile(np.array(list(symbols) + [CASH_SYMBOL], dtype=object), t),
            "shares": np.column_stack([res.positions, res.cash]).ravel() if t else np.empty(0),
            "last_close": np.column_stack([res.prices, np.ones(t)]).ravel() if t else np.empty(0),
            "pending_weight": np.column_stack([pending, np.full(t, np.nan)]).ravel() if t else np.empty(0),
            "equity": np.repeat(res.equity, n + 1),
        },
        columns=list(STATE_COLUMNS),
    )
    return frame


def _equity_frame(sessions, res: DailyResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": sessions,
            "equity": res.equity,
            "cash": res.cash,
            "gross_exposure": res.gross_exposure,
            "net_exposure": res.net_exposure,
            "turnover": res.turnover,
            "costs": res.costs,
            "pnl_gross": res.pnl_gross,
            "pnl_net": res.pnl_net,
            "ret": res.ret,
        },
        columns=list(EQUITY_COLUMNS),
    )


def _positions_frame(sessions, symbols, res: DailyResult) -> pd.DataFrame:
    t, j = np.nonzero(res.positions)
    shares = res.positions[t, j]
    price = res.prices[t, j]
    value = shares * price
    return pd.DataFrame(
        {
            "date": sessions[t],
            "symbol": np.asarray(symbols, dtype=object)[j],
            "shares": shares,
            "price": price,
            "value": value,
            "weight": value / res.equity[t],
        },
        columns=list(POSITION_COLUMNS),
    )


def _decision_dates(sessions, t: np.ndarray, state_as_of) -> np.ndarray:
    """The close at which each fill of session index t was decided: session t-1, or the
    state's date for the first session of the run."""
    values = np.asarray(sessions, dtype="datetime64[ns]")
    out = values[np.maximum(t - 1, 0)] if len(values) else np.empty(0, dtype="datetime64[ns]")
    out[t == 0] = np.datetime64("NaT") if state_as_of is None else np.datetime64(state_as_of, "ns")
    return out


def _trades_frame(sessions, symbols, trades: Trades, state_as_of) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": np.asarray(sessions, dtype="datetime64[ns]")[trades.t],
            "decision_date": _decision_dates(sessions, trades.t, state_as_of),
            "symbol": np.asarray(symbols, dtype=object)[trades.symbol],
            "side": np.where(trades.shares > 0, "buy", "sell"),
            "shares": trades.shares,
            "price": trades.price,
            "notional": trades.notional,
            "cost": trades.cost,
        },
        columns=list(TRADE_COLUMNS),
    )


def _skipped_frame(sessions, symbols, skipped: SkippedOrders, state_as_of) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": np.asarray(sessions, dtype="datetime64[ns]")[skipped.t],
            "decision_date": _decision_dates(sessions, skipped.t, state_as_of),
            "symbol": np.asarray(symbols, dtype=object)[skipped.symbol],
            "weight": skipped.weight,
            "shares_held": skipped.shares_held,
            "reason": np.array([SKIP_REASONS[r] for r in skipped.reason], dtype=object),
        },
        columns=list(SKIPPED_COLUMNS),
    )
