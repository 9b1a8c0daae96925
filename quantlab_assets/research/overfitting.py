"""Selection-bias statistics for a sweep: how much of the best variant's in-sample Sharpe ratio
survives having tried many variants.

* ``rank_correlation``: Spearman's rank correlation of in-sample vs out-of-sample Sharpe across
  variants (near 0 or negative: the in-sample ranking says nothing about what follows).
* ``deflated_sharpe_ratio``: Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe
  Ratio: Correcting for Selection Bias, Backtest Overfitting, and Non-Normality", Journal of
  Portfolio Management 40(5), 94-107. The probability that the best variant's true Sharpe ratio
  is above the one expected from the best of N unskilled trials:

      SR0 = sqrt(V[SR_n]) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))
      DSR = Z( (SR* - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR* + (kurt - 1) / 4 * SR*^2) )

  with Z the standard normal CDF, g = 0.5772... (Euler-Mascheroni), N the number of variants,
  V[SR_n] the variance of their (per-period) Sharpe ratios, SR* the best one, T its number of
  returns, skew and kurt (not excess) the moments of its returns. All Sharpe ratios here are per
  period (daily), not annualized, as in the paper's equations.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TypedDict

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core import kpis

EULER_GAMMA = 0.5772156649015329
_Z = NormalDist()


def per_period_sharpe(returns) -> float:
    """mean / standard deviation (ddof=1) of the returns; NaN with fewer than 2 or no dispersion
    (``kpis.sharpe_moments``: the estimator the tearsheet's probabilistic Sharpe ratio uses)."""
    return kpis.sharpe_moments(returns).sharpe


def moments(returns) -> tuple[float, float]:
    """Skewness and kurtosis (not excess) with population moments, as in the paper
    (``kpis.sharpe_moments``)."""
    m = kpis.sharpe_moments(returns)
    return m.skew, m.kurtosis


def expected_max_sharpe(variance: float, n_trials: int) -> float:
    """SR0: the expected maximum Sharpe ratio of ``n_trials`` unskilled trials whose Sharpe
    ratios have variance ``variance`` (the paper's equation for E[max SR_n])."""
    if n_trials < 2:
        return 0.0
    return math.sqrt(variance) * (
        (1 - EULER_GAMMA) * _Z.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _Z.inv_cdf(1 - 1 / (n_trials * math.e))
    )


def deflated_sharpe_ratio(
    best_sharpe: float, n_observations: int, skew: float, kurt: float, trial_variance: float, n_trials: int
) -> float:
    """DSR of a Sharpe ratio selected as the best of ``n_trials`` (all per period): the
    probabilistic Sharpe ratio against SR0 (``kpis.probabilistic_sharpe_from_moments``), so one
    trial gives the tearsheet's probabilistic Sharpe ratio of the same returns."""
    sr0 = expected_max_sharpe(trial_variance, n_trials)
    return kpis.probabilistic_sharpe_from_moments(best_sharpe, n_observations, skew, kurt, sr0)


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation (average ranks for ties) over the pairs where both exist."""
    frame = pd.DataFrame({"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float)}).dropna()
    if len(frame) < 3:
        return float("nan")
    return float(frame["a"].rank().corr(frame["b"].rank()))


class _SelectionStatistics(TypedDict):
    best: str  # "" when no variant has an in-sample Sharpe ratio
    dsr: float
    sr0: float
    rank_corr: float
    trials: int  # distinct in-sample return series among the variants with a Sharpe ratio (the DSR's N)


def distinct_series(is_returns: dict[str, np.ndarray]) -> list[str]:
    """The variants whose in-sample returns differ from every earlier one's (bit for bit, NaN
    equal to NaN): variants that differ only in a parameter that never binds (a ``max_turnover``
    above any turnover) are one trial, not two, for the deflated Sharpe ratio."""
    seen: set[bytes] = set()
    out = []
    for name, r in is_returns.items():
        key = np.asarray(r, dtype=np.float64).tobytes()
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


class SelectionStatistics(_SelectionStatistics, total=False):
    best_is_sharpe_daily: float  # absent when ``best`` is ""


def selection_statistics(is_returns: dict[str, np.ndarray], oos_sharpe: dict[str, float]) -> SelectionStatistics:
    """For one in-sample / out-of-sample split: the best in-sample variant, its DSR, and the
    rank correlation of in-sample vs out-of-sample Sharpe across the variants."""
    names = list(is_returns)
    srs = np.array([per_period_sharpe(is_returns[n]) for n in names])
    ok = ~np.isnan(srs)
    if not ok.any():
        return {"best": "", "dsr": float("nan"), "sr0": float("nan"), "rank_corr": float("nan"), "trials": 0}
    best = names[int(np.nanargmax(srs))]
    best_moments = kpis.sharpe_moments(is_returns[best])
    # The trials are the distinct return series: identical variants would shrink the variance of
    # the Sharpe ratios and inflate N, both wrongly.
    distinct = set(distinct_series(is_returns))
    keep = ok & np.array([n in distinct for n in names])
    trials = int(keep.sum())
    var = float(np.var(srs[keep], ddof=1)) if trials > 1 else 0.0
    return {
        "best": best,
        "best_is_sharpe_daily": float(np.nanmax(srs)),
        "sr0": expected_max_sharpe(var, trials),
        "dsr": deflated_sharpe_ratio(
            float(np.nanmax(srs)), best_moments.n, best_moments.skew, best_moments.kurtosis, var, trials
        ),
        "trials": trials,
        "rank_corr": rank_correlation(
            [per_period_sharpe(is_returns[n]) for n in names], [oos_sharpe[n] for n in names]
        ),
    }
