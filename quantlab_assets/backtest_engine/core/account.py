"""The backtest account: ``BacktestState`` (cash, shares, the pending decision, the marks) and its
table form, one row per symbol plus one cash row (``state_to_frame`` / ``state_from_frame``), so a
later run resumes from a stored close bit for bit. The simulation convention is in
``backtest_engine.core.engine``'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_CAPITAL = 1_000_000.0
CASH_SYMBOL = "$CASH"
STATE_COLUMNS = ("date", "symbol", "shares", "last_close", "pending_weight", "equity")


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
