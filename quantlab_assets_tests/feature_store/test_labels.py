"""Labels: the execution convention by hand, not-yet-available as NULL, never leaking into features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.feature_store.core.labels import compute_labels
from quantlab_assets.feature_store.core.schema import HORIZONS, LABELS


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


def _labels_per_symbol(ohlcv: pd.DataFrame, start, end) -> pd.DataFrame:
    """The readable reference: a (sessions x symbols) pivot of adjusted opens, then one frame per
    symbol of every decision date, kept where the symbol has a bar on that date."""
    from quantlab_assets.common.calendar import shift_sessions, trading_days
    from quantlab_assets.data_curator.core.bars import adjusted_open

    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    decisions = trading_days(lo, hi)
    sessions = trading_days(lo, shift_sessions(hi, max(HORIZONS) + 1))
    panel = pd.DataFrame({"date": pd.to_datetime(ohlcv["date"]), "symbol": ohlcv["symbol"]})
    panel["adj_open"] = adjusted_open(ohlcv)
    wide = panel.pivot_table(index="date", columns="symbol", values="adj_open", aggfunc="first").reindex(sessions)
    frames = []
    for symbol in wide.columns:
        opens = wide[symbol].to_numpy()
        for t, day in enumerate(decisions):
            row = {"date": day, "symbol": symbol, "entry_date": sessions[t + 1]}
            for h in HORIZONS:
                with np.errstate(invalid="ignore", divide="ignore"):
                    row[f"fwd_ret_{h}"] = opens[t + 1 + h] / opens[t + 1] - 1.0
                row[f"exit_date_{h}"] = sessions[t + 1 + h]
            frames.append(row)
    present = panel[(panel["date"] >= lo) & (panel["date"] <= hi)][["date", "symbol"]]
    out = pd.DataFrame(frames).merge(present, on=["date", "symbol"], how="inner")
    return out[LABELS.column_names].sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vectorised_labels_equal_the_per_symbol_reference(seed):
    """Random bars with gaps, a duplicated bar, a NaN price, a holiday bar and an unpriced symbol:
    the vectorised labels equal the per-symbol reference bit for bit."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-02", "2024-04-30")
    frames = []
    for k in range(6):
        kept = days[rng.random(len(days)) > 0.15]  # missing bars
        frames.append(_bars(f"S{k}", kept, 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(kept)))), rng.uniform(0.5, 1)))
    bars = pd.concat(frames, ignore_index=True)
    bars.loc[rng.integers(len(bars)), "open"] = np.nan
    bars = pd.concat([bars, bars.iloc[[rng.integers(len(bars))]]], ignore_index=True)  # a duplicated bar
    bars = pd.concat([bars, _bars("NOPRICE", days[:30], np.full(30, np.nan))], ignore_index=True)
    bars = bars.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any input order
    got = compute_labels(bars, "2024-01-10", "2024-03-29")
    want = _labels_per_symbol(bars, "2024-01-10", "2024-03-29")
    assert len(got) > 200
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_pending_counts_by_day_equal_each_days_pending_counts():
    from quantlab_assets.feature_store.core.labels import pending_counts, pending_counts_by_day

    days = pd.bdate_range("2024-05-01", "2024-07-31")
    bars = pd.concat([_bars("AAA", days, np.linspace(10, 20, len(days))), _bars("BBB", days[:40], np.ones(40))])
    labels = compute_labels(bars, "2024-06-03", "2024-07-31")
    want = {pd.Timestamp(day): pending_counts(rows) for day, rows in labels.groupby("date")}
    assert pending_counts_by_day(labels) == want
    assert any(v["pending_fwd_ret_20"] for v in want.values())
    assert pending_counts_by_day(labels.iloc[:0]) == {}
