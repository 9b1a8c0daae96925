"""NumPy kernels for features: 2-D arrays, time along axis 0, one column per symbol.

Every value a kernel produces for row ``t`` is a function of rows ``t - window + 1 .. t``
only, computed so that the float result does not depend on where the array starts. That
is what makes a feature computed one date at a time bit-identical to a batch computation:

- Inputs are quantised to int64 fixed point (``q = round(log(x) * SCALE)``), so window sums
  are exact integers taken as differences of an int64 cumulative sum. Overflow of the
  cumulative sum is harmless: numpy int64 arithmetic wraps modulo 2**64, and a difference
  (or any ring expression such as ``w * sum(x**2) - sum(x)**2``) is exact whenever its true
  value fits in int64. Floats appear only at the end, elementwise, from exact integers.
- Rolling max/min are exact whatever the algorithm.
- EMAs are truncated to a fixed number of lags and summed in a fixed order.
- Cross-sectional transforms use one date's row only.

Validity travels next to the integer values as a boolean array: a window containing an
invalid (missing) value is invalid; values at invalid positions are ignored. Kernels return
NaN where the window is incomplete or invalid, and never modify their inputs.

Any (T, N) array works; cumulative sums down axis 0 are fastest on narrow blocks of columns,
which is how ``features.compute_features`` calls them.
"""

from __future__ import annotations

import math

import numpy as np

SCALE = 10_000_000
"""Fixed-point scale of quantised logs: 1e-7 in log units, about 1e-7 relative in price."""

EMA_TOL = 1e-4
"""A truncated EMA keeps lags until the dropped weight falls below this fraction."""

WILDER_TOL = 1e-7
"""Wilder's smoothing (RSI, ATR) keeps lags until the dropped weight falls below this: a tenth
of the 1e-6 the standard indicators are matched to (K = 218 lags for 14 sessions)."""


class WindowOverflow(OverflowError):
    """A window's int64 sum of squares overflowed at array position (``row``, ``col``); the
    caller knows which symbol and date that is (``features`` names them)."""

    def __init__(self, window: int, row: int, col: int):
        super().__init__(f"window sum of squares overflows int64 (window {window}, row {row}, column {col})")
        self.window, self.row, self.col = window, row, col


# --------------------------------------------------------------------------- quantisation


def quantize_log(x: np.ndarray, scale: int = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point logs of positive values.

    Parameters
    ----------
    x : ndarray of float
        Positive values (prices, volumes); NaN, inf and values <= 0 are invalid.
    scale : int
        Fixed-point scale.

    Returns
    -------
    q : ndarray of int64
        ``round(log(x) * scale)``; 0 where invalid.
    valid : ndarray of bool
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x) & (x > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(valid, x, 1.0))
    return np.rint(logs * scale).astype(np.int64), valid


def set_nan(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Put NaN where ``ok`` is False, in place, and return ``values``.

    For arrays a kernel has just created (this is how kernels finish without another
    full-size temporary); never call it on a caller's array.
    """
    np.copyto(values, np.nan, where=~ok)
    return values


def lag(q: np.ndarray, valid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Values ``k`` rows earlier: ``out[t] = q[t - k]``; the first ``k`` rows are invalid."""
    out = np.zeros_like(q)
    ok = np.zeros_like(valid)
    if k < len(q):
        out[k:] = q[: len(q) - k]
        ok[k:] = valid[: len(q) - k]
    return out, ok


def diff(q: np.ndarray, valid: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``q[t] - q[t - k]``, valid where both ends are."""
    prev, prev_ok = lag(q, valid, k)
    return q - prev, valid & prev_ok


# --------------------------------------------------------------------------- rolling windows


def _rolling_extreme(q: np.ndarray, window: int, op) -> np.ndarray:
    # op over each window; rows before window - 1 hold partial results (callers mask them).
    # Doubling: after the loop out[t] = op(q[t - span + 1 .. t]) with span the largest power
    # of two <= window; two overlapping spans then cover the window exactly.
    out = q.copy()
    span = 1
    while span * 2 <= window:
        out[span:] = op(out[span:], out[:-span])
        span *= 2
    rest = window - span
    if rest:
        out[rest:] = op(out[rest:], out[:-rest])
    return out


def rolling_extreme_float(x: np.ndarray, window: int, op) -> np.ndarray:
    """``op`` (np.maximum or np.minimum) over the last ``window`` rows of floats: exact, NaN
    where the window is incomplete or holds a NaN (np.maximum/np.minimum propagate it)."""
    out = _rolling_extreme(np.asarray(x, dtype=np.float64), window, op)
    out[: window - 1] = np.nan
    return out


def window_valid(valid: np.ndarray, window: int) -> np.ndarray:
    """True where all ``window`` values ending at row ``t`` are valid (False in the first rows)."""
    ok = _rolling_extreme(np.asarray(valid, dtype=bool), window, np.logical_and)
    ok[: window - 1] = False
    return ok


def _rolling_sum(q: np.ndarray, window: int) -> np.ndarray:
    """Exact int64 window sums; rows before ``window - 1`` hold partial sums (callers mask them)."""
    cs = np.cumsum(q, axis=0, dtype=np.int64)
    out = cs.copy()
    if window < len(q):
        np.subtract(cs[window:], cs[: len(q) - window], out=out[window:])
    return out


def rolling_sum_exact(q: np.ndarray, valid: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer sums of ``q`` over ``window`` rows.

    Returns
    -------
    sums : ndarray of int64
        Meaningful only where ``ok``.
    ok : ndarray of bool
        The window is complete and every value in it valid.
    """
    return _rolling_sum(np.where(valid, q, 0), window), window_valid(valid, window)


def rolling_mean(q: np.ndarray, valid: np.ndarray, window: int, scale: int = SCALE) -> np.ndarray:
    """Mean of ``q / scale`` over ``window`` rows; NaN where the window is incomplete."""
    sums, ok = rolling_sum_exact(q, valid, window)
    return set_nan(sums / (window * scale), ok)


def centered_sum_squares(q: np.ndarray, valid: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ``M = w * sum(q**2) - sum(q)**2 = w * sum((q - mean)**2)`` over each window.

    The intermediate sums may wrap around int64; ``M`` is exact while its true value fits,
    i.e. while the window's RMS deviation is below ``sqrt(2**63) / (w * scale)`` log units
    (1.2 for w = 252, 15 for w = 20 at the default scale). A negative ``M`` can only come
    from overflow and raises.

    Returns
    -------
    m : ndarray of int64
    sums : ndarray of int64
        ``sum(q)`` over the window.
    ok : ndarray of bool
    """
    x = np.where(valid, q, 0)
    sums = _rolling_sum(x, window)
    squares = _rolling_sum(x * x, window)
    m = window * squares - sums * sums
    ok = window_valid(valid, window)
    # A wrapped M is not always negative: M's float estimate (shift-invariant, so on values centred
    # per column; accurate to far less than the margin) says when the true value leaves int64.
    with np.errstate(invalid="ignore"):
        centre = np.nanmean(np.where(valid, q, np.nan), axis=0) if q.size else 0.0
    y = np.where(valid, q - np.nan_to_num(centre), 0.0)
    m_float = window * _rolling_sum_float(y * y, window) - _rolling_sum_float(y, window) ** 2
    overflow = np.logical_and((m < 0) | (m_float > _M_LIMIT), ok)
    if overflow.any():
        row, col = np.argwhere(overflow)[0]
        raise WindowOverflow(window, int(row), int(col))
    return m, sums, ok


_M_LIMIT = 9.0e18  # below 2**63 = 9.22e18 by far more than the float estimate's error


def _rolling_sum_float(x: np.ndarray, window: int) -> np.ndarray:
    cs = np.cumsum(x, axis=0, dtype=np.float64)
    out = cs.copy()
    out[window:] -= cs[:-window]
    return out


def rolling_std(q: np.ndarray, valid: np.ndarray, window: int, ddof: int = 1, scale: int = SCALE) -> np.ndarray:
    """Standard deviation of ``q / scale`` over ``window`` rows (``ddof`` as in numpy)."""
    if window <= ddof:
        raise ValueError(f"window {window} must exceed ddof {ddof}")
    m, _, ok = centered_sum_squares(q, valid, window)
    std = np.sqrt(m / (window * (window - ddof)))
    std /= scale
    return set_nan(std, ok)


def rolling_max(q: np.ndarray, valid: np.ndarray, window: int, scale: int = SCALE) -> np.ndarray:
    """Maximum of ``q / scale`` over ``window`` rows; NaN where the window is incomplete."""
    ok = window_valid(valid, window)
    return set_nan(_rolling_extreme(q, window, np.maximum) / scale, ok)


def rolling_min(q: np.ndarray, valid: np.ndarray, window: int, scale: int = SCALE) -> np.ndarray:
    """Minimum of ``q / scale`` over ``window`` rows; NaN where the window is incomplete."""
    ok = window_valid(valid, window)
    return set_nan(_rolling_extreme(q, window, np.minimum) / scale, ok)


def _comoments(y: np.ndarray, x: np.ndarray, valid: np.ndarray, window: int):
    # Exact centred co-moments: c = w*sum(xy) - sum(x)sum(y), vx, vy likewise.
    vx, sx, ok = centered_sum_squares(x, valid, window)
    vy, sy, _ = centered_sum_squares(y, valid, window)
    c = window * _rolling_sum(np.where(valid, x * y, 0), window) - sx * sy
    return c, vx, vy, ok


def rolling_beta(y: np.ndarray, x: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of ``y`` on ``x`` over ``window`` rows: ``cov(x, y) / var(x)``.

    ``valid`` marks rows where both are valid. NaN where ``x`` does not vary.
    """
    c, vx, _, ok = _comoments(y, x, valid, window)
    ok &= vx != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return set_nan(c / vx, ok)


def rolling_corr(y: np.ndarray, x: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of ``y`` and ``x`` over ``window`` rows; NaN where either is flat."""
    c, vx, vy, ok = _comoments(y, x, valid, window)
    ok &= (vx != 0) & (vy != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return set_nan(c / np.sqrt(vx.astype(np.float64) * vy), ok)


def wilder_rsi(change: np.ndarray, window: int, tol: float = WILDER_TOL) -> np.ndarray:
    """Wilder's RSI (TA-Lib, ``ta``) of price changes ``change`` (float, NaN = missing), 0..100.

    ``RSI = 100 * G / (G + L)`` with ``G``/``L`` Wilder's smoothing (``alpha = 1 / window``) of
    gains and losses, truncated to the ``K`` lags of ``wilder_weights`` (the normalisation
    cancels in the ratio). NaN in the first ``K - 1`` rows, where a change in the window is
    missing, and where nothing moved (0/0).
    """
    w = wilder_weights(window, tol)
    gains = geometric_window_sum(np.maximum(change, 0.0), w)  # NaN stays NaN through maximum
    losses = geometric_window_sum(np.maximum(-change, 0.0), w)
    total = gains + losses
    with np.errstate(divide="ignore", invalid="ignore"):
        return set_nan(100.0 * gains / total, total != 0)


def rsi(r: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Cutler's RSI (simple averages, not Wilder's smoothing) of changes ``r``, 0..100.

    ``RSI = 100 * G / (G + L)`` with ``G``/``L`` the sums of gains/losses over ``window``
    changes; NaN where nothing moved (0/0 is undefined, not 50).
    """
    gains, ok = rolling_sum_exact(np.maximum(r, 0), valid, window)
    losses, _ = rolling_sum_exact(np.maximum(-r, 0), valid, window)
    total = gains + losses
    ok &= total != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return set_nan(100.0 * gains / total, ok)


# --------------------------------------------------------------------------- EMA


def ema_weights(span: int, tol: float = EMA_TOL) -> np.ndarray:
    """Normalised weights of a truncated EMA, lag 0 first.

    With ``alpha = 2 / (span + 1)``, ``w_k ∝ (1 - alpha)**k`` for ``k < K``, where ``K`` is the
    smallest number of lags whose dropped weight ``(1 - alpha)**K`` is below ``tol``.
    """
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    decay = 1.0 - 2.0 / (span + 1)
    lags = 1 if decay == 0.0 else math.floor(math.log(tol) / math.log(decay)) + 1
    w = decay ** np.arange(lags, dtype=np.float64)
    return w / w.sum()


def _block_length(lags: int) -> int:
    # The block length B that minimises the shifted passes: B + lags // B + lags % B.
    return min(range(1, lags + 1), key=lambda b: (b + lags // b + lags % b, b))


def _add_lagged(acc: np.ndarray, src: np.ndarray, coefs: np.ndarray, step: int, first: int) -> None:
    """``acc[i] += sum_m coefs[m] * src[first + i - m * step]``, added in order m = 0, 1, ..."""
    term = np.empty_like(acc)
    for m, coef in enumerate(coefs):
        lo = first - m * step
        np.multiply(src[lo : lo + len(acc)], coef, out=term)
        np.add(acc, term, out=acc)


def truncated_ema(x: np.ndarray, span: int, tol: float = EMA_TOL) -> np.ndarray:
    """Truncated EMA: ``out[t] = sum_k w[k] * x[t - k]`` over the ``K`` lags of ``ema_weights``.
    NaN in the first ``K - 1`` rows and wherever a NaN is in the window."""
    return geometric_window_sum(x, ema_weights(span, tol))


def wilder_weights(window: int, tol: float = WILDER_TOL) -> np.ndarray:
    """Normalised weights of Wilder's smoothing over ``window`` (``alpha = 1 / window``,
    the EMA of span ``2 window - 1``), truncated where the dropped weight falls below ``tol``."""
    return ema_weights(2 * window - 1, tol)


def rolling_mean_float(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` rows of floats, summed in a fixed order (bit-identical
    wherever the array starts; NaN where the window is incomplete or holds a NaN)."""
    return geometric_window_sum(x, np.full(window, 1.0 / window))


def rolling_pop_std_float(x: np.ndarray, mean: np.ndarray, window: int) -> np.ndarray:
    """Population std of the last ``window`` rows around ``mean`` (the same rows' mean), as
    ``sqrt(sum((x - mean)**2) / window)`` summed lag by lag in a fixed order (no cancellation)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    rows = len(x) - window + 1
    if rows <= 0:
        return out
    acc = np.zeros((rows,) + x.shape[1:])
    dev = np.empty_like(acc)
    centre = mean[window - 1 :]
    for k in range(window):
        np.subtract(x[window - 1 - k : len(x) - k], centre, out=dev)
        np.multiply(dev, dev, out=dev)
        np.add(acc, dev, out=acc)
    out[window - 1 :] = np.sqrt(acc / window)
    return out


def geometric_window_sum(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``out[t] = sum_k w[k] * x[t - k]`` for weights with a constant ratio (``w[k] = w[0] r**k``:
    an EMA's, or equal weights).

    Because ``w[b*B + j] = w[j] * w[b*B] / w[0]``, the sum is taken in two fixed-order
    shift-and-add stages: block sums ``P[t] = sum_{j<B} w[j] x[t - j]``, then
    ``sum_b (w[b*B] / w[0]) P[t - b*B]`` plus the ``K mod B`` remaining lags directly: about
    ``2 sqrt(K)`` passes instead of ``K``. Each element sees the same operations wherever it
    sits in the array. NaN in the first ``K - 1`` rows and wherever a NaN is in the window.
    """
    x = np.asarray(x, dtype=np.float64)
    lags, rows = len(w), len(x)
    out = np.full(x.shape, np.nan)
    if rows < lags:
        return out
    block = _block_length(lags)
    n_blocks = lags // block
    partial = np.zeros((rows - block + 1,) + x.shape[1:])  # partial[i] = P[i + block - 1]
    _add_lagged(partial, x, w[:block], 1, block - 1)
    acc = np.zeros((rows - lags + 1,) + x.shape[1:])
    _add_lagged(acc, partial, w[: n_blocks * block : block] / w[0], block, lags - block)
    _add_lagged(acc, x, w[n_blocks * block :], 1, lags - 1 - n_blocks * block)
    out[lags - 1 :] = acc
    return out


# --------------------------------------------------------------------------- cross-section


def cs_mean_exact(q: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (date): the mean of the valid values, rounded back to fixed point.

    The row sum is an exact integer, so the mean cannot depend on the order of the symbols.

    Returns
    -------
    mean : ndarray of int64, shape (T,)
    ok : ndarray of bool, shape (T,)
        The row has at least one valid value.
    """
    total = np.where(valid, q, 0).sum(axis=1)
    count = valid.sum(axis=1)
    ok = count > 0
    mean = np.zeros(len(q), dtype=np.int64)
    mean[ok] = np.rint(total[ok] / count[ok])
    return mean, ok


def cs_zscore(x: np.ndarray) -> np.ndarray:
    """Per row (date): ``(x - mean) / std`` over the row's finite values (population std).

    NaN for non-finite inputs and for rows with fewer than two values or no dispersion.
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x)
    n = valid.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(valid, x, 0.0).sum(axis=1) / n
        dev = np.where(valid, x - mean[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / n)
        z = dev / std[:, None]
    return set_nan(z, valid & ((n >= 2) & (std > 0))[:, None])


def cs_rank(x: np.ndarray) -> np.ndarray:
    """Per row (date): percentile rank in (0, 1] among the row's finite values.

    ``rank / n`` with ties given their average rank (the largest value gets 1); NaN for
    non-finite inputs.
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x)
    clean = np.where(valid, x, np.nan)  # NaN sorts last
    order = np.argsort(clean, axis=1)
    ranked = np.take_along_axis(clean, order, axis=1)
    rank = np.broadcast_to(np.arange(1.0, x.shape[1] + 1), x.shape).copy()
    _average_ties(rank, ranked)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = rank / valid.sum(axis=1, keepdims=True)
    out = np.empty(x.shape)
    np.put_along_axis(out, order, pct, axis=1)
    return set_nan(out, valid)


def _average_ties(rank: np.ndarray, ranked: np.ndarray) -> None:
    """Give each run of equal values in the sorted rows ``ranked`` the mean of its ranks (in place)."""
    rows, cols = ranked.shape
    # joins[t, j]: sorted value j equals value j - 1 (NaN never does); the extra False
    # column ends every row, so a run never crosses into the next row.
    joins = np.zeros((rows, cols + 1), dtype=bool)
    joins[:, 1:cols] = ranked[:, 1:] == ranked[:, :-1]
    step = np.diff(joins.ravel().view(np.int8))
    starts = np.flatnonzero(step == 1)  # the run's first value sits just before its first join
    ends = np.flatnonzero(step == -1)  # the run's last value is its last join
    if not len(starts):
        return
    row, first = np.divmod(starts, cols + 1)
    last = ends - row * (cols + 1)
    sizes = last - first + 1
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    cells = np.repeat(row * cols + first, sizes) + offsets
    rank.ravel()[cells] = np.repeat((first + last) / 2.0 + 1.0, sizes)
