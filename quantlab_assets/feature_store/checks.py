"""The feature store's quality gate on features and labels; the rules are in ``core.gate``."""

import dagster as dg
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import read_slice, table_columns
from quantlab_assets.data_curator.core.bars import read_bars, read_listings
from quantlab_assets.feature_store.core.gate import features_gate, label_sample, labels_gate
from quantlab_assets.feature_store.core.labels import HORIZONS, LABELS
from quantlab_assets.feature_store.core.store import (
    features_schema,
    lookback_start,
    sample_dates,
)
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import gate_check_result
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource

_FEATURE_SPECS = [
    ("no_lookahead_leakage", "Sampled dates recomputed with every later bar perturbed: zero differences."),
    (
        "incremental_equals_batch",
        "Sampled dates recomputed alone from their lookback window equal the stored rows exactly.",
    ),
    (
        "schema_matches_preset",
        "Stored columns are exactly date, symbol, warm and the preset's features; no label column.",
    ),
    ("no_infinite_values", "No +/-inf in any feature."),
    ("missing_rate_after_warmup", "Share of NaN per feature after warm-up within the limit."),
]
_WARM_SPEC = ("history_complete", "Every row has its full lookback window (warn: ohlcv history missing).")


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset="features", blocking=True, description=desc, partitions_def=trading_day_partitions
        )
        for name, desc in _FEATURE_SPECS
    ]
    + [
        dg.AssetCheckSpec(
            _WARM_SPEC[0],
            asset="features",
            blocking=False,
            description=_WARM_SPEC[1],
            partitions_def=trading_day_partitions,
        )
    ],
)
def features_quality_gate(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
):
    """Re-derives sampled dates from ohlcv two ways and compares with the stored features exactly."""
    start, end = partition_dates(context)
    preset = feature_store.preset()
    schema = features_schema(preset)
    dates = sample_dates(start, end, feature_store.check_sample_dates)
    with warehouse.get_connection() as con:
        stored = read_slice(con, schema, start, end)
        bars = read_bars(con, lookback_start(min(dates), preset) if dates else start, shift_sessions(end, 10))
        columns = table_columns(con, schema.name)
        listings = read_listings(con, stored["symbol"].unique())
    for result in features_gate(stored, bars, columns, listings, preset, dates, feature_store.max_missing_rate):
        check = gate_check_result(result, "features")
        if result.name == "no_lookahead_leakage":  # which dates were sampled: text, not a figure
            check = dg.AssetCheckResult(
                asset_key=check.asset_key,
                check_name=check.check_name,
                passed=check.passed,
                severity=check.severity,
                description=check.description,
                metadata={"sample_dates": ", ".join(str(d.date()) for d in dates), **check.metadata},
            )
        yield check


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "labels_match_prices",
            asset="labels",
            blocking=True,
            partitions_def=trading_day_partitions,
            description="Sampled labels recomputed from ohlcv opens equal the stored ones.",
        ),
        dg.AssetCheckSpec(
            "labels_pending",
            asset="labels",
            blocking=False,
            partitions_def=trading_day_partitions,
            description="Labels whose exit bar is not ingested yet (warning only).",
        ),
    ],
)
def labels_quality_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Labels are finite where available, and exactly next-open to open h sessions later."""
    start, end = partition_dates(context)
    with warehouse.get_connection() as con:
        stored = read_slice(con, LABELS, start, end)
        sample = label_sample(stored)
        bars = (
            read_bars(
                con,
                sample["entry_date"].min(),
                sample[f"exit_date_{max(HORIZONS)}"].max(),
                symbols=sorted(sample["symbol"].unique()),
            )
            if len(sample)
            else pd.DataFrame()  # nothing sampled: no bars needed
        )
    for result in labels_gate(stored, bars):
        yield gate_check_result(result, "labels")
