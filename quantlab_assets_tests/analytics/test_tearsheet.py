"""Tearsheet figures: hand-worked cases, empyrical-reloaded (and quantstats where installed) as
the independent reference, the P&L attribution identity, and a self-contained HTML page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import tearsheet as ts
from quantlab_assets.backtest_engine.core import kpis
from quantlab_assets.backtest_engine.core.engine import run_backtest
from quantlab_assets.common.calendar import trading_days

ep = pytest.importorskip("empyrical")


def _returns(n=600, seed=3):
    rng = np.random.default_rng(seed)
    dates = trading_days("2021-01-04", "2024-12-31")[:n]
    bench = pd.Series(rng.normal(0.0004, 0.011, n), index=dates)
    strat = pd.Series(0.0002 + 0.8 * bench.to_numpy() + rng.normal(0, 0.006, n), index=dates)
    return strat, bench


def test_drawdown_table_hand_worked():
    dates = pd.bdate_range("2024-01-01", periods=8)
    # wealth: 1.1, 0.88, 0.924, 1.1088 (recovered), 1.21, 1.089, 1.1979, 1.21 (back at peak exactly? no: below)
    r = pd.Series([0.10, -0.20, 0.05, 0.20, 0.0913, -0.10, 0.10, 0.0], index=dates)
    table = ts.drawdown_table(r)
    first = table.iloc[0]
    assert first["peak"] == dates[0] and first["trough"] == dates[1] and first["recovery"] == dates[3]
    assert first["depth"] == pytest.approx(0.88 / 1.1 - 1.0, abs=1e-15)
    # Under water on dates[1] and dates[2]; dates[3] is back above the peak: 2 sessions (issue 22
    # point 6: the table used to count peak -> recovery steps, 3, one more than the key figure).
    assert first["length"] == 2
    second = table.iloc[1]
    assert second["peak"] == dates[4] and second["trough"] == dates[5] and pd.isna(second["recovery"])
    assert second["depth"] == pytest.approx(-0.10, abs=1e-15)
    assert second["length"] == 3  # dates[5..7] under water, not recovered
    # A loss on the very first session is a drawdown from the starting capital.
    early = ts.drawdown_table(pd.Series([-0.1, 0.2], index=dates[:2])).iloc[0]
    assert early["peak"] == dates[0] and early["recovery"] == dates[1] and early["depth"] == pytest.approx(-0.1)


def test_drawdowns_agree_with_empyrical_max_drawdown():
    r, _ = _returns()
    assert ts.drawdown_table(r)["depth"].iloc[0] == pytest.approx(ep.max_drawdown(r), abs=1e-12)
    # The longest episode of the table is the key figure's longest drawdown, session for session.
    assert ts.drawdown_table(r, top=len(r))["length"].max() == kpis.drawdown_duration(r.to_numpy())
    assert ts.underwater(r).min() == pytest.approx(ep.max_drawdown(r), abs=1e-12)


def test_contributors_never_list_a_loser_nor_detractors_a_winner():
    """Issue 22 point 6: with fewer names than the lists' length, each list keeps its own side."""
    names = pd.Index(["WFC", "AAA", "ZZZ", "MA"], name="symbol")
    by_name = pd.DataFrame({"pnl": [6591.0, 120.0, 0.0, -2485.0]}, index=names)
    top, bottom = ts.contributors(by_name, n=10)
    assert top["symbol"].tolist() == ["WFC", "AAA"] and bottom["symbol"].tolist() == ["MA"]


def test_calendar_returns_agree_with_empyrical():
    r, b = _returns()
    monthly = ep.aggregate_returns(r, "monthly")
    table = ts.monthly_table(r)
    for (year, month), value in monthly.items():
        assert table.loc[year, month] == pytest.approx(value, abs=1e-12)
    yearly = ts.yearly_vs_benchmark(r, b)
    np.testing.assert_allclose(yearly["strategy"].to_numpy(), ep.aggregate_returns(r, "yearly").to_numpy(), atol=1e-12)
    np.testing.assert_allclose(yearly["benchmark"].to_numpy(), ep.aggregate_returns(b, "yearly").to_numpy(), atol=1e-12)


def test_metrics_agree_with_empyrical():
    r, b = _returns()
    m = ts.metrics(r, b)
    ref = {
        "cumulative_return": ep.cum_returns_final(r),
        "cagr": ep.annual_return(r),
        "annual_volatility": ep.annual_volatility(r),
        "sharpe_ratio": ep.sharpe_ratio(r),
        "sortino_ratio": ep.sortino_ratio(r),
        "max_drawdown": ep.max_drawdown(r),
        "calmar_ratio": ep.calmar_ratio(r),
        "omega_ratio": ep.omega_ratio(r),
        "tail_ratio": ep.tail_ratio(r),
        "var_95": ep.value_at_risk(r, 0.05),
        "var_99": ep.value_at_risk(r, 0.01),
        "cvar_95": ep.conditional_value_at_risk(r, 0.05),
        "cvar_99": ep.conditional_value_at_risk(r, 0.01),
        "alpha": ep.alpha(r, b),
        "beta": ep.beta(r, b),
        "up_capture": ep.up_capture(r, b),
        "down_capture": ep.down_capture(r, b),
        "tracking_error": np.std(r - b, ddof=1) * np.sqrt(252),
        "correlation": np.corrcoef(r, b)[0, 1],
        "skew": r.skew(),
        "kurtosis": r.kurt(),
    }
    for name, value in ref.items():
        assert m[name] == pytest.approx(float(value), rel=1e-10, abs=1e-12), name
    assert m["best_day"] == r.max() and m["worst_day"] == r.min()
    monthly = ep.aggregate_returns(r, "monthly")
    assert m["best_month"] == pytest.approx(monthly.max(), abs=1e-12)
    assert m["win_days"] == pytest.approx((r > 0).mean())


def test_rolling_figures_agree_with_empyrical_windows():
    r, b = _returns()
    roll = ts.rolling_figures(r, b, 126)
    assert roll.iloc[:125].isna().all().all()
    for end in (125, 300, len(r) - 1):
        window_r, window_b = r.iloc[end - 125 : end + 1], b.iloc[end - 125 : end + 1]
        assert roll["sharpe_126"].iloc[end] == pytest.approx(ep.sharpe_ratio(window_r), rel=1e-9)
        assert roll["volatility_126"].iloc[end] == pytest.approx(ep.annual_volatility(window_r), rel=1e-9)
        assert roll["beta_126"].iloc[end] == pytest.approx(ep.beta(window_r, window_b), rel=1e-9)


def test_probabilistic_sharpe_ratio_hand_worked():
    """Population moments, as Bailey and López de Prado and research/overfitting.py's deflated
    Sharpe ratio (one estimator family: kpis.sharpe_moments; test_sharpe_family.py)."""
    r, _ = _returns()
    sr = r.mean() / r.std(ddof=1)
    d = r - r.mean()
    skew, kurt = (d**3).mean() / (d**2).mean() ** 1.5, (d**4).mean() / (d**2).mean() ** 2
    z = sr * np.sqrt(len(r) - 1) / np.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    from math import erf, sqrt

    assert ts.probabilistic_sharpe_ratio(r) == pytest.approx(0.5 * (1 + erf(z / sqrt(2))), rel=1e-12)


def _book(seed=5, n_days=80, n_names=6):
    rng = np.random.default_rng(seed)
    days = trading_days("2024-01-02", "2024-06-28")[:n_days]
    syms = [f"S{i}" for i in range(n_names)]
    rows = []
    for s in syms:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n_days)))
        open_ = close * np.exp(rng.normal(0, 0.004, n_days))
        rows.append(
            pd.DataFrame(
                {
                    "date": days,
                    "symbol": s,
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.01,
                    "low": np.minimum(open_, close) * 0.99,
                    "close": close,
                    "adj_close": close,
                    "volume": 1e6,
                }
            )
        )
    bars = pd.concat(rows, ignore_index=True)
    targets = []
    for t in range(0, n_days, 10):
        w = rng.dirichlet(np.ones(n_names)) * 0.9
        targets.append(pd.DataFrame({"date": days[t], "symbol": syms, "weight": w}))
    out = run_backtest(bars, pd.concat(targets, ignore_index=True), days[0], days[-1], fee_bps=2, slippage_bps=5)
    return out, bars


def test_attribution_sums_to_the_pnl_and_book_figures():
    out, _ = _book()
    eq = out.equity
    attr = ts.attribution(out.positions, out.trades)
    capital = eq["equity"].iloc[0] / (1 + eq["ret"].iloc[0])
    assert attr["pnl"].sum() == pytest.approx(eq["equity"].iloc[-1] - capital, rel=1e-10)
    assert attr["cost"].sum() == pytest.approx(eq["costs"].sum(), rel=1e-10)
    book = ts.book_over_time(eq, out.positions)
    assert (book["names"] == out.positions.groupby("date").size().reindex(eq["date"]).fillna(0).to_numpy()).all()
    # Cost drag compounds back to the costs: drag_t * equity_{t-1} = costs_t.
    prev = np.concatenate([[capital], eq["equity"].to_numpy()[:-1]])
    np.testing.assert_allclose(book["cost_drag"].to_numpy() * prev, eq["costs"].to_numpy(), rtol=1e-12)


def test_tearsheet_html_is_self_contained_and_inputs_untouched():
    out, bars = _book()
    bench = pd.Series(np.random.default_rng(1).normal(0, 0.01, len(out.equity)), index=out.equity["date"])
    frames = [out.equity.copy(), out.positions.copy(), out.trades.copy(), bench.copy()]
    sheet = ts.build_tearsheet("demo", out.equity, out.positions, out.trades, bench)
    for before, after in zip(frames, [out.equity, out.positions, out.trades, bench]):
        (pd.testing.assert_frame_equal if isinstance(before, pd.DataFrame) else pd.testing.assert_series_equal)(
            before, after
        )
    page = ts.tearsheet_html(sheet)
    assert page.count("data:image/png;base64,") == 7  # returns ... holdings, attribution
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "not recovered" in page or sheet.drawdowns["recovery"].notna().all()
    md = ts.tearsheet_markdown(sheet)
    for heading in (
        "Key figures",
        "Holdings",
        "Round trips",
        "Worst 5 drawdowns",
        "Yearly returns",
        "Top contributors",
        "Top detractors",
    ):
        assert heading in md
    with pytest.raises(ValueError, match="at least 2 sessions"):
        ts.build_tearsheet("demo", out.equity.head(1), out.positions, out.trades, None)


def test_the_columns_the_asset_reads_give_the_same_tearsheet():
    """The asset reads only ``POSITION_FIELDS`` and ``TRADE_FIELDS`` of the stored tables."""
    out, _ = _book(seed=7)
    bench = pd.Series(np.random.default_rng(2).normal(0, 0.01, len(out.equity)), index=out.equity["date"])
    full = ts.build_tearsheet("demo", out.equity, out.positions, out.trades, bench)
    narrow = ts.build_tearsheet(
        "demo", out.equity, out.positions[list(ts.POSITION_FIELDS)], out.trades[list(ts.TRADE_FIELDS)], bench
    )
    assert ts.tearsheet_html(narrow) == ts.tearsheet_html(full)  # the charts too, as PNG bytes
    pd.testing.assert_frame_equal(narrow.attribution, full.attribution)
    pd.testing.assert_frame_equal(narrow.book, full.book)


def test_quantstats_agrees_where_definitions_match():
    """quantstats is a test-only dev dependency (0.0.86 works with pandas 2). Figures whose
    definitions differ on purpose (VaR: normal vs historical; ulcer index: n - 1; drawdowns
    without the starting capital) are left to empyrical above."""
    import matplotlib

    with matplotlib.rc_context():  # importing quantstats restyles matplotlib for the whole process
        qs = pytest.importorskip("quantstats")
    r, b = _returns()
    m = ts.metrics(r, b)
    same = {
        "sharpe_ratio": qs.stats.sharpe(r),
        "sortino_ratio": qs.stats.sortino(r),
        "payoff_ratio": qs.stats.payoff_ratio(r),
        "profit_factor": qs.stats.profit_factor(r),
        "avg_win": qs.stats.avg_win(r),
        "avg_loss": qs.stats.avg_loss(r),
        "tail_ratio": qs.stats.tail_ratio(r),
        "skew": qs.stats.skew(r),
        "kurtosis": qs.stats.kurtosis(r),
        "best_day": qs.stats.best(r),
        "worst_day": qs.stats.worst(r),
        "cumulative_return": qs.stats.comp(r),
    }
    for name, value in same.items():
        assert m[name] == pytest.approx(float(value), rel=1e-9), name
    assert m["max_consecutive_wins"] == qs.stats.consecutive_wins(r)
    assert m["max_consecutive_losses"] == qs.stats.consecutive_losses(r)


def test_rolling_panels_say_what_they_need_when_too_short():
    """Issue 22 point 6: 80 sessions < the 126-session window: each panel says so (no blank panel
    with an epoch-hours axis)."""
    from quantlab_assets.analytics.core import tearsheet_charts as charts

    out, _ = _book(seed=7)
    bench = pd.Series(np.random.default_rng(2).normal(0, 0.01, len(out.equity)), index=out.equity["date"])
    sheet = ts.build_tearsheet("demo", out.equity, out.positions, out.trades, bench)
    plt = charts._plt()
    fig = charts._rolling(plt, sheet)
    try:
        sessions = int(sheet.returns.notna().sum())
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts == [f"needs 126 sessions ({sessions} so far)"] * 3  # sharpe, volatility, beta
        assert all(len(ax.lines) == 0 and list(ax.get_xticks()) == [] for ax in fig.axes)
    finally:
        plt.close(fig)


def _sheet(seed=7, charts=True):
    out, _ = _book(seed=seed)
    bench = pd.Series(np.random.default_rng(2).normal(0, 0.01, len(out.equity)), index=out.equity["date"])
    return ts.build_tearsheet("demo", out.equity, out.positions, out.trades, bench, charts=charts), out


def test_key_figures_grouped_with_the_benchmark_beside():
    """Issue 22 point 6: every figure in exactly one of quantstats' groups, strategy and benchmark
    side by side (the benchmark's own figure is ``metrics`` of its returns)."""
    from quantlab_assets.analytics.core import tearsheet_render as render

    names = [n for group in render.METRIC_GROUPS.values() for n in group]
    assert len(names) == len(set(names))
    sheet, _ = _sheet(charts=False)
    assert set(sheet.metrics) == set(names)  # with a benchmark every figure exists, each grouped once
    table = render.key_figures(sheet)
    assert list(table.columns) == ["group", "metric", "demo", "equal_weight"]
    assert list(dict.fromkeys(table["group"])) == ["returns", "risk", "risk-adjusted", "relative", "trading"]
    assert table["metric"].tolist() == names
    row = table.set_index("metric")
    bench = sheet.benchmark.dropna()
    assert row.loc["sharpe_ratio", "equal_weight"] == f"{kpis.sharpe_ratio(bench.to_numpy()):.3f}"
    assert row.loc["cumulative_return", "demo"] == f"{sheet.metrics['cumulative_return']:.2%}"
    assert (row.loc[list(render.METRIC_GROUPS["relative"]), "equal_weight"] == "").all()
    # No benchmark: one value column, no relative figures.
    out, _ = _book(seed=7)
    alone = ts.build_tearsheet("demo", out.equity, out.positions, out.trades, None, charts=False)
    assert list(render.key_figures(alone).columns) == ["group", "metric", "demo"]
    assert "relative" not in set(render.key_figures(alone)["group"])


def test_tearsheet_figures_agree_with_each_other():
    """Issue 22 point 6 re-checked on a whole sheet: the longest drawdown equals the drawdown table's
    longest episode; the contributors' list holds only winners and the detractors' only losers."""
    sheet, _ = _sheet(charts=False)
    episodes = ts.drawdown_table(sheet.returns, top=len(sheet.returns))
    assert sheet.metrics["longest_drawdown_sessions"] == episodes["length"].max()
    top, bottom = ts.contributors(sheet.attribution)
    assert len(top) + len(bottom) <= 20 and (top["pnl"] > 0).all() and (bottom["pnl"] < 0).all()
    # Holdings and round trips come from the same stored rows as the book.
    assert (sheet.holdings["names"].to_numpy() == sheet.book["names"].to_numpy()).all()
    np.testing.assert_allclose(sheet.holdings["gross_exposure"], sheet.book["gross_exposure"], rtol=1e-9, atol=1e-12)
    assert sheet.round_trip_stats.loc["round_trips", "all"] == len(sheet.round_trips) > 0


def test_charts_full_width_percent_axes_and_nothing_clipped():
    """Issue 22 point 6: every chart is 960 px wide (the page's width), every text inside the
    canvas, and fractions (returns, drawdown, volatility, exposure, weights) on percent axes."""
    from matplotlib.ticker import PercentFormatter

    from quantlab_assets.analytics.core import tearsheet_charts as charts

    sheet, _ = _sheet(charts=False)
    plt = charts._plt()
    percent = {
        "returns": [(0, "y"), (2, "y")],
        "calendar": [(1, "x")],
        "distribution": [(0, "x")],
        "book": [(0, "y"), (1, "y"), (2, "y")],
        "holdings": [(1, "y")],
    }
    for name in charts.CHARTS:
        draw = getattr(charts, f"_{name}")
        fig = draw(plt, sheet)
        try:
            fig.canvas.draw()
            assert fig.get_size_inches()[0] * 80 == 960, name
            box, renderer = fig.bbox, fig.canvas.get_renderer()
            for ax in fig.axes:  # what is drawn of each axes: labels, tick labels, title, legend
                ext = ax.get_tightbbox(renderer)
                assert ext.x0 >= -1 and ext.x1 <= box.x1 + 1 and ext.y0 >= -1 and ext.y1 <= box.y1 + 1, (name, ext)
            for index, axis in percent.get(name, []):
                ax = fig.axes[index]
                fmt = (ax.yaxis if axis == "y" else ax.xaxis).get_major_formatter()
                assert isinstance(fmt, PercentFormatter), (name, index, axis)
        finally:
            plt.close(fig)
    png = charts.render(sheet)["returns"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 960  # IHDR width


def test_figures_start_at_the_first_invested_session_like_backtest_kpis():
    """Issue 22 point 3 on the tearsheet: a flat warm-up is left out (counted and dated), so the
    tearsheet's since-start figures are backtest_kpis' since-start row of the same date."""
    out, _ = _book(seed=7)
    eq = out.equity.copy()
    flat = 15  # a warm-up the engine would give a strategy whose features need history
    warm = pd.DataFrame(
        {
            "date": trading_days("2023-01-02", "2023-12-29")[-flat:],
            "equity": eq["equity"].iloc[0] / (1 + eq["ret"].iloc[0]),
            "ret": 0.0,
            "turnover": 0.0,
            "costs": 0.0,
            "gross_exposure": 0.0,
            "net_exposure": 0.0,
        }
    )
    equity = pd.concat([warm, eq[warm.columns]], ignore_index=True)
    sheet = ts.build_tearsheet("demo", equity, out.positions, out.trades, None, charts=False)
    first = kpis.first_invested(equity)
    # The engine's own first session is flat too: the decision at its close fills at the next open.
    assert first == eq["date"].iloc[1] and sheet.first_invested == first and sheet.warmup_sessions == flat + 1
    assert sheet.returns.index[0] == first and len(sheet.returns) == len(eq) - 1
    row = kpis.invested_kpi_table(equity[["date", "ret", "turnover"]])
    row = row[(row["scope"] == kpis.SINCE_START)].iloc[-1]
    for name in ("sharpe_ratio", "annual_volatility", "cagr", "max_drawdown"):
        assert sheet.metrics[name] == pytest.approx(row[name], rel=1e-9), name
    assert f"the {flat + 1} flat warm-up session(s)" in ts.tearsheet_markdown(sheet)
    # A book never held keeps its range and says so; nothing flat looks like a strategy.
    never = equity.head(flat).copy()
    sheet = ts.build_tearsheet("demo", never, out.positions.head(0), out.trades.head(0), None, charts=False)
    assert sheet.first_invested is None and "Never held a book" in ts.tearsheet_markdown(sheet)
