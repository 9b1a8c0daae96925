"""The backtest simulator: target weights over adjusted prices, with costs.

Arrays have time along axis 0 and one column per symbol. ``simulate`` is the kernel (NumPy
arrays in and out); ``run_backtest`` is the wrapper the asset layer calls with long frames.

This module is the backtester's public API and the home of its convention; the code lives by
concern: ``account`` (``BacktestState`` and its table form), ``simulation`` (``simulate`` over
arrays, ``DailyResult``), ``frames`` (``run_backtest`` over long frames, ``BacktestOutput``).

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

from quantlab_assets.backtest_engine.core.account import (
    CASH_SYMBOL,
    DEFAULT_CAPITAL,
    STATE_COLUMNS,
    BacktestState,
    state_from_frame,
    state_to_frame,
)
from quantlab_assets.backtest_engine.core.frames import (
    EQUITY_COLUMNS,
    POSITION_COLUMNS,
    SKIPPED_COLUMNS,
    TRADE_COLUMNS,
    BacktestOutput,
    run_backtest,
)
from quantlab_assets.backtest_engine.core.simulation import (
    BPS,
    SKIP_REASONS,
    DailyResult,
    SkippedOrders,
    Trades,
    concat_results,
    simulate,
)
from quantlab_assets.common.calendar import SESSIONS_PER_YEAR

__all__ = [
    "BPS",
    "CASH_SYMBOL",
    "DEFAULT_CAPITAL",
    "EQUITY_COLUMNS",
    "POSITION_COLUMNS",
    "SESSIONS_PER_YEAR",
    "SKIPPED_COLUMNS",
    "SKIP_REASONS",
    "STATE_COLUMNS",
    "TRADE_COLUMNS",
    "BacktestOutput",
    "BacktestState",
    "DailyResult",
    "SkippedOrders",
    "Trades",
    "concat_results",
    "run_backtest",
    "simulate",
    "state_from_frame",
    "state_to_frame",
]
