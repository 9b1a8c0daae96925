"""``simulate``: the array API of the compiled kernel ``nb.simulate_nb`` and its result types.

NumPy arrays in (time along axis 0, one column per symbol), a ``BacktestState`` and a
``DailyResult`` out; the inputs are checked here, the loop runs compiled, and the per-session
figures are derived elementwise afterwards. The convention (fills, cash, costs, carry, marks) is
in ``backtest_engine.core.engine``'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from quantlab_assets.backtest_engine.core import nb
from quantlab_assets.backtest_engine.core.account import BacktestState
from quantlab_assets.common.calendar import SESSIONS_PER_YEAR

BPS = 1e4
SKIP_REASONS = {nb.NO_OPEN: "no open price", nb.CAPPED: "participation cap (rest dropped)"}


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
