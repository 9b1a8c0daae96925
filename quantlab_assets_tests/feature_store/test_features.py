"""Features: the preset, pandas cross-checks, zero look-ahead, incremental = batch, warm-up."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core.features import (
    DEFAULT_PRESET_FILE,
    KINDS,
    FeaturePreset,
    PresetError,
    compute_features,
    load_preset,
    pivot_panel,
)

SECTORS = {
    "AAA": "Tech",
    "BBB": "Tech",
    "CCC": "Energy",
    "DDD": "Energy",
    "EEE": "Health",
    "FFF": "Health",
    "GGG": "Tech",
    "HHH": "Energy",
}
FIRST, LAST = "2017-01-02", "2019-12-31"
START, END = "2018-06-01", "2019-12-31"  # well after the first year of bars: warm
REQUIRED = [
    "ret_1",
    "ret_5",
    "ret_20",
    "ret_60",
    "ret_120",
    "logret_1",
    "logret_5",
    "logret_20",
    "logret_60",
    "logret_120",
    "mom_12_1",
    "sma_ratio_20",
    "sma_ratio_50",
    "sma_ratio_200",
    "ema_ratio_12",
    "ema_ratio_26",
    "vol_20",
    "vol_60",
    "rsi_14",
    "rsi_cutler_14",
    "sma_log_ratio_50",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_pctb_20",
    "atr_14_pct",
    "volume_z_20",
    "log_dollar_volume_20",
    "dist_52w_high",
    "dist_52w_low",
    "beta_60",
    "corr_60",
    "body_ratio",
    "upper_shadow",
    "lower_shadow",
    "range_pct",
    "gap_1",
    *(f"cs_{t}_{f}" for t in ("z", "rank") for f in ("ret_5", "ret_20", "mom_12_1", "vol_20", "rsi_14")),
]


@pytest.fixture(scope="module")
def preset() -> FeaturePreset:
    return load_preset()


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return (
        SyntheticProvider(seed=7, sectors=SECTORS)
        .fetch(list(SECTORS), date.fromisoformat(FIRST), date.fromisoformat(LAST))
        .bars
    )


@pytest.fixture(scope="module")
def batch(bars, preset) -> pd.DataFrame:
    return compute_features(bars, preset, START, END)


@pytest.fixture(scope="module")
def full(bars, preset) -> pd.DataFrame:
    """Every bar's features, from the very first bar (so the warm-up is visible)."""
    return compute_features(bars, preset, FIRST, LAST)


def write(tmp_path, text: str):
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the preset


def test_packaged_preset_declares_the_schema(preset):
    names = preset.feature_names
    assert len(names) >= 30 and len(set(names)) == len(names)
    assert set(REQUIRED) <= set(names)
    assert preset.name == "default"
    # mom_12_1 reads C_{t-252}: 253 sessions including D.
    assert preset.lookback_sessions == 253 and preset.warmup_sessions == 252
    assert max(preset.window_of(n) for n in names) == preset.lookback_sessions
    assert preset.window_of("macd_signal") == 120 + 42 - 1
    assert preset.window_of("cs_rank_mom_12_1") == preset.window_of("mom_12_1")
    assert {s.kind for s in preset.features} <= set(KINDS)


def test_unknown_kind_names_file_feature_and_field(tmp_path):
    path = write(
        tmp_path,
        "name: p\nfeatures:\n  - {name: ret_1, kind: return, params: {horizon: 1}}\n"
        "  - {name: foo, kind: fourier, params: {}}\n",
    )
    with pytest.raises(PresetError) as err:
        load_preset(path)
    msg = str(err.value)
    assert str(path) in msg and "field 'features.1' (name 'foo')" in msg and "kind" in msg and "fourier" in msg
    assert "(valid kinds: " in msg and "sma_ratio" in msg


@pytest.mark.parametrize(
    "params,field",
    [
        ("{horizon: 0}", "params.horizon"),
        ("{horizon: 5, smooth: true}", "params.smooth"),
        ("{}", "params.horizon"),
        ("{horizon: '5'}", "params.horizon"),
    ],
)
def test_bad_params_name_file_feature_and_field(tmp_path, params, field):
    path = write(tmp_path, f"name: p\nfeatures:\n  - {{name: ret_5, kind: return, params: {params}}}\n")
    with pytest.raises(PresetError) as err:
        load_preset(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "field 'features.0' (name 'ret_5')" in msg and field in msg


@pytest.mark.parametrize(
    "features,needle",
    [
        ("  - {name: a, kind: gap}\n  - {name: a, kind: gap}\n", "feature 'a': name: declared twice"),
        ("  - {name: z, kind: cs_zscore, params: {of: a}}\n  - {name: a, kind: gap}\n", "feature 'z': params.of"),
        ("  - {name: a, kind: gap, window: 3}\n", "field 'features.0.window' (name 'a'): Extra inputs"),
        ("  - {name: Bad-Name, kind: gap}\n", "field 'features.0.name' (name 'Bad-Name'):"),
        ("  - {name: m, kind: macd, params: {fast: 26, slow: 12, output: macd}}\n", "fast (26) must be smaller"),
        ("  - {name: v, kind: volatility, params: {window: 300}}\n", "params.window"),
    ],
)
def test_preset_level_errors(tmp_path, features, needle):
    path = write(tmp_path, "name: p\nfeatures:\n" + features)
    with pytest.raises(PresetError, match=str(path)) as err:
        load_preset(path)
    assert needle in str(err.value)


def test_every_bad_feature_is_reported_once(tmp_path):
    path = write(
        tmp_path,
        "name: p\nfeatures:\n  - {name: a, kind: return, params: {horizon: 0}}\n  - {name: b, kind: fourier}\n",
    )
    with pytest.raises(PresetError) as err:
        load_preset(path)
    parts = str(err.value).removeprefix(f"{path}: ").split("; ")
    assert parts[0] == "field 'features.0' (name 'a'): params.horizon: Input should be greater than or equal to 1"
    assert parts[1].startswith("field 'features.1' (name 'b'): kind: unknown kind 'fourier' (valid kinds: ")
    assert len(parts) == 2
    with pytest.raises(PresetError, match="at least one feature"):
        load_preset(write(tmp_path, "name: p\nfeatures: []\n"))


def test_unreadable_preset_files(tmp_path):
    with pytest.raises(PresetError, match="not found"):
        load_preset(tmp_path / "missing.yaml")
    with pytest.raises(PresetError, match="not valid YAML"):
        load_preset(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(PresetError, match="expected a mapping"):
        load_preset(write(tmp_path, "- just a list\n"))


def test_default_path_is_the_packaged_file(preset):
    assert load_preset(DEFAULT_PRESET_FILE) == preset


# --------------------------------------------------------------------------- the output frame


def test_output_shape_columns_and_order(bars, preset, batch):
    assert list(batch.columns) == ["date", "symbol", "warm", *preset.feature_names]
    assert all(batch[n].dtype == np.float64 for n in preset.feature_names)
    assert batch["warm"].dtype == bool and batch["date"].dtype == "datetime64[ns]"
    in_range = bars[bars["date"].between(pd.Timestamp(START), pd.Timestamp(END))]
    assert len(batch) == len(in_range)
    expected = in_range.sort_values(["symbol", "date"])[["date", "symbol"]].reset_index(drop=True)
    assert_frame_equal(batch[["date", "symbol"]], expected)


def test_same_input_same_output_and_input_untouched(bars, preset, batch):
    extra = bars.assign(source="synthetic").sample(frac=1.0, random_state=3)  # shuffled, an extra column
    before = extra.copy()
    again = compute_features(extra, preset, START, END)
    assert_frame_equal(again, batch, check_exact=True)
    assert_frame_equal(extra, before, check_exact=True)


def test_empty_range_or_input_gives_an_empty_frame_with_the_schema(bars, preset):
    for out in (
        compute_features(bars, preset, "2030-01-01", "2030-12-31"),
        compute_features(bars.iloc[:0], preset, START, END),
    ):
        assert out.empty and list(out.columns) == ["date", "symbol", "warm", *preset.feature_names]


def test_duplicate_bars_and_missing_columns_are_errors(bars, preset):
    with pytest.raises(ValueError, match="sharing a"):
        compute_features(pd.concat([bars, bars.iloc[[5]]]), preset, START, END)
    with pytest.raises(ValueError, match="adj_close"):
        compute_features(bars.drop(columns="adj_close"), preset, START, END)


def test_pivot_panel_puts_bars_on_the_session_axis(bars):
    panel = pivot_panel(bars[bars["symbol"].isin(["BBB", "AAA"])])
    assert list(panel.symbols) == ["AAA", "BBB"]
    assert panel.dates.equals(trading_days(FIRST, LAST))
    assert panel.present.all()
    row = bars[(bars["symbol"] == "BBB")].iloc[10]
    assert panel.arrays["close"][10, 1] == row["close"] and panel.arrays["volume"][10, 1] == row["volume"]


# --------------------------------------------------------------------------- against pandas


@pytest.fixture(scope="module")
def reference(bars, full):
    """Straightforward pandas versions of the features, for symbol BBB."""
    b = bars[bars["symbol"] == "BBB"].set_index("date")
    px, k = b["adj_close"], b["adj_close"] / b["close"]
    lp = np.log(px)
    r = lp.diff()
    ao, ah, al = np.log(b["open"] * k), np.log(b["high"] * k), np.log(b["low"] * k)
    market = np.log(bars.pivot(index="date", columns="symbol", values="adj_close")).diff().mean(axis=1)
    gains, losses = r.clip(lower=0).rolling(14).sum(), (-r).clip(lower=0).rolling(14).sum()
    mean20, std20 = px.rolling(20).mean(), px.rolling(20).std(ddof=0)
    lv = np.log(b["volume"])
    ref = {
        "ret_1": px.pct_change(),
        "ret_20": px.pct_change(20),
        "logret_5": lp.diff(5),
        "logret_120": lp.diff(120),
        "mom_12_1": px.shift(21) / px.shift(252) - 1,
        "sma_ratio_20": px / px.rolling(20).mean() - 1,
        "sma_ratio_200": px / px.rolling(200).mean() - 1,
        "sma_log_ratio_50": lp - lp.rolling(50).mean(),
        "vol_20": r.rolling(20).std() * np.sqrt(252),
        "vol_60": r.rolling(60).std() * np.sqrt(252),
        "rsi_cutler_14": 100 * gains / (gains + losses),
        "bb_pctb_20": (px - (mean20 - 2 * std20)) / (4 * std20),
        "volume_z_20": (lv - lv.rolling(20).mean()) / lv.rolling(20).std(),
        "log_dollar_volume_20": np.log(b["close"] * b["volume"]).rolling(20).mean(),
        "dist_52w_high": px / px.rolling(252).max() - 1,
        "dist_52w_low": px / px.rolling(252).min() - 1,
        "beta_60": r.rolling(60).cov(market) / market.rolling(60).var(),
        "corr_60": r.rolling(60).corr(market),
        "body_ratio": (lp - ao) / (ah - al),
        "upper_shadow": np.exp(ah) / np.maximum(np.exp(ao), px) - 1,
        "lower_shadow": np.minimum(np.exp(ao), px) / np.exp(al) - 1,
        "range_pct": np.exp(ah - al) - 1,
        "gap_1": np.exp(ao) / px.shift() - 1,
    }
    ours = full[full["symbol"] == "BBB"].set_index("date")
    return ours, pd.DataFrame(ref)


# Quantisation to 1e-7 log units bounds the absolute error; ratios of small differences
# (RSI on 0..100, body_ratio over a day's range) scale it up.
ATOL = {"rsi_cutler_14": 2e-4, "body_ratio": 1e-4, "volume_z_20": 1e-6}


@pytest.mark.parametrize(
    "name",
    [
        "ret_1",
        "ret_20",
        "logret_5",
        "logret_120",
        "mom_12_1",
        "sma_ratio_20",
        "sma_ratio_200",
        "sma_log_ratio_50",
        "vol_20",
        "vol_60",
        "rsi_cutler_14",
        "bb_pctb_20",
        "volume_z_20",
        "log_dollar_volume_20",
        "dist_52w_high",
        "dist_52w_low",
        "beta_60",
        "corr_60",
        "body_ratio",
        "upper_shadow",
        "lower_shadow",
        "range_pct",
        "gap_1",
    ],
)
def test_feature_matches_pandas_reference(reference, name):
    ours, ref = reference
    got, want = ours[name], ref[name].reindex(ours.index)
    assert (got.isna() == want.isna()).all(), "NaN where the window is incomplete, exactly"
    np.testing.assert_allclose(got.dropna(), want.dropna(), rtol=1e-5, atol=ATOL.get(name, 3e-7))


def test_ema_features_match_pandas_ewm_within_the_truncation(bars, full):
    px = bars[bars["symbol"] == "BBB"].set_index("date")["adj_close"]
    ours = full[full["symbol"] == "BBB"].set_index("date")
    lp = np.log(px)
    ema = {s: lp.ewm(span=s).mean() for s in (12, 26)}
    macd = ema[12] - ema[26]
    want = {
        "ema_ratio_12": px / np.exp(ema[12]) - 1,
        "ema_ratio_26": px / np.exp(ema[26]) - 1,
        "macd": macd,
        "macd_signal": macd.ewm(span=9).mean(),
    }
    tail = ours.index[300:]  # by then pandas' full-history EMA has forgotten the start too
    for name, ref in want.items():
        # The truncated EMA drops < 1e-4 of the weight: differences stay below that order.
        np.testing.assert_allclose(ours.loc[tail, name], ref[tail], rtol=0, atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(ours["macd_hist"], ours["macd"] - ours["macd_signal"])


def test_cross_sectional_features_follow_their_source(batch):
    for source in ("ret_5", "ret_20", "mom_12_1", "vol_20", "rsi_14"):
        by_date = batch.groupby("date")[source]
        z = (batch[source] - by_date.transform("mean")) / by_date.transform(lambda s: s.std(ddof=0))
        np.testing.assert_allclose(batch[f"cs_z_{source}"], z, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(batch[f"cs_rank_{source}"], by_date.rank(pct=True), rtol=1e-15)


# --------------------------------------------------------------------------- zero look-ahead


@pytest.mark.parametrize("cut", ["2018-06-01", "2018-11-21", "2019-06-28", "2019-12-30"])
def test_no_lookahead_bars_after_the_date_cannot_change_its_features(bars, preset, batch, cut):
    day = pd.Timestamp(cut)
    later = bars["date"] > day
    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    perturbed = bars.copy()
    factor = rng.uniform(0.3, 3.0, size=int(later.sum()))
    for col in ("open", "high", "low", "close", "adj_close"):
        perturbed.loc[later, col] = perturbed.loc[later, col] * factor
    perturbed.loc[later, "volume"] = perturbed.loc[later, "volume"] * rng.uniform(0.1, 10.0, int(later.sum()))
    deleted = bars[~later]
    expected = batch[batch["date"] <= day].reset_index(drop=True)
    for variant in (perturbed, deleted):
        out = compute_features(variant, preset, START, END)
        assert_frame_equal(out[out["date"] <= day].reset_index(drop=True), expected, check_exact=True)


# --------------------------------------------------------------------------- incremental = batch


@pytest.mark.parametrize("history", ["lookback", "warmup"])
def test_incremental_equals_batch_bit_for_bit(bars, preset, history):
    days = trading_days("2019-03-01", "2019-08-30")[:60]
    batch = compute_features(bars, preset, days[0], days[-1])
    back = preset.lookback_sessions if history == "lookback" else preset.warmup_sessions
    parts = []
    for day in days:
        window = bars[bars["date"].between(shift_sessions(day, -back), day)]
        parts.append(compute_features(window, preset, day, day))
    one_by_one = pd.concat(parts).sort_values(["symbol", "date"]).reset_index(drop=True)
    assert len(batch) == 60 * len(SECTORS) and batch["warm"].all()
    assert_frame_equal(one_by_one, batch, check_exact=True)


# --------------------------------------------------------------------------- warm-up and gaps


def test_warm_up_rows_are_marked_not_filled(full, preset):
    for _, rows in full.groupby("symbol"):
        warm = rows["warm"].to_numpy()
        assert not warm[: preset.warmup_sessions].any() and warm[preset.warmup_sessions :].all()
        for name in preset.feature_names:
            window = preset.window_of(name)
            values = rows[name].to_numpy()
            assert np.isnan(values[: window - 1]).all(), name
            assert np.isfinite(values[window - 1 :]).all(), name
    assert np.isfinite(full.loc[full["warm"], preset.feature_names].to_numpy()).all()


def test_a_missing_bar_voids_every_window_containing_it(bars, preset, batch):
    gap_day = pd.Timestamp("2019-03-15")
    holed = bars[~((bars["symbol"] == "CCC") & (bars["date"] == gap_day))]
    out = compute_features(holed, preset, START, END)
    assert len(out) == len(batch) - 1
    ccc = out[out["symbol"] == "CCC"].set_index("date")
    after = trading_days(gap_day, END)[1:]  # the sessions after the hole, in order
    for name in ("ret_1", "vol_20", "sma_ratio_200", "ema_ratio_26", "gap_1", "dist_52w_high"):
        window = preset.window_of(name)
        voided = ccc.loc[after[: window - 1], name]
        clear = ccc.loc[after[window - 1 :], name]
        assert voided.isna().all() and clear.notna().all(), name
    before = batch[batch["symbol"] == "CCC"].set_index("date")
    assert ccc.loc[after[0], "body_ratio"] == before.loc[after[0], "body_ratio"]  # a one-bar window
    # Other symbols keep every feature that does not read the market proxy or the cross-section.
    own = [n for n in preset.feature_names if not n.startswith(("cs_", "beta", "corr"))]
    others = out["symbol"] != "CCC"
    assert_frame_equal(
        out.loc[others, own].reset_index(drop=True),
        batch.loc[batch["symbol"] != "CCC", own].reset_index(drop=True),
        check_exact=True,
    )


def test_a_session_missing_for_everyone_is_still_a_session(bars, preset):
    holiday_like = pd.Timestamp("2019-05-15")
    out = compute_features(bars[bars["date"] != holiday_like], preset, START, END)
    assert holiday_like not in set(out["date"])
    next_day = out[out["date"] == shift_sessions(holiday_like, 1)]
    assert next_day["ret_1"].isna().all() and next_day["gap_1"].isna().all()
    assert next_day["body_ratio"].notna().all()


def test_a_row_with_a_missing_price_keeps_its_row_with_nan_features(bars, preset):
    day = pd.Timestamp("2019-04-10")
    broken = bars.copy()
    broken.loc[(broken["symbol"] == "DDD") & (broken["date"] == day), "adj_close"] = np.nan
    out = compute_features(broken, preset, day, day).set_index("symbol")
    row = out.loc["DDD", preset.feature_names]
    # Only dollar volume (raw close x raw volume) does not read the adjusted close; volume_z reads
    # volume in adjusted shares (issue 24).
    assert row[row.notna()].index.tolist() == ["log_dollar_volume_20"]
    assert out.drop(index="DDD")[["ret_1", "vol_20", "rsi_14"]].notna().all().all()


def test_a_late_listing_warms_up_on_its_own_bars(bars, preset, batch):
    listed = pd.Timestamp("2018-09-04")
    late = bars[(bars["symbol"] != "GGG") | (bars["date"] >= listed)]
    out = compute_features(late, preset, START, END)
    ggg = out[out["symbol"] == "GGG"]
    assert ggg["date"].min() == listed
    warm_from = shift_sessions(listed, preset.warmup_sessions)
    assert (ggg["warm"] == (ggg["date"] >= warm_from)).all()
    assert ggg.loc[~ggg["warm"], "mom_12_1"].isna().all()
    assert out.loc[out["symbol"] != "GGG", "warm"].all()


def test_blocking_of_the_computation_is_invisible(bars, preset, batch, monkeypatch):
    from quantlab_assets.feature_store.core import features

    monkeypatch.setattr(features, "BLOCK_SYMBOLS", 3)
    monkeypatch.setattr(features, "BLOCK_DATES", 7)
    assert_frame_equal(compute_features(bars, preset, START, END), batch, check_exact=True)
