"""The numba kernels of ``factor_ic``: one feature's per-date IC, rank IC, quantile means and rank
autocorrelation over names held in plain arrays (``factor_ic`` documents the definitions)."""

from __future__ import annotations

import numba as nb
import numpy as np


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
def returns_order(fwd: np.ndarray):
    H, T, N = fwd.shape
    order = np.zeros((H, T, N), dtype=np.int64)
    count = np.zeros((H, T), dtype=np.int64)
    for k in range(H * T):
        h, t = k // T, k % T
        idx = np.flatnonzero(~np.isnan(fwd[h, t]))
        count[h, t] = len(idx)
        order[h, t, : len(idx)] = idx[np.argsort(fwd[h, t][idx])]
    return order, count
