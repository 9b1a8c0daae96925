"""The ``predictions`` contract of a model strategy: the walk-forward model's score per (date,
symbol), with the model version and the training range it came from; computed and audited in
memory here, published by the Dagster layer through ``common.publish.audit_and_publish``, read
by the strategy's targets (docs/models.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import GateResult, inputs_missing_reason, not_evaluated, upstream_complete
from quantlab_assets.common.warehouse import ensure_table, read_slice, read_strategy_slice
from quantlab_assets.feature_store.core.schema import LABELS
from quantlab_assets.strategy_lab.core.schema import PREDICTIONS
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import model_predictions, wide_features
from quantlab_assets.strategy_lab.core.walk_forward import WalkForward, predictions_frame

# Every blocking rule of the predictions gate and what it promises (the UI's check descriptions).
PREDICTIONS_RULES = {
    "scores_finite": "Every published score is a finite number.",
    "one_row_per_symbol_and_day": "No duplicate (date, symbol) predictions.",
    "symbols_in_registry": "Every predicted symbol is in the symbol registry.",
    "trained_before_use": "Every score comes from a fit made at or before its date, on labels dated before the fit.",
}


@dataclass(frozen=True)
class PredictionsPartition:
    """The candidate predictions of [start, end], their audit and the fits behind them."""

    predictions: pd.DataFrame
    walk_forward: WalkForward | None
    gate: list[GateResult]
    figures: dict[str, float | int]


def compute_predictions(
    features: pd.DataFrame, labels: pd.DataFrame, spec: StrategySpec, universe: Sequence[str], start, end
) -> tuple[pd.DataFrame, WalkForward]:
    """The model's walk-forward predictions on every session of [start, end] for ``universe``
    (the same scores ``compute_targets`` ranks when it trains the model itself)."""
    m = spec.signal.model
    assert m is not None  # model strategies only
    universe = sorted(universe)
    days = trading_days(start, end)
    wide = wide_features(features, m.features, days, universe)
    wf = model_predictions(features, labels, spec, days, wide, universe)
    assert wf is not None  # a model strategy
    frame = predictions_frame(wf, days, universe)
    frame.insert(1, "strategy", spec.name)
    return frame[PREDICTIONS.column_names], wf


def predictions_gate(candidate: pd.DataFrame, registry: Iterable[str]) -> list[GateResult]:
    """The blocking rules on the candidate rows, as they would be published."""
    bad = candidate[~np.isfinite(candidate["score"].to_numpy(np.float64))]
    dupes = candidate[candidate.duplicated(["date", "symbol"], keep=False)]
    unknown = candidate[~candidate["symbol"].isin(list(registry))]
    date, refit = pd.to_datetime(candidate["date"]), pd.to_datetime(candidate["refit_date"])
    late = candidate[(refit > date) | (pd.to_datetime(candidate["train_end"]) >= refit)]

    def first(rows: pd.DataFrame) -> str:
        return f", e.g. {rows.iloc[0]['symbol']} {pd.Timestamp(rows.iloc[0]['date']).date()}" if len(rows) else ""

    return [
        GateResult("scores_finite", bad.empty, f"{len(bad)} non-finite scores{first(bad)}", offending=bad),
        GateResult(
            "one_row_per_symbol_and_day", dupes.empty, f"{len(dupes)} duplicate rows{first(dupes)}", offending=dupes
        ),
        GateResult(
            "symbols_in_registry",
            unknown.empty,
            f"{len(unknown)} rows of unregistered symbols{first(unknown)}",
            offending=unknown,
        ),
        GateResult(
            "trained_before_use",
            late.empty,
            f"{len(late)} scores from a fit made after their date or on labels not known at the fit{first(late)}",
            offending=late,
        ),
    ]


def predictions_partition(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    spec: StrategySpec,
    universe: Sequence[str],
    registry: Iterable[str],
    start,
    end,
    feature_dates: Mapping[str, pd.Index] | None = None,
) -> PredictionsPartition:
    """The predictions of [start, end], audited: ``upstream_complete`` on the partition's features
    (``feature_dates``: each feature set's own dates, as ``read_features`` gives them), then
    ``predictions_gate`` on exactly the candidate rows."""
    if feature_dates is None:  # one frame from one set: the default features
        feature_dates = {"features": pd.Index(features["date"].unique())}
    lo = pd.Timestamp(start)
    upstream = upstream_complete({t: (d[d >= lo], t) for t, d in feature_dates.items()}, start, end)
    wf = None
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PREDICTIONS.column_names})
    if upstream.passed:
        frame, wf = compute_predictions(features, labels, spec, universe, start, end)
    rules = predictions_gate(frame, registry)
    if not upstream.passed:
        rules = not_evaluated(rules, inputs_missing_reason(upstream))
    fits = [r for r in wf.refits if r.model is not None] if wf is not None else []
    figures: dict[str, float | int] = {
        "rows": len(frame),
        "refits": len(fits),
        "sessions_without_model": int((wf.scores.shape[0] - np.isfinite(wf.scores).any(axis=1).sum()) if wf else 0),
    }
    return PredictionsPartition(frame, wf, [upstream, *rules], figures)


def fits_table(wf: WalkForward | None) -> pd.DataFrame:
    """One row per refit: date, training range, rows, version and the inputs by importance."""
    rows = []
    for r in wf.refits if wf is not None else []:
        m = r.model
        top = sorted(m.importance.items(), key=lambda kv: -abs(kv[1]))[:5] if m is not None else []
        rows.append(
            {
                "refit_date": r.refit.date(),
                "train_start": r.train_start.date() if r.train_start is not None else None,
                "train_end": r.train_end.date() if r.train_end is not None else None,
                "rows": m.rows if m is not None else 0,
                "model_version": m.version if m is not None else "(too few labels: no model)",
                "importance": ", ".join(f"{k} {v:.3g}" for k, v in top),
            }
        )
    return pd.DataFrame(rows, columns=["refit_date", "train_start", "train_end", "rows", "model_version", "importance"])


# ---------------------------------------------------------------------------------------------
# The predictions' quality: IC, Rank IC and their IR (the tearsheet, the leaderboard and
# ``quantlab models compare`` use these).

QUALITY_COLUMNS = ("prediction_IC", "prediction_ICIR", "prediction_rank_IC", "prediction_rank_ICIR")


def daily_ic(score: np.ndarray, label: np.ndarray, rank: bool = False) -> np.ndarray:
    """Per row (session): Pearson (or Spearman with ``rank``) correlation of score and label over
    the columns where both are known; NaN below 3 names or with no dispersion."""
    out = np.full(len(score), np.nan)
    for i in range(len(score)):
        ok = ~np.isnan(score[i]) & ~np.isnan(label[i])
        if ok.sum() < 3:
            continue
        s, y = score[i][ok], label[i][ok]
        if rank:
            s, y = pd.Series(s).rank().to_numpy(), pd.Series(y).rank().to_numpy()
        s, y = s - s.mean(), y - y.mean()
        denom = np.sqrt((s * s).sum() * (y * y).sum())
        if denom > 0:
            out[i] = (s * y).sum() / denom
    return out


def ic_summary(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """IC, ICIR, Rank IC, Rank ICIR of a (sessions x names) score against its label: the means of
    the daily values and mean / std (NaN with fewer than 3 sessions)."""
    out = {}
    for name, rank in (("IC", False), ("Rank IC", True)):
        ic = daily_ic(score, label, rank)
        ic = ic[~np.isnan(ic)]
        out[name] = float(ic.mean()) if len(ic) else np.nan
        out[f"{name}IR"] = float(ic.mean() / ic.std(ddof=1)) if len(ic) > 2 else np.nan
    return out


def prediction_quality(predictions: pd.DataFrame, labels: pd.DataFrame, label: str) -> dict[str, float]:
    """``ic_summary`` of long predictions (date, symbol, score) against the ``label`` column of
    ``labels`` on the same (date, symbol); sessions without a known label do not count."""
    if predictions.empty:
        return dict.fromkeys(QUALITY_COLUMNS, np.nan)
    days = pd.DatetimeIndex(sorted(pd.to_datetime(predictions["date"]).unique()))
    universe = sorted(predictions["symbol"].unique())
    score = wide_features(predictions, ["score"], days, universe)["score"]
    y = wide_features(labels.rename(columns={label: "_y"}), ["_y"], days, universe)["_y"]
    s = ic_summary(score, y)
    return dict(zip(QUALITY_COLUMNS, (s["IC"], s["ICIR"], s["Rank IC"], s["Rank ICIR"])))


def stored_prediction_quality(con, spec: StrategySpec, start, end) -> dict[str, float]:
    """``prediction_quality`` of a model strategy's published predictions over [start, end]
    against its own label ({} for a strategy without a model)."""
    m = spec.signal.model
    if m is None:
        return {}
    ensure_table(con, PREDICTIONS)
    preds = read_strategy_slice(con, PREDICTIONS, spec.name, start, end, ["date", "symbol", "score"])
    labels = read_slice(con, LABELS, start, end, ["date", "symbol", m.label], ensure=False)
    return prediction_quality(preds, labels, m.label)


def add_prediction_quality(table: pd.DataFrame, quality: dict[str, dict[str, float]]) -> pd.DataFrame:
    """``table`` (one row per ``strategy``) with the prediction quality columns (NaN: no model)."""
    out = table.copy()
    for col in QUALITY_COLUMNS:
        out[col] = [quality.get(s, {}).get(col, np.nan) for s in out["strategy"]]
    return out
