"""The supervisor's core judges every day of a partition at once (numpy, one symbol axis); here a
readable day-by-day reference (the rules written for one book at a time, as they read in the
module docstring of ``core.evaluate``) must give the same frames, bit for bit, reasons included:
on hand-worked days and on random books that break every limit, with NaN weights, empty books,
days without targets, overrides, flags carried from the day before and no previous book."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core.kpis import SINCE_START, scope_window, trailing_scope
from quantlab_assets.portfolio_supervisor.core.evaluate import (
    APPROVED,
    EPS,
    NEEDS_REVIEW,
    REJECTED,
    STATUSES,
    Verdict,
    approved_book,
    book_measures,
    evaluate,
)
from quantlab_assets.portfolio_supervisor.core.gate import approved_targets_within_rules
from quantlab_assets.portfolio_supervisor.core.rules import RiskLimits
from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS, APPROVED_TARGETS, FLAGS_SEPARATOR
from quantlab_assets.portfolio_supervisor.core.step import supervise
from quantlab_assets.strategy_lab.core.spec import load_strategy

# ---------------------------------------------------------------------------------------------
# The reference: one day at a time, pandas Series, no shared axis.


def ref_measures(weights: pd.Series, previous: pd.Series | None) -> dict[str, float]:
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


def ref_evaluate(weights, previous, rebalance, limits, performance=None) -> Verdict:
    m = ref_measures(weights, previous)
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
        m["max_drawdown"] = float(dd if dd is not None else np.nan)
        m["sharpe"] = float(sharpe if sharpe is not None else np.nan)
        if dd is not None and np.isfinite(dd) and -dd > limits.max_drawdown + EPS:
            soft.append(f"max drawdown {-dd:.2%} ({scope}, {sessions} sessions) exceeds {limits.max_drawdown:.2%}")
            flags.append("max_drawdown")
        if sharpe is not None and np.isfinite(sharpe) and sharpe < limits.min_sharpe - EPS:
            soft.append(f"Sharpe {sharpe:.2f} ({scope}, {sessions} sessions) is below {limits.min_sharpe:.2f}")
            flags.append("min_sharpe")
    status = REJECTED if hard else NEEDS_REVIEW if soft else APPROVED
    return Verdict(status, hard + soft, flags, m)


def ref_approved_book(targets, status, previous_approved, excluded):
    if status == APPROVED:
        book = targets.fillna(0.0).copy()
        hit = [s for s in excluded if s in book.index and abs(book[s]) > EPS]
        book.loc[hit] = 0.0
        return book, "targets" if not hit else f"targets without flagged {', '.join(hit)}"
    if previous_approved is None:
        return targets.fillna(0.0) * 0.0, "flat (nothing approved yet)"
    return previous_approved.reindex(targets.index).fillna(0.0), "held last approved book"


def ref_performance(kpis: pd.DataFrame, day) -> dict:
    rows = kpis[kpis["date"] == day].set_index("scope")
    if rows.empty:
        return {}
    windows = {s: w for s in rows.index if (w := scope_window(s)) is not None}
    scope = next(iter(windows), SINCE_START)
    if scope != SINCE_START and rows.loc[scope, "sessions"] < windows[scope]:
        scope = SINCE_START
    r = rows.loc[scope]
    return {
        "scope": scope,
        "sessions": int(r["sessions"]),
        "max_drawdown": r["max_drawdown"],
        "sharpe_ratio": r["sharpe_ratio"],
    }


def ref_supervise(spec, limits, targets, kpis, overrides, prev_targets, prev_flags, prev_approved, days):
    by_day = {d: g.set_index("symbol") for d, g in targets.groupby("date", sort=True)}
    over = overrides.set_index("date") if len(overrides) else pd.DataFrame()
    approvals, books = [], []
    for day in days:
        book = by_day.get(day)
        if book is None:
            continue
        weights, rebalance = book["weight"], bool(book["rebalance"].iloc[0])
        verdict = ref_evaluate(weights, prev_targets, rebalance, limits, ref_performance(kpis, day))
        status, by, why = verdict.status, None, None
        if day in over.index:
            status, by, why = over.loc[day, "status"], over.loc[day, "decided_by"], over.loc[day, "reason"]
        tradable, source = ref_approved_book(weights, status, prev_approved, prev_flags)
        if status == APPROVED and source != "targets":
            check = ref_evaluate(tradable, None, False, limits)
            if check.status != APPROVED and by is None:
                tradable, source = ref_approved_book(weights, REJECTED, prev_approved, [])
                verdict.reasons.append(
                    f"excluding flagged names would break a limit ({check.reasons[0]}): held the last approved book"
                )
        m = verdict.measures
        approvals.append(
            {
                "date": day,
                "strategy": spec.name,
                "status": status,
                "rule_status": verdict.status,
                "reasons": "; ".join(verdict.reasons) or None,
                "flags": FLAGS_SEPARATOR.join(verdict.flags) or None,
                "rebalance": rebalance,
                **{k: m.get(k) for k in ("gross", "net", "names", "max_weight", "hhi", "turnover", "max_drawdown")},
                "sharpe": m.get("sharpe"),
                "override_by": by,
                "override_reason": why,
            }
        )
        books.append(
            pd.DataFrame(
                {
                    "date": day,
                    "strategy": spec.name,
                    "symbol": tradable.index,
                    "weight": tradable.to_numpy(float),
                    "source": source,
                }
            )
        )
        prev_targets, prev_flags, prev_approved = weights, verdict.flagged_symbols, tradable
    approvals_frame = pd.DataFrame(approvals, columns=APPROVALS.column_names)
    books_frame = pd.concat(books, ignore_index=True) if books else pd.DataFrame(columns=APPROVED_TARGETS.column_names)
    return approvals_frame, books_frame


def ref_books_within_rules(books: pd.DataFrame, limits) -> list[dict]:
    broken = []
    for day, book in books.groupby("date", sort=True):
        verdict = ref_evaluate(book.set_index("symbol")["weight"], None, False, limits)
        if verdict.reasons:
            broken.append({"date": day, "symbols": ", ".join(verdict.flagged_symbols), "reason": verdict.reasons[0]})
    return broken


# ---------------------------------------------------------------------------------------------
# Exact comparison: frames equal, and every float equal to the bit (0.0 and -0.0 differ).


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    for c in expected.columns:
        if expected[c].dtype == float:
            a, e = actual[c].to_numpy(float), expected[c].to_numpy(float)
            assert (np.isnan(a) == np.isnan(e)).all()
            assert (a[~np.isnan(a)].view(np.int64) == e[~np.isnan(e)].view(np.int64)).all(), c


SPEC = load_strategy(Path(__file__).resolve().parents[2] / "strategies" / "momentum_topk.yaml")
D = pd.bdate_range("2024-04-01", periods=5)


def _frame(days_books: dict, rebalance=True) -> pd.DataFrame:
    rows = [
        {"date": d, "strategy": SPEC.name, "symbol": s, "score": 0.0, "weight": w, "rebalance": rebalance}
        for d, book in days_books.items()
        for s, w in book.items()
    ]
    frame = pd.DataFrame(rows, columns=["date", "strategy", "symbol", "score", "weight", "rebalance"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)  # as the reader orders them


NO_KPIS = pd.DataFrame(columns=["date", "scope", "sessions", "max_drawdown", "sharpe_ratio"])
NO_OVERRIDES = pd.DataFrame(columns=["date", "status", "decided_by", "reason"])


def both(limits, targets, kpis=NO_KPIS, overrides=NO_OVERRIDES, prev=None, flags=(), approved=None, days=None):
    args = (SPEC, limits, targets, kpis, overrides, prev, list(flags), approved, days if days is not None else D)
    fast, slow = supervise(*args), ref_supervise(*args)
    assert_same(fast[0], slow[0])
    assert_same(fast[1], slow[1])
    return fast


def test_hand_worked_days_equal_the_reference():
    limits = RiskLimits(max_weight=0.3, min_names=3, max_hhi=0.5, max_turnover=0.5, min_net=-0.1)
    ten = {f"S{i}": 0.1 for i in range(10)}
    targets = _frame(
        {
            D[0]: {"A": 0.4, "B": 0.3, "C": 0.3},  # A over 30%: rejected, A flagged
            D[1]: {"A": 0.2, "B": 0.4, "C": 0.4},  # B, C over: rejected; still nothing approved: flat
            D[2]: {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25},  # approved, B and C flagged on D1 go to cash
            D[3]: ten,  # turnover 100% over 50%: rejected, holds D2's book
            D[4]: {"S0": np.nan, **{f"S{i}": 0.1 for i in range(1, 10)}},  # NaN is cash
        }
    )
    approvals, books = both(limits, targets)
    assert approvals["status"].tolist() == [REJECTED, REJECTED, APPROVED, REJECTED, APPROVED]
    assert approvals["flags"].tolist()[:2] == ["max_weight:A", "max_weight:B,max_weight:C"]
    # D2: without B and C (flagged on D1), A and D alone break the 3-name minimum: D1's book is held.
    assert approvals["reasons"].iloc[2] == (
        "excluding flagged names would break a limit (2 names held, fewer than the minimum 3): "
        "held the last approved book"
    )
    # D3: from four names at 25% to ten at 10%: (4 x 25% + 10 x 10%) / 2 = 100% one-way.
    assert approvals["reasons"].iloc[3] == "turnover 100.00% of this rebalance exceeds 50.00%"
    source = books.groupby("date")["source"].first().tolist()
    assert source == ["flat (nothing approved yet)"] + ["held last approved book"] * 3 + ["targets"]
    assert (books[books["date"] < D[4]]["weight"] == 0.0).all()
    assert books[books["date"] == D[4]]["weight"].tolist() == [0.0] + [0.1] * 9  # S0's NaN is cash


def test_flags_of_the_day_before_go_to_cash_and_an_override_is_named():
    limits = RiskLimits(max_weight=0.15, min_names=5, max_hhi=0.3)
    nine = {f"S{i}": 0.1 for i in range(9)}
    targets = _frame({D[0]: {**nine, "S0": 0.2}, D[1]: {**nine, "S9": 0.1}, D[2]: {**nine, "S9": 0.1}})
    overrides = pd.DataFrame(
        {"date": [D[2]], "status": [NEEDS_REVIEW], "decided_by": ["tester"], "reason": ["look again"]}
    )
    approvals, books = both(limits, targets, overrides=overrides, days=D[:3])
    assert approvals["flags"].iloc[0] == "max_weight:S0"
    day1 = books[books["date"] == D[1]].set_index("symbol")
    assert day1.loc["S0", "weight"] == 0.0 and day1["source"].iloc[0] == "targets without flagged S0"
    assert approvals[["status", "rule_status", "override_by"]].iloc[2].tolist() == [NEEDS_REVIEW, APPROVED, "tester"]
    assert (books[books["date"] == D[2]]["weight"].to_numpy() == day1["weight"].to_numpy()).all()  # held


def test_a_first_partition_without_a_previous_book_and_days_without_targets():
    limits = RiskLimits()
    # D1: a short book breaks the net range: rejected, flat (-0.1 x 0.0 is -0.0, as stored before);
    # D2: an empty book (all cash): no rule applies, approved; D0, D3, D4: no targets, no decision.
    targets = _frame({D[1]: {f"S{i}": -0.1 for i in range(8)}, D[2]: {"A": 0.0, "B": np.nan}, D[3]: {}})
    approvals, books = both(limits, targets)
    assert approvals["date"].tolist() == [D[1], D[2]]
    assert approvals["status"].tolist() == [REJECTED, APPROVED] and approvals["names"].tolist() == [8.0, 0.0]
    assert np.signbit(books[books["date"] == D[1]]["weight"].to_numpy()).all()
    assert books[books["date"] == D[2]]["weight"].tolist() == [0.0, 0.0]
    empty = both(limits, _frame({}))
    assert empty[0].empty and empty[1].empty


def _random_case(rng: np.random.Generator, mild: bool = False):
    """Random partition inputs; ``mild``: mostly clean books under loose limits, so approvals,
    exclusions of flagged names and their fallback are common."""
    universe = [f"N{i:02d}" for i in range(int(rng.integers(1, 25) if not mild else rng.integers(2, 6)))]
    n_days = int(rng.integers(1, 25))
    days = pd.bdate_range("2024-01-02", periods=n_days)

    def random_book() -> dict:
        names = [s for s in universe if rng.random() < rng.uniform(0.2, 1.0)]
        kind = rng.integers(0, 5) if not mild else 1
        w = rng.normal(0.0, 0.1, len(names)) if kind == 0 else rng.dirichlet(np.ones(len(names))) if names else []
        w = np.asarray(w, dtype=float) * (rng.choice([0.5, 1.0, 1.3, -1.0]) if not mild else 1.0)
        for j in range(len(w)):
            odd = [np.nan, 0.0, 1e-12, -0.0, 0.4 if not mild else 0.7]
            w[j] = rng.choice([w[j]] * (3 if not mild else 40) + odd)
        return dict(zip(names, w))

    books = {d: random_book() for d in days if rng.random() > 0.15}  # some sessions without targets
    rows = [
        {"date": d, "strategy": SPEC.name, "symbol": s, "score": 0.0, "weight": w, "rebalance": reb}
        for d, book in books.items()
        for reb in [bool(rng.random() < 0.6)]
        for s, w in book.items()
    ]
    targets = pd.DataFrame(rows, columns=["date", "strategy", "symbol", "score", "weight", "rebalance"])
    targets = targets.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    targets["date"] = pd.to_datetime(targets["date"])
    window = int(rng.choice([5, 10, 252]))
    kpi_rows = []
    for d in days:
        if rng.random() < 0.2:
            continue  # no KPIs that day
        n = int(rng.integers(0, 60))
        for scope, sessions in [(SINCE_START, n), (trailing_scope(window), min(n, window))][:: rng.choice([1, -1])]:
            dd = rng.choice([-rng.uniform(0, 0.5), np.nan])
            kpi_rows.append(
                {"date": d, "scope": scope, "sessions": sessions, "max_drawdown": dd, "sharpe_ratio": rng.normal(0, 1)}
            )
    kpis = pd.DataFrame(kpi_rows, columns=["date", "scope", "sessions", "max_drawdown", "sharpe_ratio"])
    over_days = [d for d in days if rng.random() < 0.2]
    overrides = pd.DataFrame(
        {
            "date": pd.to_datetime(over_days),
            "status": [str(rng.choice(STATUSES)) for _ in over_days],
            "decided_by": "tester",
            "reason": [f"reason {i}" for i in range(len(over_days))],
        }
    )
    limits = RiskLimits(
        max_weight=float(rng.uniform(0.05, 0.5)) if not mild else 0.6,
        max_gross=float(rng.uniform(0.5, 1.5)) if not mild else 1.5,
        max_net=float(rng.uniform(0.0, 1.2)) if not mild else 1.5,
        min_net=float(rng.uniform(-0.5, 0.0)),
        min_names=int(rng.integers(1, 10)) if not mild else int(rng.integers(1, 3)),
        max_hhi=float(rng.uniform(0.05, 0.8)) if not mild else 0.9,
        max_turnover=float(rng.uniform(0.1, 1.5)) if not mild else 2.0,
        max_drawdown=float(rng.uniform(0.05, 0.4)),
        min_sharpe=float(rng.uniform(-1, 0.5)),
        min_history_sessions=int(rng.integers(2, 50)),
    )
    extra = universe + ["OLD"]  # the previous session may hold a name no later day has

    def previous() -> pd.Series | None:
        if rng.random() < 0.3:
            return None
        names = sorted(s for s in extra if rng.random() < 0.5)
        return pd.Series(rng.dirichlet(np.ones(len(names))) if names else [], index=names, dtype=float)

    flags = sorted(s for s in extra if rng.random() < 0.2)
    return limits, targets, kpis, overrides, previous(), flags, previous(), days


@pytest.mark.parametrize("mild", [False, True])
@pytest.mark.parametrize("seed", range(50))
def test_random_books_equal_the_reference(seed, mild):
    limits, targets, kpis, overrides, prev, flags, approved, days = _random_case(np.random.default_rng(seed), mild)
    approvals, books = both(limits, targets, kpis, overrides, prev, flags, approved, days)
    gate = approved_targets_within_rules(books, limits)
    broken = ref_books_within_rules(books, limits)
    assert gate.passed == (not broken)
    assert gate.offending.to_dict("records") == broken


@pytest.mark.parametrize("seed", range(200))
def test_one_day_rules_equal_the_reference(seed):
    limits, targets, kpis, *_ = _random_case(np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1000)
    days = sorted(targets["date"].unique())
    if not days:
        return
    weights = targets[targets["date"] == days[-1]].set_index("symbol")["weight"]
    previous = targets[targets["date"] == days[0]].set_index("symbol")["weight"] if rng.random() < 0.7 else None
    perf = ref_performance(kpis, days[-1])
    rebalance = bool(rng.random() < 0.5)
    fast, slow = (
        evaluate(weights, previous, rebalance, limits, perf),
        ref_evaluate(weights, previous, rebalance, limits, perf),
    )
    assert (fast.status, fast.reasons, fast.flags) == (slow.status, slow.reasons, slow.flags)
    assert fast.measures.keys() == slow.measures.keys()
    for k, v in slow.measures.items():
        assert np.float64(fast.measures[k]).tobytes() == np.float64(v).tobytes(), k
    assert book_measures(weights, previous) == ref_measures(weights, previous)
    excluded = sorted(weights.index[: int(rng.integers(0, len(weights) + 1))])
    for status in STATUSES:
        f_book, f_source = approved_book(weights, status, previous, excluded)
        r_book, r_source = ref_approved_book(weights, status, previous, excluded)
        assert f_source == r_source
        pd.testing.assert_series_equal(f_book, r_book, check_exact=True, check_names=False)
        assert (np.signbit(f_book.to_numpy()) == np.signbit(r_book.to_numpy())).all()
