"""Labels: the execution convention by hand, not-yet-available as NULL, never leaking into features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.feature_store.core.labels import HORIZONS, LABELS, compute_labels


def _bars(symbol: str, days, opens, adj_factor=1.0) -> pd.DataFrame:
    opens = np.asarray(opens, float)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(days),
            "symbol": symbol,
            "open": opens,
            "high": opens * 1.01,
            "low": opens * 0.99,
            "close": opens,
            "adj_close": opens * adj_factor,
            "volume": 1e6,
        }
    )


def test_next_open_to_open_by_hand():
    # Sessions of 2024-03-25 .. 2024-04-30 (Good Friday 03-29 closed); opens 100, 101, 102, ...
    days = pd.bdate_range("2024-03-25", "2024-04-30").drop(pd.Timestamp("2024-03-29"))
    bars = _bars("AAA", days, 100 + np.arange(len(days)))
    out = compute_labels(bars, "2024-03-25", "2024-03-28")
    first = out.iloc[0]
    assert first["date"] == pd.Timestamp("2024-03-25")
    assert first["entry_date"] == pd.Timestamp("2024-03-26")  # next session
    assert first["exit_date_1"] == pd.Timestamp("2024-03-27")
    assert first["fwd_ret_1"] == 102 / 101 - 1  # open(D+2) / open(D+1) - 1
    assert first["fwd_ret_5"] == 106 / 101 - 1
    assert first["fwd_ret_20"] == 121 / 101 - 1
    # 2024-03-28: the next session skips Good Friday.
    last = out.iloc[-1]
    assert last["entry_date"] == pd.Timestamp("2024-04-01")
    assert last["fwd_ret_1"] == 105 / 104 - 1


def test_adjustment_uses_adj_close_over_close():
    days = pd.bdate_range("2024-01-02", "2024-02-15")
    bars = _bars("AAA", days, np.full(len(days), 50.0))
    # A 2:1 split on 2024-01-10: raw opens halve, adjusted opens stay flat.
    split = bars["date"] >= pd.Timestamp("2024-01-10")
    bars.loc[split, ["open", "high", "low", "close"]] /= 2
    bars.loc[~split, "adj_close"] = bars.loc[~split, "close"] / 2
    bars.loc[split, "adj_close"] = bars.loc[split, "close"]
    out = compute_labels(bars, "2024-01-05", "2024-01-12")
    assert np.allclose(out["fwd_ret_1"], 0.0) and np.allclose(out["fwd_ret_5"], 0.0)


def test_recent_dates_are_null_not_guessed():
    days = pd.bdate_range("2024-06-03", "2024-06-14")  # 2024-06-19 Juneteenth is after
    bars = _bars("AAA", days, 10 + np.arange(len(days)))
    out = compute_labels(bars, "2024-06-03", "2024-06-14").set_index("date")
    assert out.loc["2024-06-03", "fwd_ret_5"] == 16 / 11 - 1
    assert np.isnan(out.loc["2024-06-03", "fwd_ret_20"])
    assert out["fwd_ret_1"].isna().sum() == 2  # the last two decision dates lack an exit open
    assert out.loc["2024-06-14", "exit_date_1"] == pd.Timestamp("2024-06-18")


def test_labels_do_not_depend_on_bars_before_the_decision_date():
    days = pd.bdate_range("2024-01-02", "2024-03-28")
    rng = np.random.default_rng(1)
    bars = _bars("AAA", days, 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days)))))
    full = compute_labels(bars, "2024-02-01", "2024-02-20")
    trimmed = compute_labels(bars[bars["date"] >= "2024-02-01"], "2024-02-01", "2024-02-20")
    pd.testing.assert_frame_equal(full, trimmed, check_exact=True)


def test_schema_has_no_feature_columns_and_rows_only_where_bars_exist():
    days = pd.bdate_range("2024-01-02", "2024-02-29")
    bars = pd.concat(
        [_bars("AAA", days, np.linspace(10, 20, len(days))), _bars("BBB", days[5:], np.linspace(30, 20, len(days) - 5))]
    )
    out = compute_labels(bars, "2024-01-02", "2024-01-31")
    assert list(out.columns) == LABELS.column_names
    # Only sessions get labels: the bar on MLK day (2024-01-15, exchange closed) is ignored.
    expected = set(days[5:][days[5:] <= "2024-01-31"]) - {pd.Timestamp("2024-01-15")}
    assert set(out[out["symbol"] == "BBB"]["date"]) == expected
    assert [c for c in out.columns if c.startswith("fwd_ret_")] == [f"fwd_ret_{h}" for h in HORIZONS]


@pytest.mark.parametrize("start,end", [("2024-07-04", "2024-07-04"), ("2024-07-06", "2024-07-07")])
def test_no_session_no_labels(start, end):
    days = pd.bdate_range("2024-06-20", "2024-08-30")
    out = compute_labels(_bars("AAA", days, np.ones(len(days))), start, end)
    assert out.empty and list(out.columns) == LABELS.column_names
