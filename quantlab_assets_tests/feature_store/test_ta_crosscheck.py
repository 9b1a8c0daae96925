"""Every feature the `ta` library computes (test-only dependency) matches it after warm-up to 1e-6
relative: Wilder's RSI and ATR, the SMA ratios, Bollinger %B, and the returns (those within the
1e-7 log units of their fixed-point computation).

`ta` seeds Wilder's recursion at the first bar and runs it forever; ours is truncated where the
dropped weight is below 1e-7 (``kernels.WILDER_TOL``). Once our window is complete, the weight
`ta` still gives to its seed is below that too, so the two agree well inside 1e-6.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core.features import compute_features, load_preset

ta = pytest.importorskip("ta")

SYMBOLS = {"AAA": "Tech", "BBB": "Energy", "CCC": "Health"}
RTOL = 1e-6
QUANTUM = 1.0001 / nb.SCALE


@pytest.fixture(scope="module")
def frames():
    bars = SyntheticProvider(seed=11, sectors=SYMBOLS).fetch(list(SYMBOLS), date(2016, 1, 4), date(2019, 12, 31)).bars
    ours = compute_features(bars, load_preset(), "2016-01-04", "2019-12-31")
    return bars, ours


def _per_symbol(frames):
    bars, ours = frames
    for symbol in SYMBOLS:
        b = bars[bars["symbol"] == symbol].set_index("date").sort_index()
        k = b["adj_close"] / b["close"]
        yield (
            b["adj_close"],
            b["high"] * k,
            b["low"] * k,
            ours[ours["symbol"] == symbol].set_index("date").reindex(b.index),
        )


def _reference(name, close, high, low):
    if name == "rsi_14":
        return ta.momentum.RSIIndicator(close, window=14).rsi()
    if name == "atr_14_pct":
        return ta.volatility.AverageTrueRange(high, low, close, window=14).average_true_range() / close
    if name.startswith("sma_ratio_"):
        window = int(name.rsplit("_", 1)[1])
        return close / ta.trend.SMAIndicator(close, window=window).sma_indicator() - 1
    if name == "bb_pctb_20":
        return ta.volatility.BollingerBands(close, window=20, window_dev=2).bollinger_pband()
    if name == "ret_1":
        return ta.others.DailyReturnIndicator(close).daily_return() / 100
    if name == "logret_1":
        return ta.others.DailyLogReturnIndicator(close).daily_log_return() / 100
    if name.startswith("ret_"):
        return ta.momentum.ROCIndicator(close, window=int(name.split("_")[1])).roc() / 100
    raise KeyError(name)


@pytest.mark.parametrize(
    "name",
    [
        "rsi_14",
        "atr_14_pct",
        "sma_ratio_20",
        "sma_ratio_50",
        "sma_ratio_200",
        "bb_pctb_20",
        "ret_1",
        "logret_1",
        "ret_5",
        "ret_20",
        "ret_60",
        "ret_120",
    ],
)
def test_feature_matches_ta_after_warm_up(frames, name):
    checked = 0
    for close, high, low, ours in _per_symbol(frames):
        got = ours[name]
        want = _reference(name, close, high, low)
        warm = got.notna()
        # Our first value comes exactly when the feature's window is complete, never earlier.
        assert warm.sum() > 500 and not got.iloc[: load_preset().window_of(name) - 1].notna().any()
        err = (got[warm] - want[warm]).abs()
        # Returns come from logs quantised to 1e-7 (two rounded logs: at most 1e-7 of
        # log change), so they carry that absolute error on top of the relative tolerance.
        bound = RTOL * want[warm].abs() + (QUANTUM * (1 + want[warm].abs()) if "ret" in name else 0.0)
        assert (err <= bound).all(), f"{name}: worst {float((err - bound).max()):.2e} over the bound"
        checked += int(warm.sum())
    assert checked > 1500


def test_wilder_truncation_drops_less_than_the_tolerance():
    w_full = (13 / 14) ** np.arange(2_000)
    kept = len(nb.wilder_weights(14))
    assert kept == 218
    assert w_full[kept:].sum() / w_full.sum() < nb.WILDER_TOL <= w_full[kept - 1 :].sum() / w_full.sum()
    assert load_preset().window_of("rsi_14") == load_preset().window_of("atr_14_pct") == kept + 1


def test_old_variants_keep_their_honest_names(frames):
    _, ours = frames
    bbb = ours[ours["symbol"] == "BBB"].dropna(subset=["rsi_14", "rsi_cutler_14", "sma_log_ratio_50"])
    # Cutler's and Wilder's RSI are different indicators; sma_log_ratio is the log of the
    # price over its geometric mean, close to (not equal to) the arithmetic ratio.
    assert (bbb["rsi_14"] - bbb["rsi_cutler_14"]).abs().max() > 1.0
    np.testing.assert_allclose(bbb["sma_log_ratio_50"], np.log1p(bbb["sma_ratio_50"]), atol=0.01)
    assert not np.allclose(bbb["sma_log_ratio_50"], np.log1p(bbb["sma_ratio_50"]), rtol=1e-6, atol=0)


def test_ta_features_are_identical_computed_one_date_at_a_time(frames):
    bars, ours = frames
    preset = load_preset()
    names = ["rsi_14", "atr_14_pct", "sma_ratio_200", "bb_pctb_20"]
    for day in pd.to_datetime(["2017-03-01", "2018-07-16", "2019-12-31"]):
        days = pd.to_datetime(bars["date"])
        window = bars[(days <= day) & (days > day - pd.Timedelta(days=int(preset.lookback_sessions * 1.6)))]
        alone = compute_features(window, preset, day, day).set_index("symbol")[names]
        batch = ours[pd.to_datetime(ours["date"]) == day].set_index("symbol")[names]
        assert alone.notna().all().all()
        assert np.array_equal(alone.to_numpy(), batch.loc[alone.index].to_numpy())
