"""The ``predictions`` contract of a model strategy: the walk-forward model's score per (date,
symbol), with the model version and the training range it came from; computed and audited in
memory here, published by the Dagster layer through ``common.publish.audit_and_publish``, read
by the strategy's targets (docs/models.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import GateResult, inputs_missing_reason, not_evaluated, upstream_complete
from quantlab_assets.common.warehouse import Column, TableSchema
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import model_predictions, wide_features
from quantlab_assets.strategy_lab.core.walk_forward import WalkForward, predictions_frame

PREDICTIONS = TableSchema(
    name="predictions",
    description="A model strategy's walk-forward score per (date, strategy, symbol), with the fit it came from.",
    columns=(
        Column("date", "DATE", False, "decision date (close): scored from that day's features"),
        Column("strategy", "VARCHAR", False),
        Column("symbol", "VARCHAR", False),
        Column("score", "DOUBLE", False, "the model's prediction of the label, higher = more attractive"),
        Column("model_version", "VARCHAR", False, "hash of the model's parameters and what it learned"),
        Column("refit_date", "DATE", False, "the close the model was fitted at (<= date)"),
        Column("train_start", "DATE", False, "first label date trained on"),
        Column("train_end", "DATE", False, "last label date trained on (its exit bar <= refit_date)"),
    ),
)

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
) -> PredictionsPartition:
    """The predictions of [start, end], audited: ``upstream_complete`` on the partition's features,
    then ``predictions_gate`` on exactly the candidate rows."""
    in_range = features["date"][features["date"] >= pd.Timestamp(start)].unique()
    upstream = upstream_complete({"features": (in_range, "features")}, start, end)
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
