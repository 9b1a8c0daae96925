"""Walk-forward training of a ``signal.kind: model`` without leakage (docs/models.md).

At a refit date R the model trains on the ``train_sessions`` sessions before R, on labels whose
exit bar is known at R (exit <= R, or ``embargo`` sessions earlier); its inputs are transformed
across names per session and its clip bounds and fill values fitted on those training rows only.
It then scores every session from R to the next refit. Nothing at or after R's close enters a
fit made at R: a test perturbs every bar after a refit date and the fit and its predictions up
to that date stay identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import as_strided

from quantlab_assets.common.calendar import session_index, shift_sessions, trading_days
from quantlab_assets.feature_store.core.schema import exit_column
from quantlab_assets.strategy_lab.core.construct import REBALANCE_ANCHOR, cross_sectional_rows
from quantlab_assets.strategy_lab.core.models import FittedModel, fit_model
from quantlab_assets.strategy_lab.core.spec import AnyModel


@dataclass(frozen=True)
class Refit:
    """One trained model of the walk-forward: its refit date and training range (label dates)."""

    refit: pd.Timestamp
    train_start: pd.Timestamp | None
    train_end: pd.Timestamp | None
    model: FittedModel | None  # None: too few known labels to fit


@dataclass(frozen=True)
class WalkForward:
    """Scores (sessions x symbols; NaN: not scorable or no model yet) and the refit used per session."""

    scores: np.ndarray
    refit_of: np.ndarray  # index into ``refits`` per session (-1: no session)
    refits: list[Refit]

    def version_of(self, i: int) -> str | None:
        r = self.refits[self.refit_of[i]] if self.refit_of[i] >= 0 else None
        return r.model.version if r is not None and r.model is not None else None


def last_refit(day: pd.Timestamp, every: int) -> pd.Timestamp:
    """The latest session R <= day whose index since the anchor is a multiple of ``every``."""
    idx = int(session_index(pd.DatetimeIndex([day]), REBALANCE_ANCHOR)[0])
    return shift_sessions(day, -(idx % every))  # day is a session: 0 sessions back is day itself


@dataclass(frozen=True)
class TrainingGrid:
    """Inputs, labels and exits as (sessions x symbols) arrays over the history, for slicing."""

    sessions: pd.DatetimeIndex
    symbols: list[str]
    inputs: np.ndarray  # sessions x symbols x features
    present: np.ndarray  # a features row exists
    label: np.ndarray
    exit: np.ndarray  # datetime64[ns]; NaT where unknown
    # A session's transformed inputs and centred labels once every label of it is known (the
    # same at every later refit): session index -> (z, y). Refits ask in date order; older go.
    settled: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)


def training_grid(features: pd.DataFrame, labels: pd.DataFrame, m: AnyModel) -> TrainingGrid:
    """The long ``features`` and ``labels`` rows as arrays over their sessions and symbols."""
    if len(features):
        sessions = trading_days(features["date"].min(), features["date"].max())
    else:
        sessions = pd.DatetimeIndex([])
    symbols = sorted(features["symbol"].unique())
    shape = (len(sessions), len(symbols))
    r = sessions.get_indexer(pd.DatetimeIndex(features["date"]))
    c = pd.Index(symbols).get_indexer(features["symbol"])
    inputs = np.full((*shape, len(m.features)), np.nan)
    present = np.zeros(shape, dtype=bool)
    ok = (r >= 0) & (c >= 0)
    present[r[ok], c[ok]] = True
    for j, name in enumerate(m.features):
        inputs[r[ok], c[ok], j] = features[name].to_numpy(np.float64)[ok]
    label = np.full(shape, np.nan)
    exits = np.full(shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    lr = sessions.get_indexer(pd.DatetimeIndex(labels["date"]))
    lc = pd.Index(symbols).get_indexer(labels["symbol"])
    lok = (lr >= 0) & (lc >= 0)
    label[lr[lok], lc[lok]] = labels[m.label].to_numpy(np.float64)[lok]
    exit_days = pd.DatetimeIndex(labels[exit_column(m.horizon)]).as_unit("ns").to_numpy()
    exits[lr[lok], lc[lok]] = exit_days[lok]
    return TrainingGrid(sessions, symbols, inputs, present, label, exits)


def training_set(grid: TrainingGrid, m: AnyModel, refit: pd.Timestamp):
    """(x, y, first label date, last label date) of the fit at ``refit``: the sessions in
    [refit - train_sessions, refit) whose label's exit bar is at or before ``refit - embargo``;
    x transformed across the names known on each session, y centred per session."""
    lo = shift_sessions(refit, -m.train_sessions)
    known_by = np.datetime64(shift_sessions(refit, -m.embargo) if m.embargo else refit, "ns")
    a, b = grid.sessions.searchsorted(lo, "left"), grid.sessions.searchsorted(refit, "left")
    label = grid.label[a:b]
    with np.errstate(invalid="ignore"):
        known = grid.present[a:b] & ~np.isnan(label) & (grid.exit[a:b] <= known_by)
    rows = np.flatnonzero(known.any(axis=1))
    if not len(rows):
        return np.empty((0, len(m.features))), np.empty(0), None, None
    with np.errstate(invalid="ignore"):
        settled = (known == (grid.present[a:b] & ~np.isnan(label))).all(axis=1)[rows]
    for old in [i for i in grid.settled if i < a]:
        del grid.settled[old]
    todo = [k for k, r in enumerate(rows) if not (settled[k] and a + r in grid.settled)]
    done = _transform_sessions(grid.inputs[a:b][rows[todo]], known[rows[todo]], label[rows[todo]], m.transform)
    z = np.empty((len(rows), *grid.inputs.shape[1:]))
    y = np.empty((len(rows), grid.inputs.shape[1]))
    for k, (zk, yk) in zip(todo, done):
        z[k], y[k] = zk, yk
        if settled[k]:
            grid.settled[a + rows[k]] = (zk, yk)
    fresh = set(todo)
    for c in np.flatnonzero(settled):
        if int(c) not in fresh:
            z[c], y[c] = grid.settled[a + rows[c]]
    known = known[rows]
    keep = known if m.missing == "median" else known & ~np.isnan(z).any(axis=2)
    days = grid.sessions[a:b][rows]
    return stack_sessions([z[i][keep[i]] for i in range(len(z))]), y[keep], days[0], days[-1]


def _transform_sessions(inputs: np.ndarray, known: np.ndarray, label: np.ndarray, transform: str):
    """Per session: the inputs transformed across the names with a known label, and the known
    labels minus their session mean (numpy's sum, in symbol order); NaN elsewhere."""
    z = np.empty(inputs.shape)
    for j in range(inputs.shape[2]):
        z[:, :, j] = cross_sectional_rows(np.where(known, inputs[:, :, j], np.nan), transform)
    centred = np.full(label.shape, np.nan)
    for i in range(len(label)):
        v = label[i][known[i]]
        centred[i][known[i]] = v - v.sum() / len(v)
    return list(zip(z, centred))


def stack_sessions(blocks: list[np.ndarray]) -> np.ndarray:
    """The sessions' training rows stacked in the memory layout the ridge's per-session frames
    had (a frame's values are column-major; one row or none has its own strides): ``np.vstack``
    picks the result's layout from its inputs', and X'y's last bits depend on that layout."""
    shaped = []
    for block in blocks:
        if len(block) >= 2:
            shaped.append(np.asfortranarray(block))
        elif len(block) == 1:
            shaped.append(as_strided(block.copy(), block.shape, (8, 8)))
        else:
            shaped.append(as_strided(np.zeros(1), block.shape, (0, 0)))
    return np.vstack(shaped)


def walk_forward(
    features: pd.DataFrame,
    labels: pd.DataFrame | None,
    m: AnyModel,
    days: pd.DatetimeIndex,
    wide: dict[str, np.ndarray],
) -> WalkForward:
    """The model's scores on ``days`` (rows of ``wide``, the inputs per symbol of the universe),
    each session scored by the fit of its latest refit date (``refit_every`` sessions apart).

    ``features`` and ``labels`` are the long rows the fits train on (from the training window's
    first session); ``labels`` None: no fit, every score NaN.
    """
    n = next(iter(wide.values())).shape[1] if wide else 0
    scores = np.full((len(days), n), np.nan)
    refit_of = np.full(len(days), -1)
    refits: list[Refit] = []
    if not len(days):
        return WalkForward(scores, refit_of, refits)
    z = np.stack([cross_sectional_rows(wide[f], m.transform) for f in m.features], axis=2)
    grid = training_grid(features, labels, m) if labels is not None else None
    index: dict[pd.Timestamp, int] = {}
    for i, day in enumerate(days):
        refit = last_refit(day, m.refit_every)
        if refit not in index:
            index[refit] = len(refits)
            refits.append(fit_at(grid, m, refit))
        refit_of[i] = index[refit]
        fitted = refits[refit_of[i]].model
        if fitted is not None:
            scores[i] = fitted.predict(z[i])  # one product per session: stacking sessions changes bits
    return WalkForward(scores, refit_of, refits)


def fit_at(grid: TrainingGrid | None, m: AnyModel, refit: pd.Timestamp) -> Refit:
    """The fit made at the close of ``refit`` (None below 10 training rows per input)."""
    if grid is None:
        return Refit(refit, None, None, None)
    x, y, first, last = training_set(grid, m, refit)
    if len(x) < 10 * len(m.features):
        return Refit(refit, first, last, None)
    return Refit(refit, first, last, fit_model(x, y, m))


def predictions_frame(wf: WalkForward, days: pd.DatetimeIndex, universe: Sequence[str]) -> pd.DataFrame:
    """Long rows (date, symbol, score, model_version, refit_date, train_start, train_end) of the
    scorable cells of ``wf``."""
    n = len(universe)
    sessions = np.repeat(np.arange(len(days)), n)
    score = wf.scores.ravel()
    keep = ~np.isnan(score)
    ref = wf.refit_of[sessions[keep]]
    fits = wf.refits
    return pd.DataFrame(
        {
            "date": days.to_numpy()[sessions[keep]],
            "symbol": np.tile(np.asarray(universe, dtype=object), len(days))[keep],
            "score": score[keep],
            "model_version": [fits[k].model.version for k in ref],  # type: ignore[union-attr]
            "refit_date": [fits[k].refit for k in ref],
            "train_start": [fits[k].train_start for k in ref],
            "train_end": [fits[k].train_end for k in ref],
        }
    )
