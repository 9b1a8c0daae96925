"""One Sharpe estimator family (issue 21 item 4): the annualised, per-period, rolling, expanding,
probabilistic (tearsheet) and deflated (research) Sharpe ratios start from the same estimate and
moments, so the same returns give one set of probabilities."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.analytics.core import tearsheet as ts
from quantlab_assets.backtest_engine.core import kpis
from quantlab_assets.research import overfitting as of


def _fat_tailed(n=500, seed=4, nan_share=0.0):
    rng = np.random.default_rng(seed)
    r = 0.0006 + 0.008 * rng.standard_t(4, n) - 0.004 * (rng.random(n) < 0.03)  # skewed, fat tails
    if nan_share:
        r[rng.random(n) < nan_share] = np.nan
    return pd.Series(r, index=pd.bdate_range("2020-01-01", periods=n))


def test_psr_hand_worked_from_bailey_and_lopez_de_prado():
    """Five returns worked by hand: mean 0.008, deviations (0.002, -0.028, 0.022, -0.008, 0.012),
    sum of squares 1480e-6 (sample variance 370e-6, population 296e-6), of cubes -10080e-9, of
    fourth powers 873760e-12; PSR = Z(SR sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))."""
    r = [0.01, -0.02, 0.03, 0.0, 0.02]
    sr = 0.008 / math.sqrt(370e-6)
    skew = (-10080e-9 / 5) / (296e-6) ** 1.5
    kurt = (873760e-12 / 5) / (296e-6) ** 2
    m = kpis.sharpe_moments(r)
    assert m.n == 5
    assert m.sharpe == pytest.approx(sr, rel=1e-13) and m.sharpe == pytest.approx(0.415900, abs=1e-6)
    assert m.skew == pytest.approx(skew, rel=1e-12) and m.skew == pytest.approx(-0.395870, abs=1e-6)
    assert m.kurtosis == pytest.approx(kurt, rel=1e-12) and m.kurtosis == pytest.approx(174752 / 87616, rel=1e-12)
    z = sr * math.sqrt(4) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    psr = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert kpis.probabilistic_sharpe_ratio(r) == pytest.approx(psr, rel=1e-12)
    # Against a benchmark Sharpe ratio of 0.1 per period: (SR - 0.1) in the numerator.
    z_b = (sr - 0.1) * 2 / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    assert kpis.probabilistic_sharpe_ratio(r, 0.1) == pytest.approx(0.5 * (1 + math.erf(z_b / math.sqrt(2))), rel=1e-12)
    # scipy's population (biased) moments are the same estimators.
    stats = pytest.importorskip("scipy.stats")
    assert m.skew == pytest.approx(stats.skew(r, bias=True), rel=1e-12)
    assert m.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False, bias=True), rel=1e-12)


def test_too_short_constant_or_impossible_is_nan():
    assert math.isnan(kpis.probabilistic_sharpe_ratio([0.01]))
    assert math.isnan(kpis.probabilistic_sharpe_ratio([0.01, 0.01, 0.01]))  # no dispersion: no probability
    assert math.isnan(kpis.probabilistic_sharpe_ratio([np.nan, np.nan]))
    assert math.isnan(kpis.probabilistic_sharpe_from_moments(0.5, 100, 3.0, 1.0))  # 1 - 1.5 + 0 < 0
    with pytest.raises(ValueError, match="1-D"):
        kpis.sharpe_moments(np.zeros((3, 2)))


@pytest.mark.parametrize("nan_share", [0.0, 0.05])
def test_dsr_of_one_trial_is_the_psr_against_zero(nan_share):
    r = _fat_tailed(nan_share=nan_share)
    psr = kpis.probabilistic_sharpe_ratio(r)
    assert 0.5 < psr < 1.0
    stats = of.selection_statistics({"only": r.to_numpy()}, {"only": 0.0})
    assert stats["trials"] == 1 and stats["sr0"] == 0.0
    assert stats["dsr"] == psr  # bit for bit: the same estimate, moments and formula
    m = kpis.sharpe_moments(r)
    assert of.deflated_sharpe_ratio(m.sharpe, m.n, m.skew, m.kurtosis, 0.0, 1) == psr
    assert ts.metrics(r)["probabilistic_sharpe_ratio"] == psr
    assert (of.per_period_sharpe(r), of.moments(r)) == (m.sharpe, (m.skew, m.kurtosis))


def test_per_period_sharpe_is_the_annualised_one_over_sqrt_a():
    r = _fat_tailed(nan_share=0.02)
    m = kpis.sharpe_moments(r)
    assert m.sharpe * np.sqrt(kpis.TRADING_DAYS_PER_YEAR) == kpis.sharpe_ratio(r)
    assert ts.metrics(r)["risk_return_ratio"] == m.sharpe


def test_rolling_figures_are_the_scalar_ones_at_every_window():
    r = _fat_tailed(300, nan_share=0.03)
    b = pd.Series(np.random.default_rng(9).normal(0.0003, 0.01, len(r)), index=r.index)
    b.iloc[0] = np.nan  # the benchmark's first session (the strategy's execution convention)
    window = 60
    roll = ts.rolling_figures(r, b, window)
    assert roll.iloc[: window - 1].isna().all().all()
    for t in range(window - 1, len(r)):
        part_r, part_b = r.iloc[t - window + 1 : t + 1], b.iloc[t - window + 1 : t + 1]
        assert roll[f"sharpe_{window}"].iloc[t] == pytest.approx(kpis.sharpe_ratio(part_r), rel=1e-12)
        assert roll[f"volatility_{window}"].iloc[t] == pytest.approx(kpis.annual_volatility(part_r), rel=1e-12)
        assert roll[f"beta_{window}"].iloc[t] == pytest.approx(ts.beta(part_r, part_b), rel=1e-10)


def test_expanding_sharpe_is_the_scalar_one_at_every_date():
    r = _fat_tailed(400, nan_share=0.03)
    daily = pd.DataFrame({"date": r.index, "ret": r.to_numpy(), "turnover": 0.0})
    since = kpis.kpi_table(daily, window=20)
    since = since[since["scope"] == kpis.SINCE_START]["sharpe_ratio"].to_numpy()
    expected = [kpis.sharpe_ratio(r.iloc[: t + 1]) for t in range(len(r))]
    np.testing.assert_allclose(since, expected, rtol=1e-9, atol=1e-12)
