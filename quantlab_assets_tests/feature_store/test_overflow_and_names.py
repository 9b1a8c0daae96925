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
    bars.loc[hit, field] = 1e308
    if field == "adj_close":
        bars.loc[hit, ["open", "high", "low", "close"]] = 1e308
    preset = tmp_path / "p.yaml"
    kind = "volatility" if field == "adj_close" else "volume_z"
    preset.write_text(f"name: p\nfeatures:\n  - {{name: f, kind: {kind}, params: {{window: 60}}}}\n")
    with pytest.raises(FeatureOverflow) as info:
        compute_features(bars, load_preset(preset), bars["date"].min(), bars["date"].max())
    text = str(info.value)
    assert "for BBB on " in text and f"{field} 1e+308 on {pd.Timestamp(day).date()}" in text
    assert "feature f (window 60)" in text


@pytest.mark.parametrize("name", ["symbol", "date", "warm"])
def test_reserved_feature_names_are_refused_at_load(tmp_path, name):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nfeatures:\n  - {{name: {name}, kind: momentum, params: {{lookback: 5, skip: 0}}}}\n")
    with pytest.raises(PresetError, match=f"feature '{name}': name: reserved for a column of the features table"):
        load_preset(path)
