"""The backtest simulator: target weights over adjusted prices, with costs.

Arrays have time along axis 0 and one column per symbol. ``simulate`` is the kernel (NumPy
arrays in and out); ``run_backtest`` is the wrapper the asset layer calls with long frames.

Execution convention (shared with ``feature_store.core.labels``)
-----------------------------------------------------------------
* The weight row decided at the **close of session t** is filled at the **open of session
  t+1**. A decision row that is entirely NaN means "no decision that day": the book is held
  and nothing trades at the next open. In a decision row that has at least one number, a NaN
  for a symbol means **weight 0** (the position is closed).
* Prices are adjusted (``adj_open = open * adj_close / close``, ``adj_close``), so dividends
  and splits are in the returns; share counts are in units of the adjusted price.
* Sizing: equity at the open, ``E_open = cash + sum(shares * open)``, sets every target:
  ``target_shares = w * E_open / open``. Fractional shares are allowed; weights may be
  negative (short) and may sum to more than 1 (leverage): there is no margin model, and
  negative equity is not prevented.
* Cash (the convention of vectorbt's ``from_orders`` with ``call_seq='auto'``): a session's
  orders run in ascending order value ``w * E_open - shares * open`` (target value minus held
  value; ties in symbol order), so every sell comes before any buy; each buy is trimmed
  so that cash after it and its cost stays at or above the floor
  ``min(0, E_open * (1 - sum(w)))`` (0 when the weights sum to at most 1 + 1e-9, the
  rounding of a sum of weights). A book whose weights sum to at most 1 (in particular a
  long-only book with gross <= 1) therefore never has negative cash: with costs the last
  (largest) buy gets what is left after the costs, so the book is invested slightly below its
  targets. A levered book (weights summing to more than 1) borrows exactly its intended
  ``E_open * (sum(w) - 1)`` and no more.
* Costs: fees and slippage are both in basis points of traded notional, charged to cash at
  the fill: ``cost = |shares traded * open| * (fee_bps + slippage_bps) / 1e4`` per trade. The
  fill price itself is the open, chosen in one place, ``nb.fill_price_nb`` (slippage is a cost,
  not a price shift).
* Carry, per session (252 a year), charged to cash at the close: interest on the cash held
  through the session, ``cash * cash_interest_bps / 1e4 / 252`` (paid at the same rate when
  cash is negative; default 0), and a borrow fee on short positions,
  ``|short value at the close| * borrow_bps / 1e4 / 252``. ``DailyResult.costs`` (and the
  ``costs`` column) is trading costs plus borrow fees; interest is P&L.
* Participation cap (optional, ``max_participation``): an order trades at most that share of
  the session's volume in the symbol; the rest is dropped, not carried (the next decision
  supersedes it, as for a skipped order), and the order is reported in ``skipped`` with the
  reason ``participation cap``.
* A symbol without an open price that day cannot trade: its order is skipped (reported in
  ``DailyResult.skipped``), not filled at a stale price and not retried later; the next
  decision supersedes it. An order exists when the target weight or the held position is
  non-zero. A held position that cannot be sold keeps its value in the book and its cash
  stays unspent: the other orders are sized on the whole equity as usual, and the buys are
  trimmed to the cash there is (down to the floor), so cash does not go negative for it.
* Valuation: a position is marked at its last known close. In the equity at the open, a
  held symbol without an open is marked at its last known close too. A symbol that has never
  printed a close (its first bar has an open but no close) is marked at that first open until
  its first close.

Incremental equals batch
------------------------
The cash/shares recursion is path dependent; it runs as one compiled pass over sessions
(``nb.simulate_nb``) that also derives the marks, the fills and the skipped orders as it goes.
Every sum over symbols runs in one fixed order per session, and the per-session outputs
(equity, exposures, returns) are elementwise afterwards, so each session goes through the same
floating-point operations whether it is simulated alone or inside a longer call: calling
``simulate`` day by day, threading the state, gives bit-identical results to one call over all days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core import nb
from quantlab_assets.common.calendar import SESSIONS_PER_YEAR
from quantlab_assets.data_curator.core.bars import adjusted_open, adjusted_volume

BPS = 1e4
DEFAULT_CAPITAL = 1_000_000.0
CASH_SYMBOL = "$CASH"
SKIP_REASONS = {nb.NO_OPEN: "no open price", nb.CAPPED: "participation cap (rest dropped)"}

STATE_COLUMNS = ("date", "symbol", "shares", "last_close", "pending_weight", "equity")
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


def _frozen(values, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only float64 copy (states and results never alias the caller's arrays)."""
    arr = np.array(values, dtype=np.float64, copy=True)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"expected shape {shape}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@dataclass(frozen=True, eq=False)
class BacktestState:
    """The account after the last processed close.

    ``pending`` is the weight row decided at that close (to fill at the next open), or None
    when no decision was taken. ``last_close`` is the mark of each symbol (its last known
    close; NaN for a symbol never priced). ``equity = cash + sum(shares * last_close)``.
    Two states compare equal when every field is bit-identical (NaN equal to NaN).
    """

    cash: float
    shares: np.ndarray
    pending: np.ndarray | None
    last_close: np.ndarray
    equity: float

    def __post_init__(self):
        shares = _frozen(self.shares)
        if shares.ndim != 1:
            raise ValueError(f"shares must be 1-D, got shape {shares.shape}")
        n = shares.shape
        object.__setattr__(self, "shares", shares)
        object.__setattr__(self, "last_close", _frozen(self.last_close, n))
        if self.pending is not None:
            pending = _frozen(self.pending, n)
            if not np.isfinite(pending).all():
                raise ValueError("pending weights must be finite (a NaN weight means 0: convert it)")
            object.__setattr__(self, "pending", pending)
        object.__setattr__(self, "cash", float(self.cash))
        object.__setattr__(self, "equity", float(self.equity))

    @classmethod
    def initial(cls, n_symbols: int, capital: float = DEFAULT_CAPITAL) -> BacktestState:
        """All cash, no position, no pending order, no known price."""
        if not np.isfinite(capital) or capital <= 0:
            raise ValueError(f"capital must be a positive number, got {capital!r}")
        return cls(
            cash=capital,
            shares=np.zeros(n_symbols),
            pending=None,
            last_close=np.full(n_symbols, np.nan),
            equity=capital,
        )

    @property
    def n_symbols(self) -> int:
        return self.shares.shape[0]

    def __eq__(self, other) -> bool:
        if not isinstance(other, BacktestState):
            return NotImplemented
        return (
            _bits(self.cash) == _bits(other.cash)
            and _bits(self.equity) == _bits(other.equity)
            and _same(self.shares, other.shares)
            and _same(self.pending, other.pending)
            and _same(self.last_close, other.last_close)
        )

    # Unhashable (``__hash__`` is None): Python sets that for a class defining ``__eq__`` alone.


def _bits(x: float) -> bytes:
    return np.float64(x).tobytes()


@dataclass(frozen=True, eq=False)
class Trades:
    """One entry per fill. ``t`` is the session index within the call, ``decision_t = t - 1``
    (-1: decided at the close before the call, i.e. the state's pending row). ``shares`` and
    ``notional = shares * price`` are signed (buy > 0); ``cost`` is positive."""

    t: np.ndarray
    symbol: np.ndarray
    shares: np.ndarray
    price: np.ndarray
    notional: np.ndarray
    cost: np.ndarray
    decision_t: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True, eq=False)
class SkippedOrders:
    """Orders not filled because the symbol had no open price that session (``reason``
    ``nb.NO_OPEN``), or filled only up to the participation cap (``nb.CAPPED``)."""

    t: np.ndarray
    symbol: np.ndarray
    weight: np.ndarray
    shares_held: np.ndarray
    decision_t: np.ndarray
    reason: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True, eq=False)
class DailyResult:
    """Per-session outputs of ``simulate`` (length T) and per-symbol matrices (T x N).

    equity, cash: at the close. equity_open: cash + marked holdings at the open, before trades.
    gross/net exposure: sum(|value|) / equity and sum(value) / equity at the close.
    turnover: traded notional / equity_open. traded_notional: sum over the fills. costs: the
    fills' costs plus the borrow fee; borrow_fees and interest: the session's carry.
    pnl_net: equity - previous equity; pnl_gross = pnl_net + costs; ret = pnl_net / previous equity.
    positions: shares held after each session; prices: the marks used to value them.
    """

    equity: np.ndarray
    cash: np.ndarray
    equity_open: np.ndarray
    gross_exposure: np.ndarray
    net_exposure: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    traded_notional: np.ndarray
    borrow_fees: np.ndarray
    interest: np.ndarray
    pnl_gross: np.ndarray
    pnl_net: np.ndarray
    ret: np.ndarray
    positions: np.ndarray
    prices: np.ndarray
    trades: Trades
    skipped: SkippedOrders

    def __len__(self) -> int:
        return len(self.equity)


_DAILY_FIELDS = tuple(f.name for f in fields(DailyResult) if f.name not in ("trades", "skipped"))


def concat_results(results: Sequence[DailyResult]) -> DailyResult:
    """Results of consecutive ``simulate`` calls as one, with session indices made global."""
    if not results:
        raise ValueError("nothing to concatenate")
    offsets = np.cumsum([0] + [len(r) for r in results[:-1]])
    daily = {name: np.concatenate([getattr(r, name) for r in results]) for name in _DAILY_FIELDS}

    def merge(kind, attr):
        parts = {}
        for f in fields(kind):
            arrays = [getattr(getattr(r, attr), f.name) for r in results]
            if f.name in ("t", "decision_t"):
                arrays = [a + off for a, off in zip(arrays, offsets)]
            parts[f.name] = np.concatenate(arrays)
        return kind(**parts)

    return DailyResult(**daily, trades=merge(Trades, "trades"), skipped=merge(SkippedOrders, "skipped"))


def _array(name: str, values, shape: tuple[int, int] | None) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (sessions x symbols), got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return arr


def _validate(open_: np.ndarray, close: np.ndarray, decisions: np.ndarray) -> None:
    """The precise error for inputs the compiled pass rejected (only run on that path)."""
    for name, arr in (("open_", open_), ("close", close)):
        if arr.size:
            # fmin/fmax skip NaN (a missing price).
            if np.fmax.reduce(arr, axis=None) == np.inf:
                raise ValueError(f"{name} contains an infinite price")
            if np.fmin.reduce(arr, axis=None) <= 0:
                raise ValueError(f"{name} contains a non-positive price; a missing price must be NaN")
    if np.isinf(decisions).any():
        raise ValueError("decisions contain an infinite weight")
    raise ValueError("invalid prices or weights")


def simulate(
    state: BacktestState,
    open_,
    close,
    decisions,
    fee_bps: float = 0.0,
    slippage_bps: float = 0.0,
    *,
    borrow_bps: float = 0.0,
    cash_interest_bps: float = 0.0,
    max_participation: float | None = None,
    volume=None,
    keep=None,
    pending_keep=None,
    band: float | None = None,
) -> tuple[BacktestState, DailyResult]:
    """Simulate T sessions from ``state``; returns the state after the last close and the results.

    Parameters
    ----------
    state : BacktestState
        The account after the close before the first session (``BacktestState.initial`` to start).
    open_, close : array (T, N)
        Adjusted open and close prices; NaN = no price that session.
    decisions : array (T, N)
        ``decisions[t]`` is the weight row decided at the close of session t, filled at the open
        of t+1 (the last row becomes the new state's ``pending``). All-NaN row = no decision; a
        NaN inside a decision row = weight 0.
    fee_bps, slippage_bps : float
        Costs in basis points of traded notional.
    borrow_bps, cash_interest_bps : float
        Borrow fee on short value and interest on cash, basis points per year, accrued per
        session (252 a year).
    max_participation : float or None
        Largest share of the session's ``volume`` an order may trade (None: no cap).
    volume : array (T, N) or None
        Volume in share units of the prices (needed with ``max_participation``); NaN = none.
    keep, pending_keep : bool arrays (T, N) and (N,), or None
        Hold until the signal changes: ``keep[t]`` marks the names of decision row t whose target
        is unchanged, ``pending_keep`` those of the state's pending decision. A kept name that is
        on its target's side is not traded (its position drifts).
    band : float or None
        No-trade band: a name on its target's side whose weight at the open is within ``band``
        of its target is not traded. A flip or an exit always trades.

    The inputs are never modified. See the module docstring for the full convention.
    """
    _check_options(state, fee_bps, slippage_bps, borrow_bps, cash_interest_bps, max_participation)
    _check_band(band)
    open_, close, decisions, volume = _market_arrays(state, open_, close, decisions, volume, max_participation)
    cost_rate = (fee_bps + slippage_bps) / BPS
    T, N = open_.shape
    out = _KernelOutput(
        *nb.simulate_nb(
            open_,
            close,
            volume,
            decisions,
            float(state.cash),
            np.array(state.shares, dtype=np.float64),
            np.array(state.pending if state.pending is not None else np.zeros(N), dtype=np.float64),
            state.pending is not None,
            np.array(state.last_close, dtype=np.float64),
            cost_rate,
            float(max_participation or 0.0),
            borrow_bps / BPS / SESSIONS_PER_YEAR,
            cash_interest_bps / BPS / SESSIONS_PER_YEAR,
            np.empty((T, N)),
            np.empty((T, N)),
            np.zeros((T, N), dtype=np.bool_) if keep is None else np.asarray(keep, dtype=np.bool_).reshape(T, N),
            np.zeros(N, dtype=np.bool_) if pending_keep is None else np.asarray(pending_keep, dtype=np.bool_),
            np.nan if band is None else float(band),
        )
    )
    if out.error:
        _validate(open_, close, decisions)  # raises, naming the array and the problem
    result = _daily_result(out, state.equity)
    if T == 0:
        return state, result
    new_state = BacktestState(
        cash=result.cash[-1],
        shares=result.positions[-1],
        pending=out.pending if out.has_pending else None,
        last_close=result.prices[-1],
        equity=result.equity[-1],
    )
    return new_state, result


def _check_options(state, fee_bps, slippage_bps, borrow_bps, cash_interest_bps, max_participation) -> None:
    if not isinstance(state, BacktestState):
        raise TypeError(f"state must be a BacktestState, got {type(state).__name__}")
    for name, bps in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps), ("borrow_bps", borrow_bps)):
        if not np.isfinite(bps) or bps < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {bps!r}")
    if not np.isfinite(cash_interest_bps):
        raise ValueError(f"cash_interest_bps must be finite, got {cash_interest_bps!r}")
    if max_participation is not None and not 0 < max_participation <= 1:
        raise ValueError(f"max_participation must be in (0, 1] or None, got {max_participation!r}")


def _check_band(band: float | None) -> None:
    if band is not None and not 0 < band <= 1:
        raise ValueError(f"band must be in (0, 1] or None, got {band!r}")


def _market_arrays(state: BacktestState, open_, close, decisions, volume, max_participation) -> tuple:
    """The (T, N) float64 arrays the kernel reads, shapes checked against each other and the state."""
    open_ = _array("open_", open_, None)
    T, N = open_.shape
    if N != state.n_symbols:
        raise ValueError(f"prices have {N} symbols, the state has {state.n_symbols}")
    close = _array("close", close, (T, N))
    decisions = _array("decisions", decisions, (T, N))
    if max_participation is not None and volume is None:
        raise ValueError("max_participation needs the volume")
    volume = _array("volume", volume, (T, N)) if volume is not None else np.empty((T, N))
    return open_, close, decisions, volume


class _KernelOutput(NamedTuple):
    """What ``nb.simulate_nb`` returns, by name."""

    error: int
    positions: np.ndarray
    marks: np.ndarray
    cash_close: np.ndarray
    equity_open: np.ndarray
    traded: np.ndarray
    costs: np.ndarray
    borrow: np.ndarray
    interest: np.ndarray
    net_value: np.ndarray
    gross_value: np.ndarray
    fills: tuple  # (t, symbol, shares, price, cost)
    skips: tuple  # (t, symbol, weight, shares held, reason)
    pending: np.ndarray
    has_pending: bool


def _daily_result(out: _KernelOutput, equity_before: float) -> DailyResult:
    """The per-session figures, elementwise from the kernel's sums (so a session's floats do not
    depend on the call it ran in), and the fills and skipped orders it recorded."""
    T = len(out.cash_close)
    equity = out.cash_close + out.net_value
    prev_equity = np.empty(T)
    if T:
        prev_equity[0] = equity_before
        prev_equity[1:] = equity[:-1]
    pnl_net = equity - prev_equity
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = pnl_net / prev_equity
        turnover = out.traded / out.equity_open
        gross_exposure = out.gross_value / equity
        net_exposure = out.net_value / equity
    fill_t, fill_j, fill_d, fill_p, fill_c = out.fills
    trades = Trades(
        t=fill_t,
        symbol=fill_j,
        shares=fill_d,
        price=fill_p,
        notional=fill_d * fill_p,
        cost=fill_c,
        decision_t=fill_t - 1,
    )
    skip_t, skip_j, skip_w, skip_h, skip_r = out.skips
    skipped = SkippedOrders(
        t=skip_t, symbol=skip_j, weight=skip_w, shares_held=skip_h, decision_t=skip_t - 1, reason=skip_r
    )
    costs = out.costs + out.borrow
    return DailyResult(
        equity=equity,
        cash=out.cash_close,
        equity_open=out.equity_open,
        gross_exposure=gross_exposure,
        net_exposure=net_exposure,
        turnover=turnover,
        costs=costs,
        traded_notional=out.traded,
        borrow_fees=out.borrow,
        interest=out.interest,
        pnl_gross=pnl_net + costs,
        pnl_net=pnl_net,
        ret=ret,
        positions=out.positions,
        prices=out.marks,
        trades=trades,
        skipped=skipped,
    )


# ---------------------------------------------------------------------------------------------
# Persisting the state: one row per symbol plus one cash row.


def state_to_frame(state: BacktestState, symbols: Sequence[str], as_of) -> pd.DataFrame:
    """The state as a small table (``STATE_COLUMNS``) dated ``as_of`` (the last processed close).

    One row per symbol (shares, last_close = mark, pending_weight: NaN on every row when no
    decision is pending) and one ``CASH_SYMBOL`` row (shares = cash, last_close = 1). Every row
    carries the account equity, so a resumed run starts from exactly the stored figure.
    """
    symbols = list(symbols)
    if len(symbols) != state.n_symbols or len(set(symbols)) != len(symbols):
        raise ValueError(f"need {state.n_symbols} distinct symbol names, got {len(symbols)}")
    if CASH_SYMBOL in symbols:
        raise ValueError(f"{CASH_SYMBOL!r} is reserved for the cash row")
    pending = state.pending if state.pending is not None else np.full(state.n_symbols, np.nan)
    frame = pd.DataFrame(
        {
            "symbol": symbols + [CASH_SYMBOL],
            "shares": np.append(state.shares, state.cash),
            "last_close": np.append(state.last_close, 1.0),
            "pending_weight": np.append(pending, np.nan),
        }
    )
    frame.insert(0, "date", pd.Timestamp(as_of).normalize())
    frame["equity"] = state.equity
    return frame[list(STATE_COLUMNS)]


def state_from_frame(frame: pd.DataFrame, symbols: Sequence[str] | None = None) -> BacktestState:
    """Rebuild a state from ``state_to_frame`` rows, aligned to ``symbols`` (default: the frame's
    symbols, sorted). Symbols absent from the frame start flat and unpriced; a frame symbol
    outside ``symbols`` that holds shares or a non-zero pending weight is an error."""
    missing = set(STATE_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"state frame lacks columns {sorted(missing)}")
    if frame["date"].nunique() != 1:
        raise ValueError("a state frame holds exactly one date")
    if frame["symbol"].duplicated().any():
        raise ValueError("duplicate symbols in the state frame")
    rows = frame.set_index("symbol")
    if CASH_SYMBOL not in rows.index:
        raise ValueError(f"state frame has no {CASH_SYMBOL!r} row")
    cash_row = rows.loc[CASH_SYMBOL]
    rows = rows.drop(index=CASH_SYMBOL)
    names = sorted(rows.index) if symbols is None else list(symbols)
    dropped = rows.loc[~rows.index.isin(names)]
    lost = dropped[(dropped["shares"] != 0) | (dropped["pending_weight"].fillna(0) != 0)]
    if len(lost):
        raise ValueError(f"state holds positions or orders in symbols outside the run: {sorted(lost.index)[:5]}")
    aligned = rows.reindex(names)
    pending = aligned["pending_weight"].to_numpy(dtype=np.float64)
    has_pending = rows["pending_weight"].notna().any()
    return BacktestState(
        cash=float(cash_row["shares"]),
        shares=aligned["shares"].fillna(0.0).to_numpy(dtype=np.float64),
        pending=np.where(np.isnan(pending), 0.0, pending) if has_pending else None,
        last_close=aligned["last_close"].to_numpy(dtype=np.float64),
        equity=float(cash_row["equity"]),
    )


# ---------------------------------------------------------------------------------------------
# The frames wrapper for the asset layer.


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
