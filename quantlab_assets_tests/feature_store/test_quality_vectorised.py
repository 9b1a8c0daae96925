"""The features gate's and profile's vectorised figures against readable per-date / per-row references.

The gate and the profile judge 10-year candidates (a million rows): their figures are computed
column by column on arrays. These tests pin them, bit for bit, to the obvious pandas formulation
(a group per date, a copy of the warm rows), on a hand-worked frame and on random frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.feature_store.core.features import KINDS, FeaturePreset, definable, missing_rates
from quantlab_assets.feature_store.core.gate import no_infinite_values, one_row_per_symbol_and_day
from quantlab_assets.feature_store.core.profile import profile_features

PRESET = FeaturePreset.model_validate(
    {
        "name": "t",
        "features": [
            {"name": "ret_1", "kind": "return", "params": {"horizon": 1}},
            {"name": "vol_5", "kind": "volatility", "params": {"window": 5}},
            {"name": "cs_z_ret_1", "kind": "cs_zscore", "params": {"of": "ret_1"}},
            {"name": "cs_rank_ret_1", "kind": "cs_rank", "params": {"of": "ret_1"}},
            {"name": "cs_z_vol_5", "kind": "cs_zscore", "params": {"of": "vol_5"}},
        ],
    }
)


def _definable_per_date(frame: pd.DataFrame, preset: FeaturePreset) -> pd.DataFrame:
    """Reference: each date's distinct finite source values counted date by date."""
    out = pd.DataFrame(True, index=frame.index, columns=preset.feature_names)
    for spec in preset.features:
        kind = KINDS[spec.kind]
        if not kind.cross_sectional:
            continue
        for _day, rows in frame.groupby("date"):
            source = rows[spec.source_feature]
            finite = source[np.isfinite(source)]
            out.loc[rows.index, spec.name] = np.isfinite(source) & (finite.nunique() >= kind.min_distinct)
    return out


def _missing_rates_reference(frame: pd.DataFrame, preset: FeaturePreset) -> pd.Series:
    can = _definable_per_date(frame, preset)
    missing = (frame[preset.feature_names].isna() & can).sum()
    return (missing / can.sum().clip(lower=1)).astype(float)


def _frame(seed: int, days: int = 30, names: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-02", periods=days)
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, names),
            "symbol": np.tile([f"S{i}" for i in range(names)], days),
            "warm": rng.random(days * names) > 0.2,
        }
    )
    for name in PRESET.feature_names:
        values = rng.normal(size=len(frame)).round(1)  # rounded: ties and equal values per date
        values[rng.random(len(frame)) < 0.1] = np.nan
        frame[name] = values
    # A date with one distinct value (a z-score undefined), one with one name, one with -0.0 and 0.0.
    frame.loc[frame["date"] == dates[3], "ret_1"] = 0.5
    frame.loc[(frame["date"] == dates[4]) & (frame["symbol"] != "S0"), "vol_5"] = np.nan
    frame.loc[(frame["date"] == dates[5]), "ret_1"] = np.where(np.arange(names) % 2, 0.0, -0.0)
    frame.loc[frame.index[7], "cs_z_ret_1"] = np.inf
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_definable_by_hand():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"] * 3 + ["2024-01-03"] * 2),
            "symbol": ["A", "B", "C", "A", "B"],
            "warm": True,
            "ret_1": [0.1, 0.1, np.nan, 0.2, 0.3],
            "vol_5": [0.1, np.inf, 0.2, 0.3, np.nan],
            "cs_z_ret_1": 0.0,
            "cs_rank_ret_1": 0.0,
            "cs_z_vol_5": 0.0,
        }
    )
    can = definable(frame, PRESET)
    # 01-02: ret_1 has one distinct value (0.1 twice), so no z-score; a rank needs only one.
    assert can["cs_z_ret_1"].tolist() == [False, False, False, True, True]
    assert can["cs_rank_ret_1"].tolist() == [True, True, False, True, True]
    # vol_5: inf is no value; 01-03 has one value only.
    assert can["cs_z_vol_5"].tolist() == [True, False, True, False, False]
    assert can["ret_1"].all()


@pytest.mark.parametrize("seed", range(5))
def test_definable_and_missing_rates_equal_the_per_date_reference(seed):
    frame = _frame(seed)
    pd.testing.assert_frame_equal(definable(frame, PRESET), _definable_per_date(frame, PRESET))
    want = _missing_rates_reference(frame, PRESET)
    pd.testing.assert_series_equal(missing_rates(frame, PRESET), want, check_exact=True)
    warm = frame["warm"].to_numpy()
    pd.testing.assert_series_equal(
        missing_rates(frame, PRESET, rows=warm), _missing_rates_reference(frame[warm], PRESET), check_exact=True
    )


@pytest.mark.parametrize("seed", range(3))
def test_profile_equals_the_copy_of_the_warm_rows(seed):
    frame, reference = _frame(seed, days=60), _frame(seed + 100)
    got = profile_features(frame, PRESET.feature_names, reference, corr_threshold=0.0, max_rows=100)
    warm = frame[frame["warm"]]
    step = max(1, len(warm) // 100)
    want_missing = warm[PRESET.feature_names].isna().mean()
    want_corr = warm.iloc[::step][PRESET.feature_names].corr().to_numpy()
    pd.testing.assert_series_equal(got.missing, want_missing, check_exact=True)
    assert got.warm_rows == len(warm) and got.rows == len(frame)
    for row in got.correlated.itertuples():
        i, j = PRESET.feature_names.index(row.feature_a), PRESET.feature_names.index(row.feature_b)
        assert row.rho == round(float(want_corr[i, j]), 4)
    assert len(got.correlated) == int(np.isfinite(want_corr[np.triu_indices(len(want_corr), 1)]).sum())


def test_infinite_cells_and_duplicates_still_named():
    frame = _frame(0)
    bad = no_infinite_values(frame, PRESET.feature_names)
    assert not bad.passed and len(bad.offending) == 1 and bad.offending["column"].iat[0] == "cs_z_ret_1"
    assert bad.offending["value"].iat[0] == "inf"
    clean = no_infinite_values(frame[~np.isinf(frame["cs_z_ret_1"])], PRESET.feature_names)
    assert clean.passed and clean.offending.empty and list(clean.offending.columns) == list(bad.offending.columns)
    twice = one_row_per_symbol_and_day(pd.concat([frame, frame.iloc[[3, 3]]]))
    assert not twice.passed and twice.figures["duplicate_rows"] == 2.0 and len(twice.offending) == 3
    assert one_row_per_symbol_and_day(frame).passed


@pytest.mark.parametrize("at_least", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_distinct_per_date_equals_nunique(at_least, seed):
    from quantlab_assets.feature_store.core.coverage import distinct_per_date

    frame = _frame(seed)
    values = frame["ret_1"].to_numpy()
    finite = frame["ret_1"].where(np.isfinite(frame["ret_1"]))
    want = (finite.groupby(frame["date"]).transform("nunique") >= at_least).to_numpy()
    np.testing.assert_array_equal(distinct_per_date(frame["date"], values, at_least), want)
