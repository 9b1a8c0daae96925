"""One partition of ``features`` / ``labels``: the candidate rows and the audit of exactly those rows.

Write-audit-publish (``common.publish``): the asset reads its inputs once, calls one of these
functions, and publishes the candidate rows only when no blocking rule of the returned gate
failed; otherwise the stored rows stay as they were. The gate's results are the asset's checks
in the UI, so what the UI shows is what was judged before anything was published.

When an input rule fails (ohlcv missing for a session, or invalid ohlcv rows in the window),
nothing is computed: the candidate is empty and the other rules are reported as not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.gates import GateResult, not_evaluated, upstream_complete
from quantlab_assets.common.publish import blocking_failures
from quantlab_assets.feature_store.core.features import compute_features
from quantlab_assets.feature_store.core.gate import features_gate, labels_gate, ohlcv_valid
from quantlab_assets.feature_store.core.labels import (
    MAX_FORWARD_SESSIONS,
    compute_labels,
    pending_counts,
    pending_counts_by_day,
)
from quantlab_assets.feature_store.core.preset import FeaturePreset
from quantlab_assets.feature_store.core.profile import FeatureProfile, profile_features, profile_markdown
from quantlab_assets.feature_store.core.schema import LABELS
from quantlab_assets.feature_store.core.store import (
    LEAKAGE_PROBE_SESSIONS,
    empty_features,
    lookback_start,
    sample_dates,
)


@dataclass(frozen=True)
class FeatureLimits:
    """The features gate's and profile's limits (``FeatureStoreResource`` fields)."""

    max_missing_rate: float
    sample_dates: int
    corr_threshold: float
    psi_threshold: float
    drift_reference_sessions: int


@dataclass(frozen=True)
class FeaturesPartition:
    """Candidate feature rows, their audit, and the profile report (``""`` when nothing was computed)."""

    frame: pd.DataFrame
    gate: list[GateResult]
    profile: FeatureProfile | None
    report: str


@dataclass(frozen=True)
class LabelsPartition:
    """Candidate label rows, their audit, and the pending counts (in total and per decision date)."""

    frame: pd.DataFrame
    gate: list[GateResult]

    @property
    def pending(self) -> dict[str, int]:
        return pending_counts(self.frame)

    @property
    def pending_by_day(self) -> dict[pd.Timestamp, dict[str, int]]:
        return pending_counts_by_day(self.frame)


def features_read_window(start, end, preset: FeaturePreset) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The ohlcv dates the features of [start, end] read: each date's lookback, and the bars
    after ``end`` that the leakage probe perturbs."""
    return lookback_start(start, preset), shift_sessions(end, LEAKAGE_PROBE_SESSIONS)


def reference_window(start, sessions: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The stored feature dates the drift of [start, ...] is measured against: ``sessions`` before it."""
    return shift_sessions(start, -sessions), shift_sessions(start, -1)


def labels_read_window(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The ohlcv dates the labels of [start, end] read: up to the last exit bar of ``end``."""
    return pd.Timestamp(start), shift_sessions(end, MAX_FORWARD_SESSIONS)


def _inputs_gate(bars: pd.DataFrame, start, end) -> list[GateResult]:
    """upstream_complete (every session of [start, end] has ohlcv rows) and ohlcv_valid."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    present = bars["date"][(bars["date"] >= lo) & (bars["date"] <= hi)].unique()
    return [upstream_complete({"ohlcv": (present, "ohlcv")}, start, end), ohlcv_valid(bars)]


def _input_failure(inputs: list[GateResult]) -> str:
    failed = [g.name for g in blocking_failures(inputs)]
    return f"{' and '.join(failed)} failed, nothing was computed" if failed else ""


def features_partition(
    bars: pd.DataFrame,
    listings: pd.DataFrame,
    reference: pd.DataFrame,
    preset: FeaturePreset,
    start,
    end,
    limits: FeatureLimits,
) -> FeaturesPartition:
    """The features of [start, end] and the gate's verdict on exactly those rows.

    Parameters
    ----------
    bars : ohlcv over ``features_read_window(start, end, preset)``. Each date is computed from
        the bars up to ``end`` only; the later ones serve the leakage probe.
    listings : ``read_listings`` of the bars' symbols (first_date, first_bar).
    reference : stored features over ``reference_window(start, limits.drift_reference_sessions)``.
    """
    upto_end = (bars["date"] <= pd.Timestamp(end)).to_numpy()
    window = bars if upto_end.all() else bars[upto_end]  # a backfill to today reads nothing later
    inputs = _inputs_gate(window, start, end)
    reason = _input_failure(inputs)
    if reason:
        empty = empty_features(preset)
        rules = features_gate(empty, bars.iloc[:0], list(empty.columns), listings, preset, [], limits.max_missing_rate)
        return FeaturesPartition(empty, inputs + not_evaluated(rules, reason), None, "")
    frame = compute_features(window, preset, start, end)
    dates = sample_dates(start, end, limits.sample_dates)
    gate = inputs + features_gate(frame, bars, list(frame.columns), listings, preset, dates, limits.max_missing_rate)
    profile = profile_features(frame, preset.feature_names, reference, limits.corr_threshold, limits.psi_threshold)
    ref_label = (
        f"the {limits.drift_reference_sessions} sessions before {pd.Timestamp(start).date()}"
        if len(reference)
        else "no stored reference"
    )
    refused = " (refused by the audit: stored rows kept)" if blocking_failures(gate) else ""
    title = f"{preset.name} {start}..{end}{refused}"
    return FeaturesPartition(frame, gate, profile, profile_markdown(profile, title, ref_label))


def labels_partition(bars: pd.DataFrame, start, end) -> LabelsPartition:
    """The labels of [start, end] and the gate's verdict on exactly those rows; ``bars``: ohlcv
    over ``labels_read_window(start, end)``."""
    inputs = _inputs_gate(bars, start, end)
    reason = _input_failure(inputs)
    if reason:
        empty = pd.DataFrame(columns=LABELS.column_names)
        return LabelsPartition(empty, inputs + not_evaluated(labels_gate(empty, bars.iloc[:0]), reason))
    frame = compute_labels(bars, start, end)
    return LabelsPartition(frame, inputs + labels_gate(frame, bars))
