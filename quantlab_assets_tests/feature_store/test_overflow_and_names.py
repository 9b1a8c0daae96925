"""A feature window that cannot be represented names symbol, date and value; reserved feature
names are refused when the preset loads (issue 24)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.feature_store.core import kernels as nb
from quantlab_assets.feature_store.core.features import FeatureOverflow, PresetError, compute_features, load_preset


def _bars(symbols=("AAA", "BBB"), n=80) -> pd.DataFrame:
    days = trading_days("2024-01-02", "2024-06-28")[:n]
    rng = np.random.default_rng(3)
    rows = []
    for s in symbols:
        px = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        for d, p in zip(days, px):
            rows.append(
                {
                    "date": d,
                    "symbol": s,
                    "open": p,
                    "high": p * 1.01,
                    "low": p * 0.99,
                    "close": p,
                    "adj_close": p,
                    "volume": 1e6,
                }
            )
    return pd.DataFrame(rows)


def test_kernel_overflow_carries_its_position():
    q = np.zeros((30, 2), dtype=np.int64)
    q[25, 1] = 800_000_000  # 19 * q**2 = 1.2e19 wraps to a negative int64
    with pytest.raises(nb.WindowOverflow) as info:
        nb.centered_sum_squares(q, np.ones_like(q, dtype=bool), 20)
    assert (info.value.row, info.value.col, info.value.window) == (25, 1, 20)


@pytest.mark.parametrize("field", ["adj_close", "volume"])
def test_a_feature_overflow_names_symbol_date_and_value(tmp_path, field):
    bars = _bars()
    day = bars["date"].unique()[60]
    hit = (bars["symbol"] == "BBB") & (bars["date"] == day)
    value = 1e308 if field == "adj_close" else 1e200  # 1e308 x close overflows to inf: a missing volume
    bars.loc[hit, field] = value
    if field == "adj_close":
        bars.loc[hit, ["open", "high", "low", "close"]] = 1e308
    preset = tmp_path / "p.yaml"
    kind = "volatility" if field == "adj_close" else "volume_z"
    preset.write_text(f"name: p\nfeatures:\n  - {{name: f, kind: {kind}, params: {{window: 60}}}}\n")
    with pytest.raises(FeatureOverflow) as info:
        compute_features(bars, load_preset(preset), bars["date"].min(), bars["date"].max())
    text = str(info.value)
    assert "for BBB on " in text and f"{field} {value:g} on {pd.Timestamp(day).date()}" in text
    assert "feature f (window 60)" in text


@pytest.mark.parametrize("name", ["symbol", "date", "warm"])
def test_reserved_feature_names_are_refused_at_load(tmp_path, name):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nfeatures:\n  - {{name: {name}, kind: momentum, params: {{lookback: 5, skip: 0}}}}\n")
    with pytest.raises(PresetError, match=f"feature '{name}': name: reserved for a column of the features table"):
        load_preset(path)


def test_a_split_in_a_back_adjusted_file_moves_no_feature(tmp_path):
    """A 2:1 split as vendors write it (before the split: close twice the adjusted close, half the
    volume) gives the same volume and price features as the same series without it (issue 24:
    volume_z_20 moved by 1.3 on the split's window)."""
    plain = _bars(symbols=("AAA", "BBB", "CCC"), n=80)
    plain["volume"] = 1e6 * np.exp(np.random.default_rng(5).normal(0, 0.3, len(plain))).round(0)
    plain["volume"] = plain["volume"].round(-1)
    split = plain.copy()
    day = plain["date"].unique()[50]
    before = (split["symbol"] == "BBB") & (split["date"] < day)
    for col in ("open", "high", "low", "close"):
        split.loc[before, col] = split.loc[before, col] * 2
    split.loc[before, "volume"] = split.loc[before, "volume"] / 2
    preset = load_preset()
    first, last = plain["date"].min(), plain["date"].max()
    a = compute_features(plain, preset, first, last)
    b = compute_features(split, preset, first, last)
    volume_features = [s.name for s in preset.features if s.kind in ("volume_z", "log_dollar_volume")]
    assert volume_features
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)


def test_an_overflow_that_wraps_to_a_positive_value_is_still_caught():
    # Window 2 over [0, 2**32 + 1]: M = d**2 = 2**64 + 2**33 + 1, which wraps to +2**33 + 1.
    q = np.array([[0], [2**32 + 1]], dtype=np.int64)
    with pytest.raises(nb.WindowOverflow):
        nb.centered_sum_squares(q, np.ones_like(q, dtype=bool), 2)
    # Just inside int64 it is exact: M = d**2 with d = 3 * 10**9.
    q = np.array([[0], [3 * 10**9]], dtype=np.int64)
    m, _, ok = nb.centered_sum_squares(q, np.ones_like(q, dtype=bool), 2)
    assert ok[1, 0] and int(m[1, 0]) == 9 * 10**18
