"""Feature kernels: hand-worked cases, slow-loop references, NaN strictness, exactness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.feature_store.core import kernels as nb

NAN = np.nan


def col(*values) -> np.ndarray:
    """A one-symbol (T, 1) int64 array."""
    return np.array(values, dtype=np.int64)[:, None]


def all_valid(q: np.ndarray) -> np.ndarray:
    return np.ones(q.shape, dtype=bool)


def slow_rolling(q: np.ndarray, valid: np.ndarray, window: int, fn) -> np.ndarray:
    """The obviously correct reference: fn over each complete, fully valid window."""
    out = np.full(q.shape, NAN)
    for t in range(window - 1, len(q)):
        for j in range(q.shape[1]):
            if valid[t - window + 1 : t + 1, j].all():
                out[t, j] = fn(q[t - window + 1 : t + 1, j].astype(np.float64))
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(11)


# --------------------------------------------------------------------------- quantisation


def test_quantize_log_rounds_to_fixed_point_and_flags_invalid_values():
    q, valid = nb.quantize_log(np.array([[1.0, np.e, 0.0, -2.0, NAN, np.inf, 100.0]]))
    assert valid.tolist() == [[True, True, False, False, False, False, True]]
    assert q[0, 0] == 0 and q[0, 1] == nb.SCALE
    assert q[0, 6] == round(np.log(100.0) * nb.SCALE)
    assert (q[~valid] == 0).all()


def test_lag_and_diff_shift_down_axis_0():
    q = col(10, 13, 19, 20)
    prev, ok = nb.lag(q, all_valid(q), 2)
    assert prev[:, 0].tolist() == [0, 0, 10, 13] and ok[:, 0].tolist() == [False, False, True, True]
    change, ok = nb.diff(q, all_valid(q))
    assert change[1:, 0].tolist() == [3, 6, 1] and ok[:, 0].tolist() == [False, True, True, True]


# --------------------------------------------------------------------------- rolling windows


def test_rolling_sum_and_mean_hand_worked():
    q = col(1, 2, 3, 4, 10)
    sums, ok = nb.rolling_sum_exact(q, all_valid(q), 3)
    assert ok[:, 0].tolist() == [False, False, True, True, True]
    assert sums[2:, 0].tolist() == [6, 9, 17]
    mean = nb.rolling_mean(q, all_valid(q), 3, scale=1)
    np.testing.assert_array_equal(mean[:, 0], [NAN, NAN, 2.0, 3.0, 17 / 3])


def test_rolling_std_hand_worked():
    q = col(2, 4, 4, 4, 5, 5, 7, 9)  # the textbook set: mean 5, population std 2
    std0 = nb.rolling_std(q, all_valid(q), 8, ddof=0, scale=1)
    std1 = nb.rolling_std(q, all_valid(q), 8, ddof=1, scale=1)
    assert np.isnan(std0[:7]).all()
    assert std0[7, 0] == 2.0
    assert std1[7, 0] == pytest.approx(np.sqrt(32 / 7), rel=1e-15)


@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 13])
def test_rolling_kernels_match_a_slow_loop(rng, window):
    q = rng.integers(-50_000_000, 50_000_000, size=(40, 3))
    valid = rng.random(q.shape) > 0.08
    cases = [
        (nb.rolling_mean(q, valid, window, scale=1), np.mean),
        (nb.rolling_max(q, valid, window, scale=1), np.max),
        (nb.rolling_min(q, valid, window, scale=1), np.min),
    ]
    if window > 1:
        cases.append((nb.rolling_std(q, valid, window, ddof=1, scale=1), lambda a: np.std(a, ddof=1)))
    for got, fn in cases:
        np.testing.assert_allclose(got, slow_rolling(q, valid, window, fn), rtol=1e-12)
    np.testing.assert_array_equal(nb.window_valid(valid, window), ~np.isnan(slow_rolling(q, valid, window, np.sum)))


def test_rolling_max_min_are_exact_for_any_window_length(rng):
    q = rng.integers(0, 10**12, size=(300, 4))
    for window in (7, 64, 100, 252):
        want_max = slow_rolling(q, all_valid(q), window, np.max)
        want_min = slow_rolling(q, all_valid(q), window, np.min)
        np.testing.assert_array_equal(nb.rolling_max(q, all_valid(q), window, scale=1), want_max)
        np.testing.assert_array_equal(nb.rolling_min(q, all_valid(q), window, scale=1), want_min)


def test_a_missing_value_voids_exactly_the_windows_containing_it():
    q = col(1, 2, 3, 4, 5, 6, 7)
    valid = all_valid(q)
    valid[3] = False
    mean = nb.rolling_mean(q, valid, 2, scale=1)[:, 0]
    np.testing.assert_array_equal(mean, [NAN, 1.5, 2.5, NAN, NAN, 5.5, 6.5])
    assert nb.window_valid(valid, 3)[:, 0].tolist() == [False, False, True, False, False, False, True]


def test_window_sums_are_exact_when_the_cumulative_sum_wraps():
    big = 5 * 10**18  # the running sum overflows int64; no window of one does
    q = col(big, big, big, -big)
    sums, ok = nb.rolling_sum_exact(q, all_valid(q), 1)
    assert ok.all() and sums[:, 0].tolist() == [big, big, big, -big]
    # w * sum(q**2) and sum(q)**2 both overflow here; their difference, 4, is still exact.
    q = col(3 * 10**9, 3 * 10**9 + 2)
    m, _, _ = nb.centered_sum_squares(q, all_valid(q), 2)
    assert m[1, 0] == 4


def test_windows_longer_than_the_data_are_all_nan():
    q = col(1, 2, 3)
    assert np.isnan(nb.rolling_mean(q, all_valid(q), 5)).all()
    assert np.isnan(nb.rolling_std(q, all_valid(q), 5)).all()
    assert np.isnan(nb.rolling_max(q, all_valid(q), 5)).all()
    assert np.isnan(nb.truncated_ema(q.astype(float), 26)).all()


def test_centered_sum_squares_raises_on_overflow():
    q = col(0, 3 * 10**9, 0, 3 * 10**9)
    with pytest.raises(OverflowError, match="window 4"):
        nb.centered_sum_squares(q, all_valid(q), 4)


def test_rolling_beta_and_corr_match_least_squares(rng):
    x = rng.integers(-200_000, 200_000, size=(30, 1))
    y = 3 * x // 2 + rng.integers(-50_000, 50_000, size=(30, 1))
    valid = all_valid(x)
    beta = nb.rolling_beta(y, x, valid, 10)
    corr = nb.rolling_corr(y, x, valid, 10)
    assert np.isnan(beta[:9]).all() and np.isnan(corr[:9]).all()
    for t in range(9, 30):
        xs, ys = x[t - 9 : t + 1, 0].astype(float), y[t - 9 : t + 1, 0].astype(float)
        assert beta[t, 0] == pytest.approx(np.polyfit(xs, ys, 1)[0], rel=1e-10)
        assert corr[t, 0] == pytest.approx(np.corrcoef(xs, ys)[0, 1], rel=1e-12)
    flat = np.zeros((5, 1), dtype=np.int64)
    assert np.isnan(nb.rolling_beta(col(1, 2, 3, 4, 5), flat, all_valid(flat), 3)).all()


# --------------------------------------------------------------------------- RSI and EMA


def test_rsi_is_cutlers_simple_form():
    r = col(0, 2, -1, 3, -4)
    got = nb.rsi(r, all_valid(r), 3)[:, 0]
    # windows: (0, 2, -1) -> 2/3; (2, -1, 3) -> 5/6; (-1, 3, -4) -> 3/8
    np.testing.assert_allclose(got, [NAN, NAN, 100 * 2 / 3, 100 * 5 / 6, 100 * 3 / 8], rtol=1e-15)
    flat = col(0, 0, 0)
    assert np.isnan(nb.rsi(flat, all_valid(flat), 3)).all()  # 0/0 is undefined, not 50


@pytest.mark.parametrize("span,lags", [(9, 42), (12, 56), (26, 120)])
def test_ema_weights_truncate_below_the_tolerance(span, lags):
    w = nb.ema_weights(span)
    decay = 1 - 2 / (span + 1)
    assert len(w) == lags
    assert decay**lags < nb.EMA_TOL <= decay ** (lags - 1)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(w[1:] / w[:-1], decay, rtol=1e-12)


def slow_ema(x: np.ndarray, span: int) -> np.ndarray:
    w = nb.ema_weights(span)
    out = np.full(x.shape, NAN)
    for t in range(len(w) - 1, len(x)):
        out[t] = sum(w[k] * x[t - k] for k in range(len(w)))
    return out


def test_truncated_ema_hand_worked():
    # span 3: alpha 1/2, weights 1/2, 1/4, ... truncated at K = 14 (0.5**14 < 1e-4), normalised.
    x = np.arange(20.0)[:, None]
    w = 0.5 ** np.arange(14)
    w /= w.sum()
    got = nb.truncated_ema(x, 3)[:, 0]
    assert np.isnan(got[:13]).all()
    np.testing.assert_allclose(got[13:], [sum(w[k] * (t - k) for k in range(14)) for t in range(13, 20)], rtol=1e-14)
    np.testing.assert_array_equal(nb.truncated_ema(x, 1), x)  # span 1: the value itself


@pytest.mark.parametrize("span", [2, 5, 9, 12, 26, 40])
def test_truncated_ema_matches_a_slow_loop(rng, span):
    x = rng.normal(size=(400, 3)) * 1e7
    np.testing.assert_allclose(nb.truncated_ema(x, span), slow_ema(x, span), rtol=1e-12)


def test_truncated_ema_does_not_depend_on_where_the_array_starts(rng):
    x = rng.normal(size=(200, 4)) * 1e7
    x[50, 1] = NAN
    lags = len(nb.ema_weights(12))
    full = nb.truncated_ema(x, 12)
    for start in (1, 17, 100):
        np.testing.assert_array_equal(nb.truncated_ema(x[start:], 12)[lags - 1 :], full[start + lags - 1 :])
    hit = np.isnan(full[:, 1])
    assert hit[50 : 50 + lags].all() and not hit[50 + lags :].any()


def test_kernels_do_not_modify_their_inputs(rng):
    q = rng.integers(-(10**6), 10**6, size=(30, 3))
    valid = rng.random(q.shape) > 0.1
    x = rng.normal(size=(30, 3))
    before = (q.copy(), valid.copy(), x.copy())
    nb.rolling_std(q, valid, 5)
    nb.rolling_max(q, valid, 5)
    nb.rolling_corr(q, q[::-1].copy(), valid, 5)
    nb.truncated_ema(x, 3)
    nb.cs_rank(x)
    nb.cs_zscore(x)
    for a, b in zip(before, (q, valid, x)):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- cross-section


def test_cs_mean_exact_rounds_the_exact_row_mean():
    q = np.array([[1, 2, 4], [5, 0, 0], [7, 7, 8], [-1, -2, 9]], dtype=np.int64)
    valid = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=bool)
    mean, ok = nb.cs_mean_exact(q, valid)
    assert mean.tolist() == [2, 5, 0, -2] and ok.tolist() == [True, True, False, True]  # -1.5 rounds to even


def test_cs_zscore_hand_worked():
    x = np.array([[1.0, 2.0, 3.0, NAN], [5.0, NAN, NAN, NAN], [4.0, 4.0, 4.0, 4.0]])
    z = nb.cs_zscore(x)
    s = np.sqrt(2 / 3)
    np.testing.assert_allclose(z[0], [-1 / s, 0.0, 1 / s, NAN])
    assert np.isnan(z[1]).all()  # one value: no dispersion to scale by
    assert np.isnan(z[2]).all()  # no dispersion


def test_cs_rank_hand_worked_with_ties_and_gaps():
    x = np.array([[10.0, 30.0, 20.0, 20.0, NAN], [NAN, NAN, NAN, NAN, NAN], [1.0, np.inf, 2.0, 3.0, 4.0]])
    got = nb.cs_rank(x)
    np.testing.assert_array_equal(got[0], [0.25, 1.0, 0.625, 0.625, NAN])
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], [0.25, NAN, 0.5, 0.75, 1.0])


def test_cs_rank_and_zscore_match_pandas(rng):
    x = rng.integers(0, 12, size=(25, 30)).astype(float)  # many ties
    x[rng.random(x.shape) < 0.15] = NAN
    frame = pd.DataFrame(x)
    np.testing.assert_allclose(nb.cs_rank(x), frame.rank(axis=1, pct=True).to_numpy(), rtol=1e-15)
    mean = frame.mean(axis=1)
    want = frame.sub(mean, axis=0).div(frame.std(axis=1, ddof=0), axis=0)
    np.testing.assert_allclose(nb.cs_zscore(x), want.to_numpy(), rtol=1e-12)


def test_cross_sectional_rows_are_independent(rng):
    x = rng.normal(size=(40, 25))
    for fn in (nb.cs_rank, nb.cs_zscore):
        full = fn(x)
        np.testing.assert_array_equal(fn(x[17:18]), full[17:18])
        np.testing.assert_array_equal(fn(x[5:30]), full[5:30])
