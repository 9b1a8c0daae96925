"""KPIs: equal to empyrical's on random series, hand-worked tables, NaN when too short, the
per-date table against the scalar functions."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from empyrical.stats import drawdown_series

from quantlab_assets.backtest_engine.core import kpis
from quantlab_assets.backtest_engine.core.kpis import (
    KPI_COLUMNS,
    KPI_TABLE_COLUMNS,
    TRADING_DAYS_PER_YEAR,
    annual_volatility,
    cagr,
    calmar_ratio,
    downside_risk,
    drawdown_duration,
    excess_return,
    hit_rate,
    information_ratio,
    kpi_table,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    turnover,
)
from quantlab_assets.common.calendar import SESSIONS_PER_YEAR

RTOL, ATOL = 1e-9, 1e-12

# (seed, sessions, daily drift, daily vol, share of NaN sessions)
CASES = {
    "long_positive_drift": (1, 1000, 0.0006, 0.011, 0.0),
    "negative_drift": (2, 400, -0.0015, 0.02, 0.0),
    "with_nans": (3, 300, 0.0002, 0.01, 0.05),
    "one_year": (4, 252, 0.0, 0.007, 0.0),
    "short": (5, 5, 0.001, 0.01, 0.0),
    "two_sessions": (6, 2, -0.002, 0.01, 0.0),
}


def series(seed, n, drift, vol, nan_share):
    rng = np.random.default_rng(seed)
    r = rng.normal(drift, vol, n)
    r[rng.random(n) < nan_share] = np.nan
    bench = rng.normal(drift / 2, vol * 0.8, n)
    return r, bench


def longest_run_below_zero(values) -> float:
    best = run = 0
    for v in values:
        run = run + 1 if v < 0 else 0
        best = max(best, run)
    return float(best)


def empyrical_expectations(r, b):
    """empyrical's numbers (or a plain-Python definition where empyrical has no function)."""
    present = r[~np.isnan(r)]
    return {
        "total_return": (total_return, (), ep.cum_returns_final(r)),
        "cagr": (cagr, (), ep.cagr(r)),
        "cagr_weekly": (cagr, ("weekly",), ep.cagr(r, period="weekly")),
        "annual_volatility": (annual_volatility, (), ep.annual_volatility(r)),
        "volatility_annualization_12": (annual_volatility, ("daily", 12), ep.annual_volatility(r, annualization=12)),
        "sharpe_ratio": (sharpe_ratio, (), ep.sharpe_ratio(r)),
        "sharpe_ratio_rf": (sharpe_ratio, (0.0001,), ep.sharpe_ratio(r, risk_free=0.0001)),
        "sortino_ratio": (sortino_ratio, (), ep.sortino_ratio(r)),
        "sortino_ratio_required": (sortino_ratio, (0.0005,), ep.sortino_ratio(r, required_return=0.0005)),
        "downside_risk": (downside_risk, (), ep.downside_risk(r)),
        "max_drawdown": (max_drawdown, (), ep.max_drawdown(r)),
        "drawdown_duration": (drawdown_duration, (), longest_run_below_zero(drawdown_series(r)) if len(r) else np.nan),
        "calmar_ratio": (calmar_ratio, (), ep.calmar_ratio(r)),
        "hit_rate": (hit_rate, (), (present > 0).sum() / len(present) if len(present) else np.nan),
        "excess_return": (excess_return, (b,), ep.cum_returns_final(r) - ep.cum_returns_final(b)),
        "information_ratio": (information_ratio, (b,), ep.excess_sharpe(r, b) * math.sqrt(252)),
    }


@pytest.mark.parametrize("case", CASES)
def test_each_kpi_equals_empyrical_on_arrays_series_and_frames(case):
    r, b = series(*CASES[case])
    index = pd.bdate_range("2020-01-01", periods=len(r))
    r_series, b_series = pd.Series(r, index=index), pd.Series(b, index=index)
    frame = pd.DataFrame({"a": r, "b": r[::-1].copy()}, index=index)
    reversed_expect = empyrical_expectations(r[::-1].copy(), b)
    for name, (fn, args, expected) in empyrical_expectations(r, b).items():
        got = fn(r, *args)
        assert isinstance(got, float), name
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{case} {name}")
        series_args = tuple(b_series if a is b else a for a in args)
        np.testing.assert_allclose(
            fn(r_series, *series_args), expected, rtol=RTOL, atol=ATOL, err_msg=f"{case} {name} (Series)"
        )
        by_column = fn(frame, *series_args)
        assert isinstance(by_column, pd.Series) and list(by_column.index) == ["a", "b"]
        np.testing.assert_allclose(
            by_column.to_numpy(),
            [expected, reversed_expect[name][2]],
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"{case} {name} (DataFrame)",
        )
        as_array = fn(frame.to_numpy(), *args)
        assert isinstance(as_array, np.ndarray) and as_array.shape == (2,)
        np.testing.assert_allclose(as_array, by_column.to_numpy(), rtol=RTOL, atol=ATOL)
    assert turnover(np.abs(r)) == pytest.approx(np.nanmean(np.abs(r)), rel=RTOL)


def test_hand_worked_table():
    r = np.array([0.10, -0.05, -0.10, 0.20, 0.0, -0.02])
    # Wealth 1.1, 1.045, 0.9405, 1.1286, 1.1286, 1.106028; peak 1.1 until 1.1286 on day 3.
    assert total_return(r) == pytest.approx(0.106028, rel=1e-12)
    assert max_drawdown(r) == pytest.approx(0.9405 / 1.1 - 1, rel=1e-12)  # -14.5%
    assert drawdown_duration(r) == 2.0  # days 1-2 below 1.1; day 5 below 1.1286
    assert hit_rate(r) == pytest.approx(2 / 6)  # the flat day is a miss
    assert cagr(r) == pytest.approx(1.106028 ** (252 / 6) - 1, rel=1e-12)
    assert calmar_ratio(r) == pytest.approx((1.106028**42 - 1) / 0.145, rel=1e-12)
    # mean 0.02, sample std sqrt(2e-4) = 0.0141421: Sharpe = 0.02 / 0.0141421 * sqrt(252).
    assert sharpe_ratio([0.01, 0.03]) == pytest.approx(0.02 / math.sqrt(2e-4) * math.sqrt(252))
    # Sortino: mean 0.005 * 252 over sqrt(mean([0, 0.0001])) * sqrt(252).
    assert sortino_ratio([0.02, -0.01]) == pytest.approx(0.005 * 252 / (math.sqrt(0.00005) * math.sqrt(252)))
    # The starting value is a peak: a first-day loss is a drawdown.
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1)
    assert drawdown_duration([-0.1, 0.05]) == 2.0
    # Regaining the peak ends the drawdown; that session does not count.
    assert drawdown_duration([-0.5, 1.0, 0.01]) == 1.0
    # No drawdown: 0, duration 0, Calmar undefined.
    assert max_drawdown([0.01, 0.02]) == 0.0
    assert drawdown_duration([0.01, 0.02]) == 0.0
    assert math.isnan(calmar_ratio([0.01, 0.02]))
    assert excess_return([0.1, 0.1], [0.05, 0.0]) == pytest.approx(1.21 - 1.05)
    # Active returns 0.01, 0.03: same as the Sharpe example.
    assert information_ratio([0.02, 0.03], [0.01, 0.0]) == pytest.approx(0.02 / math.sqrt(2e-4) * math.sqrt(252))
    assert turnover([0.5, np.nan, 0.25]) == 0.375


def test_too_short_is_nan():
    for fn in (total_return, cagr, max_drawdown, drawdown_duration, calmar_ratio, hit_rate, turnover):
        assert math.isnan(fn(np.array([])))
    for fn in (annual_volatility, sharpe_ratio, sortino_ratio):
        assert math.isnan(fn(np.array([0.01])))
        assert math.isnan(fn(np.array([])))
    assert math.isnan(information_ratio([0.01], [0.0]))
    assert math.isnan(hit_rate([np.nan, np.nan]))
    assert np.isnan(sharpe_ratio(np.zeros((1, 3)))).all()


def test_constant_returns_have_zero_dispersion_like_empyrical():
    flat = np.full(10, 0.001)
    assert sharpe_ratio(flat) == ep.sharpe_ratio(flat) == np.inf
    assert annual_volatility(flat) == 0.0
    assert sortino_ratio(flat) == ep.sortino_ratio(flat) == np.inf


def test_bad_options_list_the_valid_ones():
    with pytest.raises(ValueError, match="'daily', 'weekly', 'monthly'"):
        cagr([0.01, 0.02], period="hourly")
    with pytest.raises(ValueError, match="annualization"):
        sharpe_ratio([0.01, 0.02], annualization=0)
    with pytest.raises(ValueError, match="does not match"):
        information_ratio([0.01, 0.02, 0.0], [0.01, 0.02])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        total_return(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="window"):
        kpi_table(pd.DataFrame({"date": [], "ret": []}), window=1)


def test_inputs_are_not_modified():
    r, b = series(7, 50, 0.0, 0.01, 0.1)
    s = pd.Series(r)
    before, before_b = r.copy(), b.copy()
    for fn in (
        total_return,
        cagr,
        annual_volatility,
        sharpe_ratio,
        sortino_ratio,
        max_drawdown,
        drawdown_duration,
        calmar_ratio,
        hit_rate,
    ):
        fn(r), fn(s)
    excess_return(r, b), information_ratio(s, pd.Series(b))
    assert np.array_equal(r, before, equal_nan=True) and np.array_equal(b, before_b)
    assert np.array_equal(s.to_numpy(), before, equal_nan=True)


# --- the per-date table -----------------------------------------------------------------------


def daily_frame(n, seed=11, nan_share=0.0):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=n)
    ret = rng.normal(0.0003, 0.01, n)
    ret[rng.random(n) < nan_share] = np.nan
    bench = pd.Series(rng.normal(0.0002, 0.009, n), index=dates)
    return pd.DataFrame({"date": dates, "ret": ret, "turnover": rng.uniform(0, 0.4, n)}), bench


def scalar_kpis(ret, turn, bench):
    return {
        "total_return": total_return(ret),
        "cagr": cagr(ret),
        "annual_volatility": annual_volatility(ret),
        "sharpe_ratio": sharpe_ratio(ret),
        "sortino_ratio": sortino_ratio(ret),
        "max_drawdown": max_drawdown(ret),
        "drawdown_duration": drawdown_duration(ret),
        "calmar_ratio": calmar_ratio(ret),
        "hit_rate": hit_rate(ret),
        "turnover": turnover(turn),
        "excess_return": excess_return(ret, bench),
        "information_ratio": information_ratio(ret, bench),
    }


@pytest.mark.parametrize("nan_share", [0.0, 0.03])
def test_kpi_table_rows_equal_the_scalar_functions(nan_share):
    n, window = 400, 60
    daily, bench = daily_frame(n, nan_share=nan_share)
    bench = bench.drop(bench.index[[5, 100]])  # dates the benchmark lacks: NaN sessions
    table = kpi_table(daily, bench, window=window)
    assert list(table.columns) == list(KPI_TABLE_COLUMNS) and len(table) == 2 * n
    since = table[table["scope"] == "since_start"].set_index("date")
    trail = table[table["scope"] == f"trailing_{window}"].set_index("date")
    b = bench.reindex(daily["date"]).to_numpy()
    ret, turn = daily["ret"].to_numpy(), daily["turnover"].to_numpy()
    for t in [0, 1, 2, 7, 58, 59, 60, 133, 250, 399]:
        date = daily["date"].iloc[t]
        expected = scalar_kpis(ret[: t + 1], turn[: t + 1], b[: t + 1])
        got = since.loc[date]
        assert got["sessions"] == t + 1
        for name in KPI_COLUMNS:
            np.testing.assert_allclose(
                got[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=f"since_start {name} at t={t}"
            )
        row = trail.loc[date]
        if t < window - 1:
            assert row[list(KPI_COLUMNS)].isna().all() and row["sessions"] == t + 1
            continue
        lo = t + 1 - window
        expected = scalar_kpis(ret[lo : t + 1], turn[lo : t + 1], b[lo : t + 1])
        for name in KPI_COLUMNS:
            np.testing.assert_allclose(
                row[name], expected[name], rtol=RTOL, atol=ATOL, err_msg=f"trailing {name} at t={t}"
            )


def test_kpi_table_never_looks_ahead():
    daily, bench = daily_frame(300)
    table = kpi_table(daily, bench, window=50)
    changed = daily.copy()
    changed.loc[200:, "ret"] = -0.05
    after = kpi_table(changed, bench, window=50)
    cut = daily["date"].iloc[199]
    pd.testing.assert_frame_equal(table[table["date"] <= cut], after[after["date"] <= cut], check_exact=True)
    assert not table[table["date"] > cut].equals(after[after["date"] > cut])


def test_kpi_table_defaults_and_no_benchmark():
    daily, _ = daily_frame(300)
    table = kpi_table(daily.iloc[::-1])  # order of rows does not matter
    assert set(table["scope"]) == {"since_start", f"trailing_{TRADING_DAYS_PER_YEAR}"}
    assert table["date"].is_monotonic_increasing
    assert table[["excess_return", "information_ratio"]].isna().all().all()
    last = table.iloc[-1]
    assert last["sessions"] == 252 and not math.isnan(last["sharpe_ratio"])
    empty = kpi_table(daily.iloc[:0])
    assert list(empty.columns) == list(KPI_TABLE_COLUMNS) and len(empty) == 0


def test_kpi_table_over_ten_years_ends_on_the_scalar_functions():
    # The running sums hold over 2,520 sessions (their time is in bench/bench_backtest.py).
    daily, bench = daily_frame(2520)
    table = kpi_table(daily, bench)
    assert len(table) == 2 * 2520
    ret, turn, b = daily["ret"].to_numpy(), daily["turnover"].to_numpy(), bench.to_numpy()
    last = table.iloc[-2:].set_index("scope")
    for scope, lo in (("since_start", 0), (f"trailing_{TRADING_DAYS_PER_YEAR}", 2520 - TRADING_DAYS_PER_YEAR)):
        expected = scalar_kpis(ret[lo:], turn[lo:], b[lo:])
        for name in KPI_COLUMNS:
            np.testing.assert_allclose(last.loc[scope, name], expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


def test_constants_live_in_one_place():
    # Sessions a year are the calendar's (common/calendar.py); test_one_place.py checks every user.
    assert kpis.ANNUALIZATION_FACTORS["daily"] is TRADING_DAYS_PER_YEAR is SESSIONS_PER_YEAR == 252
