"""What the book held and how its trades ended: holdings over time and round-trip statistics.

pyfolio's two views the tearsheet lacked, our own code over the stored tables:

- **Holdings** (pyfolio's ``plot_holdings`` / ``show_and_plot_top_positions``): the weight of
  every name (its value over the day's equity) by date, the names held long and short, and the
  ``n`` names with the largest absolute weight at any date over time.
- **Round trips** (pyfolio's ``round_trips.extract_round_trips`` and ``gen_round_trip_stats``):
  shares are matched first in, first out per symbol. A trade against the open side closes the
  oldest lots first; each closing trade is one round trip (``pnl`` = shares matched times exit
  minus entry price, sign of the side; ``rt_return`` = ``pnl`` over the entry notional matched;
  ``returns`` = ``pnl`` over the book's equity at the previous close, pyfolio's
  portfolio-relative return; ``duration`` from the first matched lot's date). Shares left over
  after the open side is exhausted open a lot on the other side (a long that flips short).
  ``pnl`` is gross of costs as in pyfolio; ``net_pnl`` also deducts the costs of the matched
  entry and exit shares pro rata. Fractional shares are matched exactly (pyfolio rounds to whole
  shares; the tests cross-check it on whole shares).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

TOP_HOLDINGS = 10
ROUND_TRIP_COLUMNS = (
    "symbol",
    "long",
    "open_dt",
    "close_dt",
    "shares",
    "pnl",
    "net_pnl",
    "rt_return",
    "returns",
    "duration_days",
    "duration_sessions",
)
# One source per figure: the column it aggregates and how (display order of the table).
ROUND_TRIP_STATS = (
    "round_trips",
    "winning",
    "losing",
    "even",
    "win_rate",
    "total_pnl",
    "total_net_pnl",
    "gross_profit",
    "gross_loss",
    "profit_factor",
    "avg_pnl",
    "median_pnl",
    "avg_win",
    "avg_loss",
    "win_loss_ratio",
    "largest_win",
    "largest_loss",
    "avg_return",
    "median_return",
    "avg_trade_return",
    "median_trade_return",
    "avg_holding_days",
    "median_holding_days",
    "longest_holding_days",
    "shortest_holding_days",
    "avg_holding_sessions",
)
_EPS = 1e-9  # shares: what is left of a lot below this is float noise of the matching


# --- holdings ------------------------------------------------------------------------------------


def holding_weights(positions: pd.DataFrame, equity: pd.DataFrame) -> pd.DataFrame:
    """date x symbol weights: each position's value over that date's equity (0 where not held),
    on every date of ``equity``."""
    eq = equity.set_index("date")["equity"].sort_index()
    wide = positions.pivot_table(index="date", columns="symbol", values="value", aggfunc="sum")
    wide = wide.reindex(eq.index).fillna(0.0)
    return wide.div(eq, axis=0)


def holdings_over_time(positions: pd.DataFrame, equity: pd.DataFrame) -> pd.DataFrame:
    """Per date: names held (long, short, all), gross and net exposure of the held weights and the
    largest absolute weight (concentration)."""
    w = holding_weights(positions, equity)
    return pd.DataFrame(
        {
            "names": (w != 0).sum(axis=1).astype(np.int64),
            "long_names": (w > 0).sum(axis=1).astype(np.int64),
            "short_names": (w < 0).sum(axis=1).astype(np.int64),
            "gross_exposure": w.abs().sum(axis=1),
            "net_exposure": w.sum(axis=1),
            "max_abs_weight": w.abs().max(axis=1) if w.shape[1] else pd.Series(0.0, index=w.index),
        }
    )


def top_holdings(positions: pd.DataFrame, equity: pd.DataFrame, n: int = TOP_HOLDINGS) -> pd.DataFrame:
    """The ``n`` names with the largest absolute weight at any date, largest first: that weight
    (signed), the average weight while held and the sessions held."""
    w = holding_weights(positions, equity)
    cols = ["symbol", "max_weight", "avg_weight_held", "sessions_held"]
    if not w.shape[1]:
        return pd.DataFrame(columns=cols)
    peak_at = w.abs().to_numpy().argmax(axis=0)
    held = w != 0
    table = pd.DataFrame(
        {
            "symbol": w.columns,
            "max_weight": w.to_numpy()[peak_at, np.arange(w.shape[1])],
            "avg_weight_held": w.where(held).mean().to_numpy(),
            "sessions_held": held.sum().to_numpy().astype(np.int64),
        }
    )
    order = np.lexsort((table["symbol"].to_numpy(), -table["max_weight"].abs().to_numpy()))
    return table.iloc[order].head(n).reset_index(drop=True)


# --- round trips ---------------------------------------------------------------------------------


def round_trips(trades: pd.DataFrame, equity: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per closing trade (``ROUND_TRIP_COLUMNS``) from ``backtest_trades`` rows (``date``,
    ``symbol``, signed ``shares``, ``price``, ``cost``); ``equity`` (``date``, ``equity``,
    ``ret``) gives the portfolio-relative ``returns`` and the holding period in sessions."""
    sessions = None if equity is None else pd.DatetimeIndex(equity.sort_values("date")["date"])
    start_value = None if equity is None else _start_of_day_equity(equity)
    merged = _merge_same_day(trades)
    rows: list[dict] = []
    symbols = merged["symbol"].to_numpy()
    cuts = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    columns = [merged[c].tolist() for c in ("date", "shares", "price", "cost")]  # Timestamps, floats
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(symbols)]):
        if hi > lo:
            rows += _match_symbol(symbols[lo], *(c[lo:hi] for c in columns))
    out = pd.DataFrame(rows, columns=[c for c in ROUND_TRIP_COLUMNS if c not in ("returns", "duration_sessions")])
    out["duration_days"] = (out["close_dt"] - out["open_dt"]).dt.days if len(out) else []
    out["returns"] = (
        out["pnl"].to_numpy() / start_value.reindex(out["close_dt"]).to_numpy() if start_value is not None else np.nan
    )
    if sessions is not None and len(out):
        out["duration_sessions"] = sessions.searchsorted(out["close_dt"]) - sessions.searchsorted(out["open_dt"])
    else:
        out["duration_sessions"] = np.nan
    return out[list(ROUND_TRIP_COLUMNS)].sort_values(["close_dt", "symbol"], kind="stable").reset_index(drop=True)


def _start_of_day_equity(equity: pd.DataFrame) -> pd.Series:
    eq = equity.sort_values("date").set_index("date")
    return eq["equity"] / (1.0 + eq["ret"].fillna(0.0))  # the previous close (the capital on day one)


def _merge_same_day(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades of one symbol on one date in the same direction become one at their average price
    (pyfolio merges a direction's fills within 8 hours the same way); sorted by symbol and date,
    a date's directions in the order they came. One groupby for every symbol."""
    frame = trades.loc[trades["shares"].to_numpy() != 0, ["symbol", "date", "shares", "price", "cost"]]
    frame = frame.sort_values(["symbol", "date"], kind="stable")
    g = frame.assign(sign=np.sign(frame["shares"]), value=frame["shares"] * frame["price"])
    merged = g.groupby(["symbol", "date", "sign"], sort=False).agg(
        shares=("shares", "sum"), value=("value", "sum"), cost=("cost", "sum")
    )
    merged = merged.reset_index().sort_values(["symbol", "date"], kind="stable")
    merged["price"] = merged["value"] / merged["shares"]
    return merged.reset_index(drop=True)


def _match_symbol(symbol, dates: list, shares_: list, prices: list, costs: list) -> list[dict]:
    lots: deque[list] = deque()  # [signed shares, price, date, cost per share]
    rows = []
    for date, shares, price, cost in zip(dates, shares_, prices, costs):
        per_share_cost = cost / abs(shares)
        if not lots or np.sign(lots[0][0]) == np.sign(shares):
            lots.append([shares, price, date, per_share_cost])
            continue
        long = lots[0][0] > 0
        side = 1.0 if long else -1.0
        left, matched, pnl, invested, entry_cost, opened = abs(shares), 0.0, 0.0, 0.0, 0.0, lots[0][2]
        while left > _EPS and lots:
            lot = lots[0]
            m = min(abs(lot[0]), left)
            pnl += side * m * (price - lot[1])
            invested += m * lot[1]
            entry_cost += m * lot[3]
            matched += m
            left -= m
            lot[0] -= side * m
            if abs(lot[0]) <= _EPS:
                lots.popleft()
        if left > _EPS:  # the position flips: what is left opens the other side
            lots.append([np.sign(shares) * left, price, date, per_share_cost])
        rows.append(
            {
                "symbol": symbol,
                "long": bool(long),
                "open_dt": pd.Timestamp(opened),
                "close_dt": pd.Timestamp(date),
                "shares": matched,
                "pnl": pnl,
                "net_pnl": pnl - entry_cost - matched * per_share_cost,
                "rt_return": pnl / invested if invested else np.nan,
            }
        )
    return rows


def round_trip_stats(trips: pd.DataFrame) -> pd.DataFrame:
    """``ROUND_TRIP_STATS`` x (all, long, short), pyfolio's definitions (``returns`` portfolio-
    relative, ``rt_return`` on the capital of the trip; holding periods in calendar days as
    pyfolio and in sessions)."""
    long = trips["long"].to_numpy(dtype=bool)
    out = {"all": _stats(trips), "long": _stats(trips.loc[long]), "short": _stats(trips.loc[~long])}
    return pd.DataFrame(out).reindex(list(ROUND_TRIP_STATS))


def _stats(t: pd.DataFrame) -> dict[str, float]:
    pnl = t["pnl"].to_numpy(dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    n = len(pnl)
    nan = float("nan")

    def mean(x):
        return float(np.mean(x)) if len(x) else nan

    def median(x):
        return float(np.median(x)) if len(x) else nan

    days = t["duration_days"].to_numpy(dtype=np.float64)
    if not n:  # no round trip on this side: counts 0, every other figure n/a (not a healthy-looking 0)
        return {
            name: (0.0 if name in ("round_trips", "winning", "losing", "even") else nan) for name in ROUND_TRIP_STATS
        }
    return {
        "round_trips": float(n),
        "winning": float(len(wins)),
        "losing": float(len(losses)),
        "even": float(n - len(wins) - len(losses)),
        "win_rate": len(wins) / n if n else nan,
        "total_pnl": float(pnl.sum()),
        "total_net_pnl": float(t["net_pnl"].sum()),
        "gross_profit": float(wins.sum()),
        "gross_loss": float(losses.sum()),
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else nan,
        "avg_pnl": mean(pnl),
        "median_pnl": median(pnl),
        "avg_win": mean(wins),
        "avg_loss": mean(losses),
        "win_loss_ratio": mean(wins) / -mean(losses) if len(losses) else nan,
        "largest_win": float(pnl.max()) if n else nan,
        "largest_loss": float(pnl.min()) if n else nan,
        "avg_return": mean(t["returns"].dropna().to_numpy()),
        "median_return": median(t["returns"].dropna().to_numpy()),
        "avg_trade_return": mean(t["rt_return"].dropna().to_numpy()),
        "median_trade_return": median(t["rt_return"].dropna().to_numpy()),
        "avg_holding_days": mean(days),
        "median_holding_days": median(days),
        "longest_holding_days": float(days.max()) if n else nan,
        "shortest_holding_days": float(days.min()) if n else nan,
        "avg_holding_sessions": mean(t["duration_sessions"].dropna().to_numpy()),
    }
