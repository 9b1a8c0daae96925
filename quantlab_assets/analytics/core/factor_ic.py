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
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import pandas as pd

from quantlab_assets.common.charts import render_png
from quantlab_assets.feature_store.core.labels import exit_column, label_column

DEFAULT_QUANTILES = 5
DEFAULT_MIN_NAMES = 10


@nb.njit(cache=True)
def _select(order: np.ndarray, m_in: int, keep: np.ndarray, out: np.ndarray) -> int:
    """The names of ``order[:m_in]`` where ``keep`` holds, in order, into ``out``; their count."""
    m = 0
    for i in range(m_in):
        k = order[i]
        if keep[k]:
            out[m] = k
            m += 1
    return m


@nb.njit(cache=True)
def _average_ranks(values: np.ndarray, idx: np.ndarray, m: int, out: np.ndarray) -> None:
    """Average ranks (1-based, ties averaged) of the names ``idx[:m]``, sorted by ``values``,
    written into ``out`` at their name index."""
    i = 0
    while i < m:
        j = i
        v = values[idx[i]]
        while j + 1 < m and values[idx[j + 1]] == v:
            j += 1
        rank = 0.5 * (i + j) + 1.0
        for k in range(i, j + 1):
            out[idx[k]] = rank
        i = j + 1


@nb.njit(cache=True)
def _pearson(a: np.ndarray, b: np.ndarray, idx: np.ndarray, n: int) -> float:
    """Pearson correlation of a and b over the names idx[:n] (two passes); NaN if either is constant."""
    if n < 2:
        return np.nan
    sa = 0.0
    sb = 0.0
    for i in range(n):
        sa += a[idx[i]]
        sb += b[idx[i]]
    ma, mb = sa / n, sb / n
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for i in range(n):
        da, db = a[idx[i]] - ma, b[idx[i]] - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    if saa == 0.0 or sbb == 0.0:
        return np.nan
    return sab / np.sqrt(saa * sbb)


@nb.njit(cache=True)
def _qcut_edges(values: np.ndarray, idx: np.ndarray, n: int, q: np.ndarray, out: np.ndarray) -> None:
    """numpy's 'linear' percentile of values[idx[:n]] (idx sorted by value) at fractions q, what
    pandas.qcut calls, with numpy's own interpolation so edges agree bit for bit."""
    for j in range(len(q)):
        vi = (n - 1) * q[j]
        if vi >= n - 1:
            out[j] = values[idx[n - 1]]
            continue
        if vi < 0:
            out[j] = values[idx[0]]
            continue
        lo = np.floor(vi)
        i = int(lo)
        a, b = values[idx[i]], values[idx[i + 1]]
        gamma = vi - lo
        diff = b - a
        out[j] = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma


@nb.njit(cache=True)
def _present(xt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Marks the names with a value in ``valid``; returns them sorted by value (stable order)."""
    N = len(xt)
    m = 0
    for i in range(N):
        valid[i] = not np.isnan(xt[i])
        m += valid[i]
    idx = np.empty(m, dtype=np.int64)
    vals = np.empty(m)
    k = 0
    for i in range(N):
        if valid[i]:
            idx[k] = i
            vals[k] = xt[i]
            k += 1
    return idx[np.argsort(vals)]


@nb.njit(cache=True)
def _quantile_means(
    xt: np.ndarray, rt: np.ndarray, xs: np.ndarray, n: int, edges: np.ndarray, qsum: np.ndarray, qcnt: np.ndarray, out
) -> None:
    """Mean return of each bin of ``edges`` (pandas.qcut's bins) over the names ``xs[:n]``,
    sorted by the feature, into ``out``; a bin without names stays NaN."""
    Q = len(out)
    qsum[:] = 0.0
    qcnt[:] = 0.0
    b = 0  # edges below the value (pandas' searchsorted side="left"), monotone along xs
    for i in range(n):
        v = xt[xs[i]]
        while b < Q and edges[b] < v:
            b += 1
        j = max(b, 1) - 1
        qsum[j] += rt[xs[i]]
        qcnt[j] += 1.0
    for j in range(Q):
        if qcnt[j] > 0:
            out[j] = qsum[j] / qcnt[j]


@nb.njit(cache=True)
def _rank_autocorr(xrank: np.ndarray, t: int, lag: int) -> float:
    """Pearson correlation of date ``t``'s ranks with those ``lag`` dates earlier, over the names
    ranked on both."""
    N = xrank.shape[1]
    both = np.empty(N, dtype=np.int64)
    n = 0
    for i in range(N):
        if not np.isnan(xrank[t, i]) and not np.isnan(xrank[t - lag, i]):
            both[n] = i
            n += 1
    return _pearson(xrank[t], xrank[t - lag], both, n)


# Serial on purpose: numba's cached parallel (parfor) functions segfaulted the demo chain when loaded
# from the cache in a process that had loaded other cached kernels (numba issues #4807, #10128;
# pynndescent dropped cache=True from its parallel functions for the same reason). A serial
# loop gives the same per-date figures bit for bit; the 2-core machines gain little from threads.
@nb.njit(cache=True)
def feature_ic_nb(
    x: np.ndarray,
    fwd: np.ndarray,
    fwd_order: np.ndarray,
    fwd_count: np.ndarray,
    qfrac: np.ndarray,
    min_names: int,
    lags: np.ndarray,
):
    """One feature's per-date figures.

    x: (T, N) feature; fwd: (H, T, N) known forward returns (NaN = unknown); fwd_order[h, t, :k]
    the names with a return sorted by it (k = fwd_count[h, t]); qfrac: the Q + 1 quantile
    fractions; lags[h]: the rank-autocorrelation lag of horizon h.
    Returns n (H, T) names used, ic, rank_ic (H, T), qmean (H, T, Q), autocorr (H, T).
    """
    H, T, N = fwd.shape
    Q = len(qfrac) - 1
    n_used = np.zeros((H, T), dtype=np.int64)
    ic = np.full((H, T), np.nan)
    ric = np.full((H, T), np.nan)
    qmean = np.full((H, T, Q), np.nan)
    xrank = np.full((T, N), np.nan)
    for t in range(T):
        xt = x[t]
        valid = np.empty(N, dtype=np.bool_)
        order = _present(xt, valid)
        m = len(order)
        _average_ranks(xt, order, m, xrank[t])
        keep = np.empty(N, dtype=np.bool_)
        xs = np.empty(N, dtype=np.int64)  # names used, sorted by the feature
        rs = np.empty(N, dtype=np.int64)  # names used, sorted by the return
        xr = np.empty(N)
        rr = np.empty(N)
        edges = np.empty(Q + 1)
        qsum = np.empty(Q)
        qcnt = np.empty(Q)
        for h in range(H):
            rt = fwd[h, t]
            for i in range(N):
                keep[i] = valid[i] and not np.isnan(rt[i])
            n = _select(order, m, keep, xs)
            n_used[h, t] = n
            if n < min_names:
                continue
            _select(fwd_order[h, t], fwd_count[h, t], keep, rs)
            _average_ranks(xt, xs, n, xr)
            _average_ranks(rt, rs, n, rr)
            ic[h, t] = _pearson(xt, rt, xs, n)
            ric[h, t] = _pearson(xr, rr, xs, n)
            _qcut_edges(xt, xs, n, qfrac, edges)
            _quantile_means(xt, rt, xs, n, edges, qsum, qcnt, qmean[h, t])
    autocorr = np.full((H, T), np.nan)
    for h in range(H):
        lag = lags[h]
        for t in range(lag, T):
            autocorr[h, t] = _rank_autocorr(xrank, t, lag)
    return n_used, ic, ric, qmean, autocorr


@nb.njit(cache=True)
def _returns_order(fwd: np.ndarray):
    H, T, N = fwd.shape
    order = np.zeros((H, T, N), dtype=np.int64)
    count = np.zeros((H, T), dtype=np.int64)
    for k in range(H * T):
        h, t = k // T, k % T
        idx = np.flatnonzero(~np.isnan(fwd[h, t]))
        count[h, t] = len(idx)
        order[h, t, : len(idx)] = idx[np.argsort(fwd[h, t][idx])]
    return order, count


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
    order, count = _returns_order(fwd)
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


def ic_decay_png(summary: pd.DataFrame, top: int = 8) -> bytes:
    """Mean rank IC against the horizon for the ``top`` features of ``ranked``."""
    return render_png(_ic_decay, summary, top, dpi=80)


def _ic_decay(plt, summary: pd.DataFrame, top: int):
    best = list(dict.fromkeys(ranked(summary)["feature"]))[:top]
    overall = summary[summary["period"] == "all"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for name in best:
        rows = overall[overall["feature"] == name].sort_values("horizon")
        ax.plot(rows["horizon"], rows["rank_ic_mean"], marker="o", lw=1.2, label=name)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("label horizon (sessions)")
    ax.set_ylabel("mean rank IC")
    ax.set_xscale("log")
    ax.set_xticks(sorted(overall["horizon"].unique()), [str(h) for h in sorted(overall["horizon"].unique())])
    ax.set_title(f"IC decay over horizons: top {len(best)} features by |rank ICIR|")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def feature_ic_markdown(summary: pd.DataFrame, as_of, start, chart: str | None, rows: int = 45) -> str:
    """``reports/feature_ic.md``: the ranked overall table, the skipped-date counts, the convention."""
    from quantlab_assets.common.artifacts import markdown_table

    table = ranked(summary)
    shown = table[
        [
            "feature",
            "horizon",
            "dates",
            "rank_ic_mean",
            "rank_ic_ir",
            "rank_ic_t",
            "rank_ic_positive",
            "ic_mean",
            "ic_ir",
            *[c for c in table.columns if c.startswith("q") and c[1:].isdigit()],
            "top_minus_bottom",
            "rank_autocorr",
            "dates_without_labels",
            "skipped_few_names",
            "skipped_constant",
        ]
    ]
    skipped = int(table["skipped_few_names"].sum() + table["skipped_constant"].sum())
    lines = [
        f"# Feature IC as of {pd.Timestamp(as_of).date()}",
        "",
        f"Decision dates {pd.Timestamp(start).date()} … {pd.Timestamp(as_of).date()}; a label counts only if "
        f"its exit bar was known at the close of {pd.Timestamp(as_of).date()} (exit_date_h <= as-of date).",
        f"Ranked by |rank-IC ICIR|. (feature, horizon, date) cells skipped: {skipped} "
        "(fewer names than the minimum, or a constant cross-section); dates whose labels were not yet "
        "known are counted per row.",
        "",
    ]
    if chart:
        lines += [f"![IC decay]({chart})", ""]
    lines += [markdown_table(shown, max_rows=rows), ""]
    yearly = summary[summary["period"] != "all"]
    if len(yearly) and len(table):
        top = table.head(10)[["feature", "horizon"]]
        by_year = yearly.merge(top, on=["feature", "horizon"]).pivot_table(
            index=["feature", "horizon"], columns="period", values="rank_ic_mean", sort=False
        )
        by_year = by_year.reindex(pd.MultiIndex.from_frame(top)).reset_index()
        lines += [
            "## Mean rank IC by year (top 10 rows above)",
            "",
            markdown_table(by_year, max_rows=10),
            "",
            "Every row and year with all statistics: `feature_ic.csv`.",
            "",
        ]
    return "\n".join(lines)
