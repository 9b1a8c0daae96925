"""Targets over a range of sessions: the strategy's book decided at each close."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.warehouse import ensure_table
from quantlab_assets.strategy_lab.core.construct import (
    book_nb,
    cross_sectional_rows,
    decide_params,
    note_text,
    rebalance_mask,
)
from quantlab_assets.strategy_lab.core.limits import EPS, constraint_violations, may_violate
from quantlab_assets.strategy_lab.core.schema import TARGETS
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.walk_forward import WalkForward, walk_forward


def read_previous_weights(con: duckdb.DuckDBPyConnection, strategy: str, start) -> pd.Series | None:
    """The strategy's stored book at the session before ``start`` (None if never materialized)."""
    ensure_table(con, TARGETS)
    prev = con.execute(
        f'SELECT "symbol", "weight" FROM "{TARGETS.name}" WHERE "date" = ? AND "strategy" = ? ORDER BY "symbol"',
        [shift_sessions(start, -1).date(), strategy],
    ).df()
    return prev.set_index("symbol")["weight"] if len(prev) else None


def empty_targets() -> pd.DataFrame:
    """No session in the range (a holiday): no rows, but the columns' types, so filters still work."""
    return pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[us]"),
            "strategy": pd.Series(dtype=object),
            "symbol": pd.Series(dtype=object),
            "score": pd.Series(dtype=float),
            "weight": pd.Series(dtype=float),
            "rebalance": pd.Series(dtype=bool),
        }
    )


@dataclass
class TargetsResult:
    targets: pd.DataFrame
    final_weights: pd.Series
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    turnover: dict = field(default_factory=dict)  # rebalance (or forced-exit) date -> one-way turnover
    # The frame's rows as arrays (sessions x universe, row by row): scores, weights, sessions, symbols.
    grid: tuple[np.ndarray, np.ndarray, pd.DatetimeIndex, list[str]] | None = None
    walk_forward: WalkForward | None = None  # a model signal's fits and scores


def wide_features(
    features: pd.DataFrame, names: Sequence[str], days: pd.DatetimeIndex, universe: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each named feature as a (sessions x symbols) array; NaN where a row is missing."""
    rows = days.get_indexer(pd.DatetimeIndex(features["date"]))
    cols = pd.Index(universe).get_indexer(features["symbol"])
    keep = (rows >= 0) & (cols >= 0)
    out = {}
    for name in names:
        arr = np.full((len(days), len(universe)), np.nan)
        arr[rows[keep], cols[keep]] = features[name].to_numpy(np.float64)[keep]
        out[name] = arr
    return out


def score_rows(wide: dict[str, np.ndarray], spec: StrategySpec, predictions: np.ndarray | None = None) -> np.ndarray:
    """Scores of every session (rows) and symbol (columns); NaN where a needed feature is missing.

    ``predictions`` (model signals): the walk-forward model's scores (``walk_forward``).
    """
    sig = spec.signal
    if spec.selection.kind == "threshold":  # time-series: the feature's own value ranks the names
        assert spec.selection.feature is not None  # Selection._params: threshold needs feature
        # Higher = more attractive: a mean-reversion threshold prefers low values.
        raw = -wide[spec.selection.feature] if spec.selection.reversion else wide[spec.selection.feature].copy()
    elif sig.kind == "feature":
        assert sig.feature is not None  # Signal._one_source: kind "feature" has a feature
        raw = cross_sectional_rows(wide[sig.feature], "zscore")
    elif sig.kind == "blend":
        parts = [t.weight * cross_sectional_rows(wide[t.feature], t.transform) for t in sig.blend]
        raw = sum(parts[1:], parts[0])
    else:
        # kind "model": the callers pass the model's walk-forward scores.
        assert sig.model is not None and predictions is not None
        raw = predictions
    return raw * sig.direction


def model_predictions(
    features: pd.DataFrame,
    labels: pd.DataFrame | None,
    spec: StrategySpec,
    days: pd.DatetimeIndex,
    wide,
    universe: Sequence[str],
) -> WalkForward | None:
    """The walk-forward model's scores on ``days`` (None: the signal is not a model); it trains on
    the universe's rows only, whatever else ``features`` holds (the asset reads no more)."""
    if spec.signal.kind != "model":
        return None
    assert spec.signal.model is not None  # Signal._one_source: kind "model" has a model
    inside = features["symbol"].isin(list(universe))
    if not inside.all():
        features = features[inside]
    return walk_forward(features, labels, spec.signal.model, days, wide)


def book_arrays(
    wide: dict[str, np.ndarray],
    spec: StrategySpec,
    days: pd.DatetimeIndex,
    weights0: np.ndarray,
    forced: float = 0.0,
    exits: bool = False,
    predictions: np.ndarray | None = None,
):
    """The book as arrays: (rebalance mask, scores, weights, turnover, note codes, note counts),
    rows = ``days``, columns = the universe of ``wide`` (``wide_features``)."""
    mask = rebalance_mask(days, spec)
    scores = score_rows(wide, spec, predictions)
    if spec.universe.min_log_dollar_volume is not None:
        with np.errstate(invalid="ignore"):
            scores[~(wide["log_dollar_volume_20"] >= spec.universe.min_log_dollar_volume)] = np.nan
    nan = np.full(scores.shape, np.nan)
    vols = wide[spec.weighting.vol_feature] if spec.weighting.kind == "inverse_vol" else nan
    values = scores
    if spec.selection.kind == "threshold":
        assert spec.selection.feature is not None  # Selection._params: threshold needs feature
        values = wide[spec.selection.feature]
    book, turnover, codes, counts = book_nb(scores, values, vols, mask, weights0, forced, exits, decide_params(spec))
    return mask, scores, book, turnover, codes, counts


def compute_targets(
    features: pd.DataFrame,
    spec: StrategySpec,
    universe: Sequence[str],
    start,
    end,
    prev_weights: pd.Series | None = None,
    labels: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
) -> TargetsResult:
    """The book for every session in [start, end].

    ``features`` are long rows (date, symbol, features...) covering [start, end] (and, for a
    model signal trained here, its training window); ``prev_weights`` are the targets of the
    session before ``start``. Off rebalance days the previous weights carry over. A model
    signal ranks ``predictions`` (the published contract's rows: date, symbol, score) when
    given, else the scores of its walk-forward trained on ``features`` and ``labels``.
    """
    universe = sorted(universe)
    days = trading_days(start, end)
    prev = prev_weights if prev_weights is not None else pd.Series(dtype=float)
    weights = prev.reindex(universe).fillna(0.0)
    # Names held yesterday that are no longer in the universe are sold at the first session;
    # their exit counts in that session's turnover (and against max_turnover).
    leaving = prev[~prev.index.isin(universe) & (prev.abs() > EPS)]
    if not len(days):
        return TargetsResult(empty_targets(), weights)
    wide = wide_features(features, spec.features_used(), days, universe)
    wf = model_predictions(features, labels, spec, days, wide, universe) if predictions is None else None
    model_scores = wf.scores if wf is not None else None
    if predictions is not None and spec.signal.kind == "model":
        model_scores = wide_features(predictions, ["score"], days, universe)["score"]
    forced = float(leaving.abs().sum() / 2)
    mask, scores, book, turnover, codes, counts = book_arrays(
        wide, spec, days, weights.to_numpy(np.float64), forced, len(leaving) > 0, model_scores
    )
    result = TargetsResult(pd.DataFrame(), pd.Series(book[-1], index=universe), grid=(scores, book, days, universe))
    result.walk_forward = wf
    decided = np.flatnonzero(~np.isnan(turnover))
    result.turnover = dict(zip(days[decided], turnover[decided].tolist()))
    for i in decided[codes[decided] != 0]:  # notes only where a book went flat
        result.notes.append(f"{days[i].date()}: {note_text(codes[i], counts[i], spec)}")
        if i == 0 and len(leaving):
            result.notes.append(f"{days[i].date()}: sold {', '.join(leaving.index)} (left the universe)")
    if len(leaving) and codes[0] == 0:
        result.notes.insert(0, f"{days[0].date()}: sold {', '.join(leaving.index)} (left the universe)")
    for i in decided[_maybe_violating(book[decided], turnover[decided], spec)]:
        row = pd.Series(book[i], index=universe)
        result.violations += [f"{days[i].date()}: {v}" for v in constraint_violations(row, spec, float(turnover[i]))]
    n = len(universe)
    result.targets = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), n),
            "strategy": spec.name,
            "symbol": np.tile(np.asarray(universe, dtype=object), len(days)),
            "score": scores.ravel(),
            "weight": book.ravel(),
            "rebalance": np.repeat(mask.astype(bool), n),
        }
    )[TARGETS.column_names]
    return result


def _maybe_violating(book: np.ndarray, turnover: np.ndarray, spec: StrategySpec) -> np.ndarray:
    """Rows that may break a limit (a loose screen; ``constraint_violations`` has the last word)."""
    absw = np.abs(book)
    return may_violate(
        absw.max(axis=1, initial=0.0), absw.sum(axis=1), book.sum(axis=1), (absw > EPS).sum(axis=1), turnover, spec
    )
