"""``factor_ic``'s statistics: the per-date panels (``factor_panels``, through the kernels of
``factor_ic_kernels``), their summaries overall and by year (``summarise``), the ranking
(``ranked``). ``factor_ic`` documents the definitions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.factor_ic_kernels import feature_ic_nb, returns_order
from quantlab_assets.feature_store.core.labels import exit_column, label_column

DEFAULT_QUANTILES = 5
DEFAULT_MIN_NAMES = 10


def quantile_fractions(quantiles: int) -> np.ndarray:
    """The fractions pandas.qcut hands numpy for ``quantiles`` bins, as numpy receives them
    (pandas passes percent, numpy divides by 100: kept so the edges agree bit for bit)."""
    if isinstance(quantiles, bool) or not isinstance(quantiles, (int, np.integer)) or quantiles < 2:
        raise ValueError(f"quantiles must be an integer >= 2, got {quantiles!r}")
    return np.true_divide(np.linspace(0, 1, quantiles + 1) * 100.0, 100)


@dataclass(frozen=True)
class FactorPanels:
    """Per-date figures: arrays (F, H, T[, Q]) over ``features`` x ``horizons`` x ``dates``."""

    features: tuple[str, ...]
    horizons: tuple[int, ...]
    dates: pd.DatetimeIndex
    n_names: np.ndarray
    ic: np.ndarray
    rank_ic: np.ndarray
    quantile_mean: np.ndarray
    rank_autocorr: np.ndarray
    min_names: int


def cells(frame: pd.DataFrame, dates: pd.DatetimeIndex, symbols: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of a long frame in a (dates x symbols) grid: (rows kept, date index, symbol index)."""
    ti = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
    si = symbols.get_indexer(frame["symbol"])
    ok = (ti >= 0) & (si >= 0)
    return ok, ti[ok], si[ok]


def wide(values: np.ndarray, grid: tuple, shape: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """(T, N) float64 array of a long frame's column values on ``cells``' grid (NaN where no row);
    ``out``: an array of that shape to fill instead of a new one (one buffer for every feature)."""
    ok, ti, si = grid
    if out is None:
        out = np.full(shape, np.nan)
    else:
        out.fill(np.nan)
    out[ti, si] = np.asarray(values, dtype=np.float64)[ok]
    return out


def known_returns(labels: pd.DataFrame, horizons, as_of, dates: pd.DatetimeIndex, symbols: pd.Index) -> np.ndarray:
    """(H, T, N) forward returns known at the close of ``as_of`` (exit_date_h <= as_of), NaN otherwise."""
    cutoff = pd.Timestamp(as_of)
    out = np.empty((len(horizons), len(dates), len(symbols)))
    grid = cells(labels, dates, symbols)
    for k, h in enumerate(horizons):
        known = (pd.to_datetime(labels[exit_column(h)]) <= cutoff).to_numpy()
        values = np.where(known, labels[label_column(h)].to_numpy(np.float64), np.nan)
        out[k] = wide(values, grid, (len(dates), len(symbols)))
    return out


def factor_panels(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    feature_names,
    horizons,
    as_of,
    quantiles: int = DEFAULT_QUANTILES,
    min_names: int = DEFAULT_MIN_NAMES,
) -> FactorPanels:
    """Per-date IC, rank IC, quantile returns and rank autocorrelation of every feature and
    horizon, from long ``features`` (date, symbol, feature columns) and ``labels`` (date, symbol,
    fwd_ret_h, exit_date_h) rows; only dates <= ``as_of`` and labels known by then."""
    missing = [c for c in ("date", "symbol", *feature_names) if c not in features.columns]
    missing += [c for h in horizons for c in (label_column(h), exit_column(h)) if c not in labels.columns]
    if missing:
        raise ValueError(f"factor_panels: missing columns {missing}")
    if min_names < 2:
        raise ValueError(f"min_names must be >= 2 (a correlation needs two names), got {min_names}")
    cutoff = pd.Timestamp(as_of)
    known = (pd.to_datetime(features["date"]) <= cutoff).to_numpy()
    feats = features if known.all() else features[known]  # a backfill's as-of is its last date: no copy
    dates = pd.DatetimeIndex(sorted(pd.to_datetime(feats["date"]).unique()))
    symbols = pd.Index(sorted(feats["symbol"].unique()))
    fwd = known_returns(labels, horizons, cutoff, dates, symbols)
    order, count = returns_order(fwd)
    qfrac = quantile_fractions(quantiles)
    lags = np.asarray(horizons, dtype=np.int64)
    F, H, T = len(feature_names), len(horizons), len(dates)
    n_names = np.zeros((F, H, T), dtype=np.int64)
    ic, ric, ac = (np.full((F, H, T), np.nan) for _ in range(3))
    qm = np.full((F, H, T, quantiles), np.nan)
    grid = cells(feats, dates, symbols)
    x = np.empty((T, len(symbols)))
    for f, name in enumerate(feature_names):
        wide(feats[name].to_numpy(np.float64), grid, (T, len(symbols)), out=x)
        n_names[f], ic[f], ric[f], qm[f], ac[f] = feature_ic_nb(x, fwd, order, count, qfrac, int(min_names), lags)
    return FactorPanels(tuple(feature_names), tuple(horizons), dates, n_names, ic, ric, qm, ac, int(min_names))


def _stats(values: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Mean, std, ICIR, t-stat and share > 0 over the last axis, NaN-aware."""
    ok = ~np.isnan(values)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(values, -1) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, values - mean[..., None], 0.0)
        std = np.where(n > 1, np.sqrt((dev * dev).sum(-1) / np.maximum(n - 1, 1)), np.nan)
        ir = mean / std
        return {
            f"{prefix}_mean": mean,
            f"{prefix}_std": std,
            f"{prefix}_ir": ir,
            f"{prefix}_t": ir * np.sqrt(n),
            f"{prefix}_positive": np.where(n > 0, (values > 0).sum(-1) / np.maximum(n, 1), np.nan),
        }


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    ok = ~np.isnan(values)
    n = ok.sum(axis)
    return np.where(n > 0, np.where(ok, values, 0.0).sum(axis) / np.maximum(n, 1), np.nan)


def summarise(panels: FactorPanels, by_year: bool = True) -> pd.DataFrame:
    """One row per (feature, horizon, period): period ``all`` and each calendar year of the
    decision dates. Columns: counts of dates used / without labels / skipped, IC and rank-IC
    statistics, mean forward return per quantile (q1 = lowest feature values), the top-minus-bottom
    spread (mean over dates of q_top - q1) and the mean rank autocorrelation."""
    years = panels.dates.year.to_numpy()
    periods = [("all", np.ones(len(panels.dates), dtype=bool))]
    if by_year:
        periods += [(str(y), years == y) for y in np.unique(years)]
    Q = panels.quantile_mean.shape[-1]
    F, H = len(panels.features), len(panels.horizons)
    blocks = []
    for label, sel in periods:
        n = panels.n_names[..., sel]
        ic, ric = panels.ic[..., sel], panels.rank_ic[..., sel]
        qm = panels.quantile_mean[:, :, sel, :]
        cols: dict[str, np.ndarray] = {
            "dates": (~np.isnan(ric)).sum(-1),
            "dates_without_labels": (n == 0).sum(-1),
            "skipped_few_names": ((n > 0) & (n < panels.min_names)).sum(-1),
            "skipped_constant": ((n >= panels.min_names) & np.isnan(ric)).sum(-1),
            **_stats(ic, "ic"),
            **_stats(ric, "rank_ic"),
        }
        for j in range(Q):
            cols[f"q{j + 1}"] = _nanmean(qm[..., j], -1)
        cols["top_minus_bottom"] = _nanmean(qm[..., Q - 1] - qm[..., 0], -1)
        cols["rank_autocorr"] = _nanmean(panels.rank_autocorr[..., sel], -1)
        block = pd.DataFrame({k: np.asarray(v).reshape(F * H) for k, v in cols.items()})
        block.insert(0, "period", label)
        block.insert(0, "horizon", np.tile(np.asarray(panels.horizons), F))
        block.insert(0, "feature", np.repeat(np.asarray(panels.features, dtype=object), H))
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def factor_ic(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    feature_names,
    horizons,
    as_of,
    quantiles: int = DEFAULT_QUANTILES,
    min_names: int = DEFAULT_MIN_NAMES,
) -> pd.DataFrame:
    """``summarise(factor_panels(...))``: the feature_ic table as of ``as_of``."""
    return summarise(factor_panels(features, labels, feature_names, horizons, as_of, quantiles, min_names))


def ranked(summary: pd.DataFrame) -> pd.DataFrame:
    """Overall rows ranked by |rank-IC ICIR| (the most reliable predictors first, either sign)."""
    overall = summary[summary["period"] == "all"].copy()
    overall["abs_rank_ic_ir"] = overall["rank_ic_ir"].abs()
    return (
        overall.sort_values("abs_rank_ic_ir", ascending=False, na_position="last", kind="stable")
        .drop(columns=["period", "abs_rank_ic_ir"])
        .reset_index(drop=True)
    )
