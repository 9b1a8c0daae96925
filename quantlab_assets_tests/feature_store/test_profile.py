"""Feature profile: PSI and KS against hand-worked cases, correlated pairs, missing rates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.feature_store.core.profile import ks_statistic, profile_features, profile_markdown, psi


def test_psi_zero_for_identical_and_large_for_shifted():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert psi(ref, ref) == 0.0
    assert psi(ref, rng.normal(size=20_000)) < 0.01
    assert psi(ref, rng.normal(loc=1.0, size=20_000)) > 0.25


def test_psi_by_hand_two_bins():
    # Reference split evenly at its median (bins of 50%/50%); current 80%/20%.
    ref = np.array([0.0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    cur = np.array([0.0] * 8 + [1.0] * 2)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert np.isclose(psi(ref, cur, bins=2), expected)


def test_ks_matches_definition():
    assert ks_statistic(np.array([1.0, 2, 3]), np.array([1.0, 2, 3])) == 0.0
    assert ks_statistic(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6])) == 0.5
    assert np.isnan(ks_statistic(np.array([np.nan]), np.array([1.0])))


def test_profile_finds_missing_correlated_and_drifted():
    rng = np.random.default_rng(3)
    n = 2000
    x = rng.normal(size=n)
    cur = pd.DataFrame(
        {
            "warm": [False] * 100 + [True] * (n - 100),
            "a": x,
            "b": 2 * x + 1e-3 * rng.normal(size=n),
            "c": rng.normal(size=n),
        }
    )
    cur.loc[150:249, "c"] = np.nan  # 100 missing among 1900 warm rows
    ref = pd.DataFrame(
        {"warm": True, "a": rng.normal(size=n), "b": 2 * rng.normal(size=n), "c": rng.normal(loc=2.0, size=n)}
    )
    prof = profile_features(cur, ["a", "b", "c"], ref, corr_threshold=0.9)
    assert prof.warm_rows == n - 100
    assert np.isclose(prof.missing["c"], 100 / 1900) and prof.missing["a"] == 0
    assert prof.correlated[["feature_a", "feature_b"]].values.tolist() == [["a", "b"]]
    drift = prof.drift.set_index("feature")["psi"]
    assert drift["c"] > 0.25 and drift["a"] < 0.1
    text = profile_markdown(prof, "t", "ref")
    assert "| a | b |" in text and "1 of 3 features drifted" in text
