"""The feature store's assets: ``features`` (with its profile) and ``labels``."""

import dagster as dg

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.gates import upstream_complete
from quantlab_assets.common.warehouse import read_slice, replace_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.data_curator.core.bars import read_bars
from quantlab_assets.feature_store.core.features import compute_features
from quantlab_assets.feature_store.core.labels import HORIZONS, LABELS, MAX_FORWARD_SESSIONS, compute_labels
from quantlab_assets.feature_store.core.profile import profile_features, profile_markdown
from quantlab_assets.feature_store.core.store import (
    features_schema,
    invalid_bars,
    lookback_start,
    preset_version,
)
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import (
    add_partition_metadata,
    column_schema,
    detail,
    gate_check_result,
    preview,
    upstream_spec,
)
from quantlab_assets.partitions import partition_dates, trading_day_partitions, weekdays_spanning
from quantlab_assets.resources import ArtifactsResource, WarehouseResource

GROUP = "feature_store"
# The one preset of the definitions: the lookback mapping, the code version and the computation
# all use it (the resource's rule, read when the code location loads; a run configured with
# another preset fails instead of reading too little history).
PRESET = FeatureStoreResource().preset()
DEFAULT_PRESET = PRESET  # the name definitions.py imports

# Partition offsets count weekdays; holidays make sessions scarcer, hence weekdays_spanning.
features_lookback = dg.TimeWindowPartitionMapping(
    start_offset=-weekdays_spanning(PRESET.lookback_sessions), end_offset=0, allow_nonexistent_upstream_partitions=True
)
labels_lookahead = dg.TimeWindowPartitionMapping(
    start_offset=0, end_offset=weekdays_spanning(MAX_FORWARD_SESSIONS), allow_nonexistent_upstream_partitions=True
)


def _partition_bars(bars, start, end):
    return bars["date"][(bars["date"] >= str(start)) & (bars["date"] <= str(end))].unique()


FEATURE_CHECKS = [
    "no_lookahead_leakage",
    "incremental_equals_batch",
    "schema_matches_preset",
    "no_infinite_values",
    "missing_rate_after_warmup",
]


def _guard_bars(bars, asset: str) -> None:
    bad = invalid_bars(bars)
    if len(bad):
        first = bad.iloc[0]
        raise dg.Failure(
            description=f"{asset}: ohlcv has {len(bad)} invalid rows in the window it reads "
            f"(first: {first['symbol']} {first['date'].date()}); the ohlcv gate must pass first",
            metadata={"invalid_rows": preview(bad)},
        )


@dg.asset(
    name="features",
    group_name=GROUP,
    kinds={"duckdb", "numpy"},
    deps=[dg.AssetDep(ohlcv, partition_mapping=features_lookback)],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version=preset_version(PRESET),
    check_specs=[upstream_spec("features")],
    owners=["team:feature_store"],
)
def features(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    feature_store: FeatureStoreResource,
):
    """Leakage-free features of the preset per (date, symbol), computed on columns from each
    date's own lookback window; writes ``reports/feature_profile.md`` (missing / correlation / drift)."""
    start, end = partition_dates(context)
    preset = feature_store.preset()
    if preset_version(preset) != preset_version(PRESET):
        raise dg.Failure(
            description=f"features: the run's preset {preset.name!r} is not the preset "
            f"{PRESET.name!r} the lineage was built from (lookback, code version): set "
            "QUANTLAB_FEATURE_PRESET and reload the code location instead of preset_file"
        )
    schema = features_schema(preset)
    with warehouse.get_connection() as con:
        bars = read_bars(con, lookback_start(start, preset), end)
        gate = upstream_complete({"ohlcv": (_partition_bars(bars, start, end), "ohlcv")}, start, end)
        if not gate.passed:
            add_partition_metadata(context, [], written=False)
            yield dg.MaterializeResult(metadata={"dagster/row_count": 0, "not_written": gate.description})
            yield gate_check_result(gate, "features")
            return
        _guard_bars(bars, "features")
        frame = compute_features(bars, preset, start, end)
        written = replace_slice(con, schema, frame, start, end)
        ref_start = shift_sessions(start, -feature_store.drift_reference_sessions)
        reference = read_slice(con, schema, ref_start, shift_sessions(start, -1))
    profile = profile_features(
        frame, preset.feature_names, reference, feature_store.corr_threshold, feature_store.psi_threshold
    )
    ref_label = (
        f"the {feature_store.drift_reference_sessions} sessions before {start}"
        if len(reference)
        else "no stored reference"
    )
    report = profile_markdown(profile, f"{preset.name} {start}..{end}", ref_label)
    artifacts.write_report(context.run.run_id, "feature_profile.md", report)
    worst_missing = profile.missing.max() if len(profile.missing) else 0.0
    drifted = int((profile.drift["psi"] > feature_store.psi_threshold).sum()) if len(profile.drift) else 0
    add_partition_metadata(
        context, frame["date"], latest={"run_profile": detail(context, report, "feature_profile.md")}
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "dagster/column_schema": column_schema(schema),
            "preset": f"{preset.name}@{preset_version(preset)}",
            "features": len(preset.feature_names),
            "warm_rows": profile.warm_rows,
            "max_missing_rate": float(worst_missing),
            "correlated_pairs": len(profile.correlated),
            "drifted_features": drifted,
            "preview": preview(frame.head(10)),
        }
    )
    yield gate_check_result(gate, "features")


@dg.asset(
    name="labels",
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=[dg.AssetDep(ohlcv, partition_mapping=labels_lookahead)],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[upstream_spec("labels")],
    owners=["team:feature_store"],
)
def labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Forward returns over 1, 5 and 20 sessions: a signal known at close D enters at the next
    open and exits at the open h sessions later. NULL (with its exit date) until that bar exists."""
    start, end = partition_dates(context)
    with warehouse.get_connection() as con:
        bars = read_bars(con, start, shift_sessions(end, MAX_FORWARD_SESSIONS))
        gate = upstream_complete({"ohlcv": (_partition_bars(bars, start, end), "ohlcv")}, start, end)
        if not gate.passed:
            add_partition_metadata(context, [], written=False)
            yield dg.MaterializeResult(metadata={"dagster/row_count": 0, "not_written": gate.description})
            yield gate_check_result(gate, "labels")
            return
        _guard_bars(bars, "labels")
        frame = compute_labels(bars, start, end)
        written = replace_slice(con, LABELS, frame, start, end)
    pending = {f"pending_fwd_ret_{h}": int(frame[f"fwd_ret_{h}"].isna().sum()) for h in HORIZONS}
    add_partition_metadata(
        context,
        frame["date"],
        per_day={
            day: {f"pending_fwd_ret_{h}": int(g[f"fwd_ret_{h}"].isna().sum()) for h in HORIZONS}
            for day, g in frame.groupby("date")
        },
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "dagster/column_schema": column_schema(LABELS),
            **pending,
            "preview": preview(frame.head(10)),
        }
    )
    yield gate_check_result(gate, "labels")
