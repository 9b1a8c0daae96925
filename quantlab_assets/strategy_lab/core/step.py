"""One targets partition, computed and audited in memory: the targets step's one core call.

Write-audit-publish: the candidate rows are computed here and the gate (``upstream_complete``
and ``targets_gate``) runs on exactly those rows; the Dagster layer then publishes them with
``common.publish.audit_and_publish`` only if no blocking rule failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from quantlab_assets.common.gates import (
    GateResult,
    inputs_missing_reason,
    not_evaluated,
    period_label,
    upstream_complete,
)
from quantlab_assets.feature_store.core.schema import exit_column, label_column
from quantlab_assets.strategy_lab.core.evaluation import (
    QUALITY_HORIZON,
    book_stats,
    signal_quality,
    signal_quality_wide,
    strategy_summary_markdown,
)
from quantlab_assets.strategy_lab.core.gate import FeatureHistory, book_not_empty, targets_gate
from quantlab_assets.strategy_lab.core.limits import EPS
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TargetsResult, compute_targets, empty_targets


@dataclass(frozen=True)
class TargetsPartition:
    """The candidate targets of [start, end], their audit and what describes them."""

    result: TargetsResult
    gate: list[GateResult]  # upstream_complete, then targets_gate on exactly ``result.targets``
    figures: dict[str, float | int]  # headline figures: universe, violations, book stats, signal quality
    report: str  # the strategy summary (markdown)

    @property
    def targets(self) -> pd.DataFrame:
        return self.result.targets

    @property
    def book(self) -> pd.DataFrame:
        """The names held at the last session (the UI's preview of the book)."""
        t = self.targets
        latest = t[t["date"] == t["date"].max()]
        return latest[latest["weight"].abs() > EPS][["symbol", "score", "weight"]]


def label_columns(spec: StrategySpec) -> list[str]:
    """The labels columns the step reads: the one the signal is judged against and, for a model
    signal, the label it trains on and when that label is known (a 10-year read of every label
    column cost more than the targets)."""
    columns = ["date", "symbol", label_column(QUALITY_HORIZON)]
    if spec.signal.kind == "model":
        m = spec.signal.model
        assert m is not None  # Signal._one_source: kind "model" has a model
        columns += [m.label, exit_column(m.horizon)]
    return list(dict.fromkeys(columns))


def targets_partition(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    spec: StrategySpec,
    universe: Sequence[str],
    registry: Iterable[str],
    prev_weights: pd.Series | None,
    start,
    end,
    feature_dates: Mapping[str, pd.Index] | None = None,
    predictions: pd.DataFrame | None = None,
    history: FeatureHistory | None = None,
) -> TargetsPartition:
    """The strategy's targets for every session in [start, end], audited.

    ``features`` and ``labels`` are the universe's rows from the training window's first session
    (the start for a signal without a model) to ``end``; ``registry`` the symbol registry's
    tickers; ``prev_weights`` the stored book of the session before ``start``; ``predictions``
    a model strategy's published scores over [start, end] (None: the model trains here). Features
    missing for a session of the partition fail ``upstream_complete`` and no targets are computed.
    ``history``: the features' windows and the sessions stored (an empty book's warning names them).
    """
    if feature_dates is None:  # one frame from one set: the default features
        feature_dates = {"features": pd.Index(features["date"].unique())}
    lo = pd.Timestamp(start)
    upstream = upstream_complete(
        {table: (dates[dates >= lo], table) for table, dates in feature_dates.items()}, start, end
    )
    if upstream.passed:
        model = spec.signal.kind == "model"
        result = compute_targets(
            features,
            spec,
            universe,
            start,
            end,
            prev_weights=prev_weights,
            labels=labels if model else None,
            predictions=predictions if model else None,
        )
    else:
        result = TargetsResult(empty_targets(), pd.Series(dtype=float))
    stats = book_stats(result.targets, result.turnover)
    quality = signal_quality_wide(*result.grid, labels) if result.grid is not None else None
    if quality is None:  # no grid (no session computed) or a label twice: the frame's join
        quality = signal_quality(result.targets, labels)
    targets = result.targets
    latest = targets[targets["date"] == targets["date"].max()]
    report = strategy_summary_markdown(
        spec, start, end, universe, stats, quality, result.violations, result.notes, latest
    )
    figures: dict[str, float | int] = {
        "universe": len(universe),
        "constraint_violations": len(result.violations),
        **{k: float(v) for k, v in stats.items()},
        **{k: float(v) for k, v in quality.items()},
    }
    rules = [
        *targets_gate(targets, spec, registry),
        book_not_empty(targets, spec, result.notes, period_label(start, end), history),
    ]
    if not upstream.passed:  # the rules saw no rows: not evaluated, not "passed"
        rules = not_evaluated(rules, inputs_missing_reason(upstream))
    return TargetsPartition(result, [upstream, *rules], figures, report)
