"""The toolbox kinds (toolbox.py): each against `ta` where `ta` has it (else pandas, by its
definition), zero leakage (bars after D never change D's value) and one date at a time equal to
the batch, bit for bit; and their parameters are typed and refused by name."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import yaml

from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core.features import FeaturePreset, PresetError, compute_features, load_preset

ta = pytest.importorskip("ta")

SYMBOLS = {"AAA": "Tech", "BBB": "Energy", "CCC": "Health"}
RTOL = 1e-6
TOOLBOX = [
    {"name": "sma_diff_10_20", "kind": "ma_cross", "params": {"fast": 10, "slow": 20, "output": "diff"}},
    {"name": "sma_ratio_10_20", "kind": "ma_cross", "params": {"fast": 10, "slow": 20, "output": "ratio"}},
    {"name": "sma_cross_10_20", "kind": "ma_cross", "params": {"fast": 10, "slow": 20, "output": "cross"}},
    {
        "name": "ema_diff_12_26",
        "kind": "ma_cross",
        "params": {"fast": 12, "slow": 26, "average": "ema", "output": "diff"},
    },
    {"name": "dc_pband_20", "kind": "donchian", "params": {"window": 20, "output": "pband"}},
    {"name": "dc_width_20", "kind": "donchian", "params": {"window": 20, "output": "width"}},
    {"name": "dc_breakout_20", "kind": "donchian", "params": {"window": 20, "output": "breakout"}},
    {"name": "roc_10", "kind": "roc", "params": {"window": 10}},
    {"name": "zscore_20", "kind": "zscore", "params": {"window": 20}},
    {"name": "stoch_k_14", "kind": "stochastic", "params": {"window": 14}},
    {"name": "stoch_d_14", "kind": "stochastic", "params": {"window": 14, "smooth": 3, "output": "d"}},
    {"name": "williams_r_14", "kind": "williams_r", "params": {"window": 14}},
    {"name": "cci_20", "kind": "cci", "params": {"window": 20}},
]
PRESET = FeaturePreset.model_validate({"name": "toolbox", "features": TOOLBOX})


@pytest.fixture(scope="module")
def bars():
    return SyntheticProvider(seed=5, sectors=SYMBOLS).fetch(list(SYMBOLS), date(2018, 1, 2), date(2019, 12, 31)).bars


@pytest.fixture(scope="module")
def batch(bars):
    return compute_features(bars, PRESET, "2018-01-02", "2019-12-31")


def _series(bars, batch, symbol):
    b = bars[bars["symbol"] == symbol].set_index("date").sort_index()
    k = b["adj_close"] / b["close"]
    ours = batch[batch["symbol"] == symbol].set_index("date").reindex(b.index)
    return b["adj_close"], b["high"] * k, b["low"] * k, ours


def _reference(name, close, high, low):
    sma10, sma20 = close.rolling(10).mean(), close.rolling(20).mean()
    refs = {
        "sma_diff_10_20": lambda: (
            ta.trend.SMAIndicator(close, 10).sma_indicator() - ta.trend.SMAIndicator(close, 20).sma_indicator()
        ),
        "sma_ratio_10_20": lambda: sma10 / sma20 - 1,
        "dc_pband_20": lambda: ta.volatility.DonchianChannel(high, low, close, window=20).donchian_channel_pband(),
        "dc_width_20": lambda: (
            (high.rolling(20).max() - low.rolling(20).min()) / ((high.rolling(20).max() + low.rolling(20).min()) / 2)
        ),
        "roc_10": lambda: ta.momentum.ROCIndicator(close, window=10).roc(),
        "zscore_20": lambda: (close - close.rolling(20).mean()) / close.rolling(20).std(ddof=0),
        "stoch_k_14": lambda: ta.momentum.StochasticOscillator(high, low, close, window=14).stoch(),
        "stoch_d_14": lambda: ta.momentum.StochasticOscillator(high, low, close, window=14).stoch_signal(),
        "williams_r_14": lambda: ta.momentum.WilliamsRIndicator(high, low, close, lbp=14).williams_r(),
        "cci_20": lambda: ta.trend.CCIIndicator(high, low, close, window=20).cci(),
    }
    return refs[name]()


@pytest.mark.parametrize(
    "name",
    [
        "sma_diff_10_20",
        "sma_ratio_10_20",
        "dc_pband_20",
        "dc_width_20",
        "roc_10",
        "zscore_20",
        "stoch_k_14",
        "stoch_d_14",
        "williams_r_14",
        "cci_20",
    ],
)
def test_kind_matches_its_reference(bars, batch, name):
    checked = 0
    for symbol in SYMBOLS:
        close, high, low, ours = _series(bars, batch, symbol)
        got, want = ours[name], _reference(name, close, high, low)
        # The first value comes exactly when the window is complete.
        window = PRESET.window_of(name)
        assert not got.iloc[: window - 1].notna().any() and got.iloc[window - 1 :].notna().all()
        err = (got - want).abs().iloc[window - 1 :]
        scale = want.iloc[window - 1 :].abs() + (close.iloc[window - 1 :] * 1e-9 if "diff" in name else 0.0)
        assert (err <= RTOL * scale + 1e-9).all(), f"{name}: worst {float(err.max()):.2e}"
        checked += len(err)
    assert checked > 1000


def test_ema_cross_matches_pandas_ewm_within_the_truncation(bars, batch):
    close, _, _, ours = _series(bars, batch, "BBB")
    want = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    window = PRESET.window_of("ema_diff_12_26")
    assert window == len(nb.ema_weights(26))
    err = (ours["ema_diff_12_26"] - want).abs().iloc[2 * window :]
    # dropped weight < EMA_TOL of the window's price range, on each average
    assert (err <= 2 * nb.EMA_TOL * close.max()).all()


def test_cross_event_is_backtesting_pys_crossover(bars, batch):
    for symbol in SYMBOLS:
        close, _, _, ours = _series(bars, batch, symbol)
        fast, slow = close.rolling(10).mean(), close.rolling(20).mean()
        up = (fast.shift(1) < slow.shift(1)) & (fast > slow)
        down = (fast.shift(1) > slow.shift(1)) & (fast < slow)
        want = pd.Series(np.where(up, 1.0, np.where(down, -1.0, 0.0)), index=close.index).iloc[20:]
        got = ours["sma_cross_10_20"].iloc[20:]
        assert (got == want).all() and (got == 1).sum() >= 3 and (got == -1).sum() >= 3
        assert got.iloc[:0].empty and np.isnan(ours["sma_cross_10_20"].iloc[19])


def test_breakout_compares_with_the_channel_before_the_day(bars, batch):
    close, high, low, ours = _series(bars, batch, "AAA")
    hh, ll = high.rolling(20).max().shift(1), low.rolling(20).min().shift(1)
    want = pd.Series(np.where(close > hh, 1.0, np.where(close < ll, -1.0, 0.0)), index=close.index).iloc[20:]
    got = ours["dc_breakout_20"].iloc[20:]
    assert (got == want).all() and (got != 0).any()


@pytest.mark.parametrize("cut", ["2018-09-14", "2019-05-01"])
def test_no_lookahead_bars_after_the_date_cannot_change_it(bars, batch, cut):
    cut_day = pd.Timestamp(cut)
    days = pd.to_datetime(bars["date"])
    future = bars.copy()
    later = days > cut_day
    future.loc[later, ["open", "high", "low", "close", "adj_close"]] *= 1.37  # a shock after D
    alone = compute_features(future, PRESET, "2018-01-02", cut)
    want = batch[pd.to_datetime(batch["date"]) <= cut_day]
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), want.reset_index(drop=True))


def test_one_date_at_a_time_equals_the_batch_bit_for_bit(bars, batch):
    days = pd.to_datetime(bars["date"])
    lookback = PRESET.lookback_sessions
    for day in pd.to_datetime(["2018-09-04", "2019-03-15", "2019-12-31"]):
        window = bars[(days <= day) & (days > day - pd.Timedelta(days=int(lookback * 1.6) + 10))]
        alone = compute_features(window, PRESET, day, day).set_index("symbol")[PRESET.feature_names]
        want = batch[pd.to_datetime(batch["date"]) == day].set_index("symbol")[PRESET.feature_names]
        assert alone.notna().all().all()
        assert np.array_equal(alone.to_numpy(), want.loc[alone.index].to_numpy())


def test_a_flat_channel_is_nan_not_a_number():
    days = pd.bdate_range("2024-01-02", periods=30)
    flat = pd.DataFrame(
        {"date": days, "symbol": "X", "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "adj_close": 10.0}
    )
    flat["volume"] = 1000.0
    out = compute_features(flat, PRESET, days[0], days[-1])
    last = out.iloc[-1]
    for name in ("dc_pband_20", "stoch_k_14", "williams_r_14", "zscore_20", "cci_20"):
        assert np.isnan(last[name]), name
    assert last["sma_diff_10_20"] == 0.0 and last["sma_cross_10_20"] == 0.0 and last["dc_breakout_20"] == 0.0


@pytest.mark.parametrize(
    "params,field",
    [
        ({"kind": "ma_cross", "params": {"fast": 20, "slow": 10, "output": "diff"}}, "fast (20) must be smaller"),
        ({"kind": "ma_cross", "params": {"fast": 5, "slow": 10, "output": "sum"}}, "params.output"),
        ({"kind": "donchian", "params": {"window": 20, "output": "pband", "lag": 1}}, "params.lag"),
        ({"kind": "stochastic", "params": {"window": "14"}}, "params.window"),
        ({"kind": "roc", "params": {}}, "params.window"),
    ],
)
def test_bad_params_are_refused_naming_the_field(tmp_path, params, field):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "features": [{"name": "x", **params}]}))
    with pytest.raises(PresetError, match="x") as err:
        load_preset(path)
    assert field in str(err.value) and str(path) in str(err.value)
