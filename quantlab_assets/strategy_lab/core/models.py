"""The model kinds of ``signal.kind: model``: preprocessing fitted on a training set, then one
estimator (ridge, LightGBM, elastic net). Pure: numpy and the estimator's library, no Dagster.

A fitted model is a value: the same training rows and parameters give the same model and the
same predictions, bit for bit (LightGBM on one thread, fixed seed, ``deterministic=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from quantlab_assets.common.versions import content_hash
from quantlab_assets.strategy_lab.core.spec import AnyModel, ElasticNetModel, LightGBMModel, RidgeModel


@dataclass(frozen=True)
class Preprocess:
    """Per-input clip bounds and fill values, fitted on the training rows only (NaN: none)."""

    lo: np.ndarray
    hi: np.ndarray
    fill: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` (rows x inputs) clipped, then its missing values filled (a new array)."""
        out = np.array(x, dtype=np.float64, copy=True)
        clip = ~np.isnan(self.lo)
        if clip.any():
            with np.errstate(invalid="ignore"):
                out[:, clip] = np.clip(out[:, clip], self.lo[clip], self.hi[clip])
        fill = ~np.isnan(self.fill)
        if fill.any():
            holes = np.isnan(out) & fill[None, :]
            out[holes] = np.broadcast_to(self.fill, out.shape)[holes]
        return out


def fit_preprocess(x: np.ndarray, m: AnyModel) -> Preprocess:
    """Clip bounds (``clip_quantile``) and medians (``missing: median``) of the training rows ``x``."""
    p = x.shape[1]
    lo, hi, fill = np.full(p, np.nan), np.full(p, np.nan), np.full(p, np.nan)
    for j in range(p):
        col = x[:, j][~np.isnan(x[:, j])]
        if not len(col):
            continue
        if m.clip_quantile is not None:
            lo[j], hi[j] = np.quantile(col, [m.clip_quantile, 1.0 - m.clip_quantile])
        if m.missing == "median":
            med = np.median(col)
            fill[j] = min(max(med, lo[j]), hi[j]) if m.clip_quantile is not None else med
    if m.missing == "median":
        fill[np.isnan(fill)] = 0.0  # an input never seen in training: its cross-sectional centre
    return Preprocess(lo, hi, fill)


@dataclass(frozen=True)
class FittedModel:
    """One refit: what was learned, from which rows, and how to score new rows."""

    kind: str
    features: tuple[str, ...]
    prep: Preprocess
    coef: np.ndarray | None  # linear kinds
    booster: Any  # lightgbm.Booster (None for the linear kinds)
    rows: int
    importance: dict[str, float] = field(default_factory=dict)
    version: str = ""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``x`` (rows x inputs, already transformed across names); NaN
        where an input is missing after preprocessing (the row cannot be scored)."""
        z = self.prep.apply(x)
        bad = np.isnan(z).any(axis=1)
        out = np.full(len(z), np.nan)
        if self.coef is not None:
            # column-major, as the ridge's per-day frame always was (the same bits as before)
            out = np.asfortranarray(z) @ self.coef
        elif len(z):
            out = np.asarray(self.booster.predict(np.where(np.isnan(z), 0.0, z), num_threads=1), dtype=np.float64)
        out[bad] = np.nan
        return out


def fit_model(x: np.ndarray, y: np.ndarray, m: AnyModel) -> FittedModel:
    """Fit ``m`` on training rows ``x`` (transformed inputs, NaN allowed) and labels ``y``."""
    prep = fit_preprocess(x, m)
    z = prep.apply(x)
    keep = ~np.isnan(z).any(axis=1)
    if not keep.all():
        z, y = z[keep], y[keep]
    names = tuple(m.features)
    coef: np.ndarray | None = None
    booster = None
    if isinstance(m, RidgeModel):
        coef = ridge_coef(z, y, m.alpha)  # z keeps the training rows' layout (``stack_sessions``)
        importance = dict(zip(names, coef.tolist()))
        learned: bytes | str = coef.tobytes()
    elif isinstance(m, ElasticNetModel):
        coef = elastic_net_coef(z, y, m.alpha, m.l1_ratio, m.max_iter, m.tol)
        importance = dict(zip(names, coef.tolist()))
        learned = coef.tobytes()
    else:
        booster = lightgbm_fit(z, y, m)
        gains = booster.feature_importance(importance_type="gain")
        importance = dict(zip(names, [float(g) for g in gains]))
        learned = booster.model_to_string(num_iteration=-1)
    version = content_hash(m.model_dump_json(), learned)[:16]
    return FittedModel(m.kind, names, prep, coef, booster, int(len(z)), importance, version)


def ridge_coef(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """``(X'X + alpha n I)^-1 X'y``: ridge without intercept, the penalty scaled by the rows; with
    ``alpha = 0`` and collinear inputs (a constant one) the minimum-norm least-squares solution."""
    a, b = x.T @ x + alpha * len(x) * np.eye(x.shape[1]), x.T @ y
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:  # singular: only reachable with alpha = 0
        return np.linalg.lstsq(a, b, rcond=None)[0]


def elastic_net_coef(
    x: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float, max_iter: int = 1000, tol: float = 1e-8
) -> np.ndarray:
    """Minimise ``|y - Xb|^2 / 2n + alpha l1 |b|_1 + alpha (1 - l1) |b|^2 / 2`` (no intercept;
    scikit-learn's ``ElasticNet`` objective) by cyclic coordinate descent on the Gram matrix.

    Stops when no coefficient moved more than ``tol`` times the largest one in a sweep, or
    after ``max_iter`` sweeps. Deterministic: a fixed order of coordinates, no randomness.
    """
    n = x.shape[0]
    gram = (x.T @ x) / n
    xty = (x.T @ y) / n
    return _coordinate_descent(gram, xty, alpha * l1_ratio, alpha * (1.0 - l1_ratio), max_iter, tol)


@njit(cache=True)
def _coordinate_descent(gram, xty, l1, l2, max_iter, tol):
    """Cyclic coordinate descent on the Gram matrix (compiled: a sweep is p small dot products)."""
    p = len(xty)
    b = np.zeros(p)
    for _ in range(max_iter):
        biggest_step = 0.0
        for j in range(p):
            denom = gram[j, j] + l2
            if denom <= 0.0:
                continue  # an input that is zero on every training row
            rho = xty[j] - gram[j] @ b + gram[j, j] * b[j]
            new = np.sign(rho) * max(abs(rho) - l1, 0.0) / denom
            biggest_step = max(biggest_step, abs(new - b[j]))
            b[j] = new
        if biggest_step <= tol * max(np.abs(b).max(), 1e-12):
            break
    return b


def lightgbm_params(m: LightGBMModel) -> dict:
    """LightGBM's parameters for ``m``: one thread, a fixed seed, deterministic histograms."""
    return {
        "objective": "regression",
        "learning_rate": m.learning_rate,
        "num_leaves": m.num_leaves,
        "max_depth": m.max_depth,
        "min_data_in_leaf": m.min_child_samples,
        "bagging_fraction": m.subsample,
        "bagging_freq": 1 if m.subsample < 1.0 else 0,
        "feature_fraction": m.colsample_bytree,
        "lambda_l2": m.reg_lambda,
        "seed": m.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 1,
        "verbosity": -1,
    }


def lightgbm_fit(x: np.ndarray, y: np.ndarray, m: LightGBMModel):
    """A LightGBM booster of ``m.n_estimators`` trees on (x, y)."""
    import lightgbm as lgb  # imported when a LightGBM model is fitted (a second to load)

    data = lgb.Dataset(x, label=y, params={"verbosity": -1, "seed": m.seed}, free_raw_data=True)
    return lgb.train(lightgbm_params(m), data, num_boost_round=m.n_estimators)
