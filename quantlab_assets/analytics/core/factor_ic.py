"""Which features predict returns: information coefficients, quantile returns and factor turnover
per feature and label horizon (the figures of alphalens), overall and by year.

Per decision date D, feature f and horizon h, over the names that have both a value of f and a
known label ``fwd_ret_h`` on D:

* ``ic``: Pearson correlation of f and the forward return; ``rank_ic``: Spearman (Pearson of
  average ranks, ties averaged), which is what alphalens calls the IC.
* quantile mean forward returns: names cut into ``quantiles`` bins by f exactly as
  ``pandas.qcut`` does (linear-interpolated edges, bins closed on the right, the lowest value in
  bin 1), the mean forward return of each bin, and the top-minus-bottom spread.
* ``rank_autocorr``: Pearson correlation of f's cross-sectional ranks on D and on the session
  ``h`` sessions earlier (names present on both), alphalens' factor rank autocorrelation; low
  values mean high turnover of a portfolio built on f.

Summaries over dates: mean, standard deviation (ddof 1), ICIR = mean / std, t-stat =
ICIR * sqrt(dates), share of dates with IC > 0 (NaN dates excluded). Overlapping horizons
(h > 1) make consecutive ICs dependent, so their t-stat overstates significance; it is not
Newey-West corrected.

Dates are never silently dropped: a (feature, horizon, date) with no known label is counted in
``dates_without_labels``, one with fewer than ``min_names`` names in ``skipped_few_names``, one
whose feature or return is constant across names (correlation undefined) in
``skipped_constant``.

No leakage: a label counts only if it was known at the close of the report's date ``as_of``
(``exit_date_h <= as_of``: its exit bar, at the open of D+1+h, was ingested by then). Labels
the warehouse holds for later exits (a report re-built for an earlier date) are masked.

The module is the API; the code is split by concern: ``factor_ic_kernels`` (numba, per date),
``factor_ic_stats`` (panels, summaries, ranking), ``factor_ic_report`` (markdown, chart). Every
public name stays importable from here.
"""

from __future__ import annotations

from quantlab_assets.analytics.core.factor_ic_kernels import feature_ic_nb
from quantlab_assets.analytics.core.factor_ic_report import feature_ic_markdown, ic_decay_png
from quantlab_assets.analytics.core.factor_ic_stats import (
    DEFAULT_MIN_NAMES,
    DEFAULT_QUANTILES,
    FactorPanels,
    cells,
    factor_ic,
    factor_panels,
    known_returns,
    quantile_fractions,
    ranked,
    summarise,
    wide,
)

__all__ = [
    "DEFAULT_MIN_NAMES",
    "DEFAULT_QUANTILES",
    "FactorPanels",
    "cells",
    "factor_ic",
    "factor_panels",
    "feature_ic_markdown",
    "feature_ic_nb",
    "ic_decay_png",
    "known_returns",
    "quantile_fractions",
    "ranked",
    "summarise",
    "wide",
]
