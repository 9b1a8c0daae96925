"""Approve, reject or send for review one strategy's book of one day, with readable reasons.

Statuses: ``approved``; ``rejected`` (a hard limit is breached: weights, exposure, names,
concentration, turnover); ``needs_review`` (only performance limits are breached, or a person
must look). Every reason is a sentence with the measured value and the limit.

Policy for ``approved_targets`` (what a future execution stage may trade):
* approved: the day's targets, minus the names the supervisor flagged on the previous session
  (their weight goes to cash: the supervisor never re-levers a book);
* rejected or needs_review: the last approved book is held (flat before the first approval);
* a person's override replaces the status and is recorded with who, when and why.

The rules are written once, on many days at a time (:func:`judge`: time along axis 0, one column
per symbol); :func:`evaluate` is the same rules on one day's book. A day's measures depend only
on its targets and the previous day's targets, so a whole partition is judged in one call; only
the approved book (:func:`approved_book`) depends on the days before it.
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
MEASURES = ("gross", "net", "names", "max_weight", "hhi", "turnover")


@dataclass
class Verdict:
    status: str
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # "rule" or "rule:SYMBOL"
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def flagged_symbols(self) -> list[str]:
        return sorted({f.split(":", 1)[1] for f in self.flags if ":" in f})


@dataclass(frozen=True)
class Books:
    """Books of several days on one sorted symbol axis: ``weights`` (days x symbols, a missing or
    NaN weight is 0.0) and ``present`` (the name is in that day's book)."""

    symbols: np.ndarray
    weights: np.ndarray
    present: np.ndarray

    @classmethod
    def empty(cls, days: int, symbols: np.ndarray) -> Books:
        return cls(symbols, np.zeros((days, len(symbols))), np.zeros((days, len(symbols)), dtype=bool))

    @classmethod
    def of(cls, book: pd.Series, symbols: np.ndarray) -> Books:
        """One day's book (a weight per symbol) on the axis ``symbols``."""
        out = cls.empty(1, symbols)
        at = pd.Index(symbols).get_indexer(book.index)
        if (at < 0).any():
            raise ValueError(f"symbols {list(book.index[at < 0])[:5]} are not on the book's symbol axis")
        out.weights[0, at], out.present[0, at] = book.fillna(0.0).to_numpy(float), True
        return out


def book_matrix(
    dates: pd.Series, symbols: pd.Series, weights: pd.Series, axis: np.ndarray | None = None
) -> tuple[pd.DatetimeIndex, Books]:
    """Long rows (date, symbol, weight) as (sorted days, ``Books``); ``axis``: the sorted symbol
    axis when it must hold more names than the rows (default: the rows' names)."""
    day_code, days = pd.factorize(dates, sort=True)
    if axis is None:
        symbol_code, names = pd.factorize(symbols, sort=True)
        axis = np.asarray(names, dtype=object)
    else:
        symbol_code = pd.Index(axis).get_indexer(symbols)
    books = Books.empty(len(days), axis)
    books.weights[day_code, symbol_code] = weights.fillna(0.0).to_numpy(float)
    books.present[day_code, symbol_code] = True
    return pd.DatetimeIndex(days), books


@dataclass(frozen=True)
class Performance:
    """Per day, the backtest KPIs the performance limits judge (``sessions`` 0: none that day)."""

    scope: np.ndarray
    sessions: np.ndarray
    max_drawdown: np.ndarray
    sharpe_ratio: np.ndarray

    @classmethod
    def none(cls, days: int) -> Performance:
        nan = np.full(days, np.nan)
        return cls(np.full(days, SINCE_START, dtype=object), np.zeros(days, dtype=np.int64), nan, nan.copy())


@dataclass
class Verdicts:
    """:func:`judge`'s answer per day: ``reasons`` and ``flags`` are lists (empty on a clean day),
    ``measures`` arrays; ``max_drawdown``/``sharpe`` are NaN where ``performance_judged`` is False."""

    status: np.ndarray
    reasons: list[list[str]]
    flags: list[list[str]]
    measures: dict[str, np.ndarray]
    performance_judged: np.ndarray
    flagged: list[list[int]]  # per day, the columns of the names flagged (the symbol axis is sorted)


def _row_sums(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each row's sum over its masked entries, bit for bit the sum numpy gives that row's own 1-D
    array: numpy's pairwise summation groups terms by the array's length, so rows are summed in
    groups of equal count, each group as one (rows x count) matrix."""
    counts = mask.sum(axis=1)
    out = np.zeros(len(values))
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        sub = values[rows]
        out[rows] = sub[mask[rows]].reshape(len(rows), int(k)).sum(axis=1)
    return out


def measures(books: Books, previous: Books) -> dict[str, np.ndarray]:
    """Each day's exposure, names, largest weight, HHI of |w| / gross and one-way turnover against
    ``previous`` (the day before's targets; a name sold out of the book is turnover too)."""
    w = books.weights
    held = np.abs(w) > EPS
    size = np.abs(w)
    gross = _row_sums(size, held)
    names = held.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = size / np.where(gross > 0, gross, 1.0)[:, None]
    either = books.present | previous.present
    return {
        "gross": gross,
        "net": _row_sums(w, held),
        "names": names,
        "max_weight": np.where(held, size, 0.0).max(axis=1, initial=0.0),
        "hhi": _row_sums(shares**2, held),
        "turnover": _row_sums(np.abs(w - previous.weights), either) / 2,
    }


def judge(
    books: Books,
    previous: Books,
    rebalance: np.ndarray,
    limits: RiskLimits,
    performance: Performance | None = None,
) -> Verdicts:
    """The rules on every day's book at once; reasons are written only for days that break one."""
    n = len(books.weights)
    m = measures(books, previous)
    perf = performance or Performance.none(n)
    over_weight = np.abs(books.weights) > limits.max_weight + EPS
    gross_hit = m["gross"] > limits.max_gross + EPS
    net_hit = (m["names"] > 0) & ~((limits.min_net - EPS <= m["net"]) & (m["net"] <= limits.max_net + EPS))
    names_hit = (m["names"] > 0) & (m["names"] < limits.min_names)
    hhi_hit = m["hhi"] > limits.max_hhi + EPS
    turnover_hit = rebalance & (m["turnover"] > limits.max_turnover + EPS)
    judged = perf.sessions >= limits.min_history_sessions
    dd, sharpe = perf.max_drawdown, perf.sharpe_ratio
    with np.errstate(invalid="ignore"):
        dd_hit = judged & np.isfinite(dd) & (-dd > limits.max_drawdown + EPS)
        sharpe_hit = judged & np.isfinite(sharpe) & (sharpe < limits.min_sharpe - EPS)
    hard = over_weight.any(axis=1) | gross_hit | net_hit | names_hit | hhi_hit | turnover_hit
    soft = dd_hit | sharpe_hit
    status = np.where(hard, REJECTED, np.where(soft, NEEDS_REVIEW, APPROVED)).astype(object)
    reasons: list[list[str]] = [[] for _ in range(n)]
    flags: list[list[str]] = [[] for _ in range(n)]
    flagged: list[list[int]] = [[] for _ in range(n)]
    for i in np.flatnonzero(hard | soft):
        r, f = reasons[i], flags[i]
        for j in np.flatnonzero(over_weight[i]):
            symbol, value = books.symbols[j], books.weights[i, j]
            r.append(f"{symbol} weight {value:.2%} exceeds the single-name limit {limits.max_weight:.2%}")
            f.append(f"max_weight:{symbol}")
            flagged[i].append(int(j))
        if gross_hit[i]:
            r.append(f"gross exposure {m['gross'][i]:.2%} exceeds {limits.max_gross:.2%}")
            f.append("max_gross")
        if net_hit[i]:
            r.append(f"net exposure {m['net'][i]:.2%} is outside [{limits.min_net:.2%}, {limits.max_net:.2%}]")
            f.append("net_exposure")
        if names_hit[i]:
            r.append(f"{int(m['names'][i])} names held, fewer than the minimum {limits.min_names}")
            f.append("min_names")
        if hhi_hit[i]:
            hhi = m["hhi"][i]
            r.append(f"concentration HHI {hhi:.3f} (effective {1 / hhi:.1f} names) exceeds {limits.max_hhi:.3f}")
            f.append("max_hhi")
        if turnover_hit[i]:
            r.append(f"turnover {m['turnover'][i]:.2%} of this rebalance exceeds {limits.max_turnover:.2%}")
            f.append("max_turnover")
        scope, sessions = perf.scope[i], int(perf.sessions[i])
        if dd_hit[i]:
            r.append(f"max drawdown {-dd[i]:.2%} ({scope}, {sessions} sessions) exceeds {limits.max_drawdown:.2%}")
            f.append("max_drawdown")
        if sharpe_hit[i]:
            r.append(f"Sharpe {sharpe[i]:.2f} ({scope}, {sessions} sessions) is below {limits.min_sharpe:.2f}")
            f.append("min_sharpe")
    m["max_drawdown"] = np.where(judged, dd, np.nan)
    m["sharpe"] = np.where(judged, sharpe, np.nan)
    return Verdicts(status, reasons, flags, m, judged, flagged)


def book_measures(weights: pd.Series, previous: pd.Series | None) -> dict[str, float]:
    """:func:`measures` of one day's book."""
    today, before = _one_day(weights, previous)
    return {k: float(v[0]) for k, v in measures(today, before).items()}


def evaluate(
    weights: pd.Series,
    previous: pd.Series | None,
    rebalance: bool,
    limits: RiskLimits,
    performance: dict[str, float] | None = None,
) -> Verdict:
    """:func:`judge` on one day's book; ``performance`` = {"sessions", "max_drawdown", "sharpe_ratio", "scope"}."""
    today, before = _one_day(weights, previous)
    perf = performance or {}
    dd, sharpe = perf.get("max_drawdown"), perf.get("sharpe_ratio")
    v = judge(
        today,
        before,
        np.array([rebalance]),
        limits,
        Performance(
            np.array([perf.get("scope", SINCE_START)], dtype=object),
            np.array([int(perf.get("sessions") or 0)]),
            np.array([np.nan if dd is None else dd], dtype=float),
            np.array([np.nan if sharpe is None else sharpe], dtype=float),
        ),
    )
    measured = {k: float(v.measures[k][0]) for k in MEASURES}
    if v.performance_judged[0]:
        measured |= {"max_drawdown": float(v.measures["max_drawdown"][0]), "sharpe": float(v.measures["sharpe"][0])}
    return Verdict(str(v.status[0]), v.reasons[0], v.flags[0], measured)


def _one_day(weights: pd.Series, previous: pd.Series | None) -> tuple[Books, Books]:
    prev = previous if previous is not None else pd.Series(dtype=float)
    axis = np.asarray(weights.index.union(prev.index).sort_values(), dtype=object)
    return Books.of(weights, axis), Books.of(prev, axis)


def approved_row(
    books: Books, day: int, status: str, last: np.ndarray | None, excluded: list[int]
) -> tuple[np.ndarray, str]:
    """Row ``day``'s tradable book under the policy in the module docstring; returns (weights on
    the symbol axis, source). ``last``: the last approved book on the axis (None: none yet);
    ``excluded``: the columns flagged the session before."""
    weights, present = books.weights[day], books.present[day]
    if status == APPROVED:
        hit = [j for j in excluded if present[j] and abs(weights[j]) > EPS]
        book = weights.copy()
        book[hit] = 0.0
        return book, "targets" if not hit else f"targets without flagged {', '.join(books.symbols[hit])}"
    if last is None:
        return weights * 0.0, "flat (nothing approved yet)"
    return np.where(present, last, 0.0), "held last approved book"


def approved_book(
    targets: pd.Series, status: str, previous_approved: pd.Series | None, excluded: list[str]
) -> tuple[pd.Series, str]:
    """:func:`approved_row` of one day's book; returns (weights, source)."""
    prev = previous_approved if previous_approved is not None else pd.Series(dtype=float)
    axis = np.asarray(targets.index.union(prev.index).union(pd.Index(excluded)).sort_values(), dtype=object)
    at = pd.Index(axis).get_indexer
    last = Books.of(prev, axis).weights[0] if previous_approved is not None else None
    row, source = approved_row(Books.of(targets, axis), 0, status, last, sorted(at(excluded)))
    return pd.Series(row[at(targets.index)], index=targets.index), source
