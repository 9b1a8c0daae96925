"""Approve, reject or send for review one strategy's book of one day, with readable reasons.

Statuses: ``approved``; ``rejected`` (a hard limit is breached: weights, exposure, names,
concentration, turnover); ``needs_review`` (only performance limits are breached, or a person
must look). Every reason is a sentence with the measured value and the limit.

Policy for ``approved_targets`` (what a future execution stage may trade):
* approved: the day's targets, minus the names the supervisor flagged on the previous session
  (their weight goes to cash: the supervisor never re-levers a book);
* rejected or needs_review: the last approved book is held (flat before the first approval);
* a person's override replaces the status and is recorded with who, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import SINCE_START
from quantlab_assets.portfolio_supervisor.core.rules import RiskLimits

APPROVED, REJECTED, NEEDS_REVIEW = "approved", "rejected", "needs_review"
STATUSES = (APPROVED, REJECTED, NEEDS_REVIEW)
EPS = 1e-9


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # "rule" or "rule:SYMBOL"
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def flagged_symbols(self) -> list[str]:
        return sorted({f.split(":", 1)[1] for f in self.flags if ":" in f})


def book_measures(weights: pd.Series, previous: pd.Series | None) -> dict[str, float]:
    w = weights.fillna(0.0)
    held = w[w.abs() > EPS]
    gross = float(held.abs().sum())
    shares = held.abs() / gross if gross > 0 else held.abs()
    prev = (previous if previous is not None else pd.Series(dtype=float)).fillna(0.0)
    names = w.index.union(prev.index)  # a name sold out of the book is turnover too
    return {
        "gross": gross,
        "net": float(held.sum()),
        "names": float(len(held)),
        "max_weight": float(held.abs().max()) if len(held) else 0.0,
        "hhi": float((shares**2).sum()) if len(held) else 0.0,
        "turnover": float((w.reindex(names, fill_value=0.0) - prev.reindex(names, fill_value=0.0)).abs().sum() / 2),
    }


def evaluate(
    weights: pd.Series,
    previous: pd.Series | None,
    rebalance: bool,
    limits: RiskLimits,
    performance: dict[str, float] | None = None,
) -> Verdict:
    """Rules on one day's book; ``performance`` = {"sessions", "max_drawdown", "sharpe_ratio", "scope"}."""
    m = book_measures(weights, previous)
    hard, soft, flags = [], [], []
    w = weights.fillna(0.0)
    for symbol, value in w[w.abs() > limits.max_weight + EPS].sort_index().items():
        hard.append(f"{symbol} weight {value:.2%} exceeds the single-name limit {limits.max_weight:.2%}")
        flags.append(f"max_weight:{symbol}")
    if m["gross"] > limits.max_gross + EPS:
        hard.append(f"gross exposure {m['gross']:.2%} exceeds {limits.max_gross:.2%}")
        flags.append("max_gross")
    if m["names"] > 0 and not (limits.min_net - EPS <= m["net"] <= limits.max_net + EPS):
        hard.append(f"net exposure {m['net']:.2%} is outside [{limits.min_net:.2%}, {limits.max_net:.2%}]")
        flags.append("net_exposure")
    if 0 < m["names"] < limits.min_names:
        hard.append(f"{int(m['names'])} names held, fewer than the minimum {limits.min_names}")
        flags.append("min_names")
    if m["hhi"] > limits.max_hhi + EPS:
        hard.append(
            f"concentration HHI {m['hhi']:.3f} (effective {1 / m['hhi']:.1f} names) exceeds {limits.max_hhi:.3f}"
        )
        flags.append("max_hhi")
    if rebalance and m["turnover"] > limits.max_turnover + EPS:
        hard.append(f"turnover {m['turnover']:.2%} of this rebalance exceeds {limits.max_turnover:.2%}")
        flags.append("max_turnover")
    perf = performance or {}
    sessions = int(perf.get("sessions") or 0)
    scope = perf.get("scope", SINCE_START)
    if sessions >= limits.min_history_sessions:
        dd, sharpe = perf.get("max_drawdown"), perf.get("sharpe_ratio")
        m["max_drawdown"], m["sharpe"] = (
            float(dd if dd is not None else np.nan),
            float(sharpe if sharpe is not None else np.nan),
        )
        if dd is not None and np.isfinite(dd) and -dd > limits.max_drawdown + EPS:
            soft.append(f"max drawdown {-dd:.2%} ({scope}, {sessions} sessions) exceeds {limits.max_drawdown:.2%}")
            flags.append("max_drawdown")
        if sharpe is not None and np.isfinite(sharpe) and sharpe < limits.min_sharpe - EPS:
            soft.append(f"Sharpe {sharpe:.2f} ({scope}, {sessions} sessions) is below {limits.min_sharpe:.2f}")
            flags.append("min_sharpe")
    status = REJECTED if hard else NEEDS_REVIEW if soft else APPROVED
    return Verdict(status, hard + soft, flags, m)


def approved_book(
    targets: pd.Series, status: str, previous_approved: pd.Series | None, excluded: list[str]
) -> tuple[pd.Series, str]:
    """The tradable book under the policy in the module docstring; returns (weights, source)."""
    if status == APPROVED:
        book = targets.fillna(0.0).copy()
        hit = [s for s in excluded if s in book.index and abs(book[s]) > EPS]
        book.loc[hit] = 0.0
        return book, "targets" if not hit else f"targets without flagged {', '.join(hit)}"
    if previous_approved is None:
        return targets.fillna(0.0) * 0.0, "flat (nothing approved yet)"
    return previous_approved.reindex(targets.index).fillna(0.0), "held last approved book"
