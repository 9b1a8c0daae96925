"""The feature store's assets: ``features`` (with its profile) and ``labels``."""

import dagster as dg

from quantlab_assets.common import settings
from quantlab_assets.common.publish import Published, Slice, audit_and_publish
from quantlab_assets.common.warehouse import read_slice
from quantlab_assets.data_curator.assets import ohlcv
from quantlab_assets.data_curator.core.bars import read_bars, read_listings
from quantlab_assets.feature_store.checks import features_check_specs, labels_check_specs
from quantlab_assets.feature_store.core.labels import MAX_FORWARD_SESSIONS
from quantlab_assets.feature_store.core.preset import FeaturePreset
from quantlab_assets.feature_store.core.schema import LABELS
from quantlab_assets.feature_store.core.sets import FeatureSet, default_set, load_feature_sets
from quantlab_assets.feature_store.core.step import (
    FeaturesPartition,
    features_partition,
    features_read_window,
    labels_partition,
    labels_read_window,
    reference_window,
)
from quantlab_assets.feature_store.core.store import preset_version
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import column_schema, detail, preview, published_results
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


def _lineage_preset(feature_store: FeatureStoreResource) -> FeaturePreset:
    """The run's preset, which must be the one the lineage (lookback mapping, code version) was built from."""
    preset = feature_store.preset()
    if preset_version(preset) != preset_version(PRESET):
        raise dg.Failure(
            description=f"features: the run's preset {preset.name!r} is not the preset "
            f"{PRESET.name!r} the lineage was built from (lookback, code version): set "
            "QUANTLAB_FEATURE_PRESET and reload the code location instead of preset_file"
        )
    return preset


def _features_metadata(part: FeaturesPartition, outcome: Published, fs: FeatureSet, psi_threshold: float):
    """The published run's figures: rows, schema, preset and the profile's headline numbers."""
    profile = part.profile
    preset = fs.preset
    assert profile is not None  # published, so the inputs passed and the rows were profiled
    return {
        "dagster/row_count": outcome.rows.get(fs.table, 0),
        "dagster/column_schema": column_schema(fs.schema),
        "preset": f"{preset.name}@{preset_version(preset)}",
        "features": len(preset.feature_names),
        "warm_rows": profile.warm_rows,
        "max_missing_rate": float(profile.missing.max()) if len(profile.missing) else 0.0,
        "correlated_pairs": len(profile.correlated),
        "drifted_features": int((profile.drift["psi"] > psi_threshold).sum()) if len(profile.drift) else 0,
        "preview": preview(part.frame.head(10)),
    }


@dg.asset(
    name="features",
    group_name=GROUP,
    kinds={"duckdb", "numpy"},
    deps=[dg.AssetDep(ohlcv, partition_mapping=features_lookback)],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version=preset_version(PRESET),
    check_specs=features_check_specs(),
    owners=["team:feature_store"],
)
def features(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    feature_store: FeatureStoreResource,
):
    """Leakage-free features of the preset per (date, symbol), computed on columns from each
    date's own lookback window, audited in memory and published only when the gate passes
    (else the stored rows are kept); writes ``reports/feature_profile.md`` (missing / correlation / drift)."""
    yield from _feature_set_step(
        context, warehouse, artifacts, feature_store, default_set(_lineage_preset(feature_store))
    )


def _feature_set_step(context, warehouse, artifacts, feature_store: FeatureStoreResource, fs: FeatureSet):
    """One feature set's partition: read, compute and audit, publish to the set's own table."""
    start, end = partition_dates(context)
    preset, schema = fs.preset, fs.schema
    report_name = "feature_profile.md" if fs.table == "features" else f"feature_profile_{fs.name}.md"
    with warehouse.get_connection() as con:
        bars = read_bars(con, *features_read_window(start, end, preset))
        listings = read_listings(con, bars["symbol"].unique())
        reference = read_slice(con, schema, *reference_window(start, feature_store.drift_reference_sessions))
    part = features_partition(bars, listings, reference, preset, start, end, feature_store.limits())
    with warehouse.get_connection() as con:
        outcome = audit_and_publish(
            con, [Slice(schema, part.frame)], part.gate, start, end, contract=fs.table, run_id=context.run.run_id
        )
    if part.report:  # also for refused rows: the profile helps to see what was wrong
        artifacts.write_report(context.run.run_id, report_name, part.report)
    metadata = _features_metadata(part, outcome, fs, feature_store.psi_threshold) if outcome.published else {}
    latest = {"run_profile": detail(context, part.report, report_name)}
    yield from published_results(context, outcome, fs.asset, metadata, dates=part.frame["date"], latest=latest)


# Extra feature sets beside the default (core/sets.py): one asset and table each, read when the
# code location loads (QUANTLAB_FEATURE_SETS, else the packaged presets/sets).
FEATURE_SETS = load_feature_sets(PRESET, settings.feature_sets_dir())


def build_feature_set_asset(fs: FeatureSet) -> dg.AssetsDefinition:
    """``features_<set>``: the set's features, with the same gate and step as ``features``, its
    own table and code version; it never reads or writes the default features."""
    lookback = dg.TimeWindowPartitionMapping(
        start_offset=-weekdays_spanning(fs.preset.lookback_sessions),
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )

    @dg.asset(
        name=fs.asset,
        group_name=GROUP,
        kinds={"duckdb", "numpy"},
        deps=[dg.AssetDep(ohlcv, partition_mapping=lookback)],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=preset_version(fs.preset),
        check_specs=features_check_specs(fs.asset),
        owners=["team:feature_store"],
        description=f"Feature set {fs.name!r} ({len(fs.preset.feature_names)} features: "
        f"{', '.join(fs.preset.feature_names)}) in its own table {fs.table}, beside the default "
        "features: leakage-free, audited in memory, published only when the gate passes.",
    )
    def _feature_set(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        artifacts: ArtifactsResource,
        feature_store: FeatureStoreResource,
    ):
        yield from _feature_set_step(context, warehouse, artifacts, feature_store, fs)

    return _feature_set


feature_set_assets = [build_feature_set_asset(fs) for fs in FEATURE_SETS[1:]]


@dg.asset(
    name="labels",
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=[dg.AssetDep(ohlcv, partition_mapping=labels_lookahead)],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=labels_check_specs(),
    owners=["team:feature_store"],
)
def labels(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Forward returns over 1, 5 and 20 sessions: a signal known at close D enters at the next
    open and exits at the open h sessions later. NULL (with its exit date) until that bar exists.
    Audited in memory and published only when the gate passes (else the stored rows are kept)."""
    start, end = partition_dates(context)
    with warehouse.get_connection() as con:
        bars = read_bars(con, *labels_read_window(start, end))
    part = labels_partition(bars, start, end)
    with warehouse.get_connection() as con:
        outcome = audit_and_publish(
            con, [Slice(LABELS, part.frame)], part.gate, start, end, contract="labels", run_id=context.run.run_id
        )
    metadata = {
        "dagster/row_count": outcome.rows.get("labels", 0),
        "dagster/column_schema": column_schema(LABELS),
        **part.pending,
        "preview": preview(part.frame.head(10)),
    }
    yield from published_results(
        context, outcome, "labels", metadata, dates=part.frame["date"], per_day=part.pending_by_day
    )
