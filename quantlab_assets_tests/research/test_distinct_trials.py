"""Issue 22 point 8: the deflated Sharpe ratio counts distinct return series, not variants: a
parameter that never binds (a max_turnover above any turnover) makes identical pairs, one trial each."""

from __future__ import annotations

import numpy as np

from quantlab_assets.research import overfitting as of


def test_identical_variants_are_one_trial():
    rng = np.random.default_rng(4)
    series = {f"v{i:03d}": rng.normal(0.0005 * i, 0.01, 250) for i in range(9)}
    doubled = {**series, **{f"{k}_cap": v.copy() for k, v in series.items()}}  # 18 variants, 9 series
    oos = {k: 0.0 for k in doubled}
    st = of.selection_statistics(doubled, oos)
    alone = of.selection_statistics(series, {k: 0.0 for k in series})
    assert st["trials"] == 9 == alone["trials"]
    # Same N and same Sharpe ratios: the same SR0 and DSR as the nine distinct series alone.
    assert st["sr0"] == alone["sr0"] and st["dsr"] == alone["dsr"]
    # Counting the 18 variants would have raised the bar (a larger N, a smaller variance).
    srs = np.array([of.per_period_sharpe(v) for v in doubled.values()])
    naive = of.expected_max_sharpe(float(np.var(srs, ddof=1)), 18)
    assert naive != alone["sr0"]
    assert of.distinct_series({"a": np.array([1.0, np.nan]), "b": np.array([1.0, np.nan]), "c": np.ones(2)}) == [
        "a",
        "c",
    ]


def test_cli_figures_read_as_percent_ratio_and_money():
    """Issue 22 point 8: ``quantlab backtest`` prints formatted figures, the benchmark named, and
    the session they count from (no ``total_return -0.00608199``)."""
    import pandas as pd

    from quantlab_assets.research.cli import kpi_lines

    lines = kpi_lines(
        {
            "total_return": -0.00608199,
            "sharpe_ratio": 0.8976,
            "sessions": 61.0,
            "pnl_net": -6081.99,
            "excess_return": 0.0123,
            "information_ratio": float("nan"),
        },
        pd.Timestamp("2026-06-02"),
    )
    assert lines[0] == "since-start figures from 2026-06-02 (first invested session); vs = equal-weight benchmark"
    body = [line.split() for line in lines[1:]]
    assert body == [
        ["total_return", "-0.61%"],
        ["sharpe_ratio", "0.90"],
        ["sessions", "61"],
        ["pnl_net", "-6,081.99"],
        ["excess_return", "(vs)", "1.23%"],
        ["information_ratio", "(vs)", "n/a"],
    ]
    assert kpi_lines({}, None)[0].startswith("EMPTY BOOK")
    named = kpi_lines({"sharpe_ratio": 1.0}, pd.Timestamp("2026-06-02"), "SPY")[0]
    # `quantlab experiment show`: the recorded figures read the same way (no 993918.0057403542).
    from quantlab_assets.research.cli import results_lines

    shown = results_lines({"total_return": -0.006081994259645951, "final_equity": 993918.0057403542, "trades": 64})
    assert [line.split() for line in shown] == [
        ["final_equity", "993,918.01"],
        ["total_return", "-0.61%"],
        ["trades", "64"],
    ]
    assert results_lines({"variants": [{"id": "v001"}]}) == ['  {"variants": [{"id": "v001"}]}']
    assert named.endswith("vs = benchmark SPY")  # the spec's own benchmark, named


def test_experiment_listing_reads_the_results():
    import json

    from quantlab_assets.research.experiments import results_line

    bt = json.dumps({"sharpe_ratio": 0.8976, "total_return": -0.00608, "max_drawdown": -0.0812})
    assert results_line("backtest", bt) == "Sharpe 0.90, return -0.61%, max DD -8.12%"
    sweep = json.dumps(
        {
            "variants": {"v001": {}, "v002": {}, "v003": {}},
            "statistics": [{"best": "v002", "best_oos_sharpe": 1.234, "dsr": float("nan"), "trials": 2}],
        }
    )
    assert results_line("sweep", sweep) == "3 variants, best v002: OOS Sharpe 1.23, DSR n/a over 2 distinct trials"
