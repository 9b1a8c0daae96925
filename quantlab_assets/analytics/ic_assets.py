"""``feature_ic``: which features of the preset predict which label horizon (alphalens-style).

Partitioned by trading day like the chain (it runs in ``daily_chain``, whose assets share one
partitions definition) with single-run backfills: a run reports as of its last date over the
``lookback_sessions`` before it, so a 10-year backfill is one computation and a daily run
refreshes the report with the labels that became known that day.
"""

from datetime import timedelta

import dagster as dg
from pydantic import Field

from quantlab_assets.analytics.core.factor_ic import (
    DEFAULT_MIN_NAMES,
    DEFAULT_QUANTILES,
    factor_ic,
    feature_ic_markdown,
    ic_decay_png,
    ranked,
)
from quantlab_assets.analytics.tearsheet_assets import report_metadata
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import read_slice
from quantlab_assets.feature_store.assets import GROUP, features, labels
from quantlab_assets.feature_store.core.schema import HORIZONS, LABELS, features_schema
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import png_md, preview
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import ArtifactsResource, WarehouseResource


class FeatureICConfig(dg.Config):
    lookback_sessions: int = Field(default=2520, ge=20, description="decision dates before the as-of date")
    quantiles: int = Field(default=DEFAULT_QUANTILES, ge=2, le=20)
    min_names: int = Field(default=DEFAULT_MIN_NAMES, ge=2, description="dates with fewer names are skipped (counted)")


@dg.asset(
    name="feature_ic",
    group_name=GROUP,
    kinds={"numpy", "matplotlib"},
    deps=[features, labels],
    partitions_def=trading_day_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=["team:feature_store"],
)
def feature_ic(
    context: dg.AssetExecutionContext,
    config: FeatureICConfig,
    warehouse: WarehouseResource,
    artifacts: ArtifactsResource,
    feature_store: FeatureStoreResource,
):
    """Per feature and label horizon, as of the run's last date: mean IC (Pearson) and rank IC
    (Spearman), ICIR, t-stat, share of dates with IC > 0, quintile mean forward returns and the
    top-minus-bottom spread, rank autocorrelation; overall and by year. Only labels known by the
    as-of date count (exit_date_h <= as-of). Writes reports/feature_ic.md and feature_ic_decay.png."""
    _, end = partition_dates(context)
    preset = feature_store.preset()
    start = shift_sessions(end, -config.lookback_sessions)
    with warehouse.get_connection() as con:
        feats = read_slice(con, features_schema(preset), start, end, columns=["date", "symbol", *preset.feature_names])
        labs = read_slice(con, LABELS, start, end)
    as_of = shift_sessions(end + timedelta(days=1), -1)  # the run's last session (a Friday owns its weekend)
    summary = factor_ic(feats, labs, preset.feature_names, HORIZONS, as_of, config.quantiles, config.min_names)
    table = ranked(summary)
    png = ic_decay_png(summary) if table["dates"].sum() > 0 else b""
    first = feats["date"].min() if len(feats) else start
    _write_reports(artifacts, context.run.run_id, summary, as_of, first, png)
    return dg.MaterializeResult(metadata=_metadata(context, summary, table, png, len(preset.feature_names)))


_RANKED_COLUMNS = [
    "feature",
    "horizon",
    "dates",
    "rank_ic_mean",
    "rank_ic_ir",
    "rank_ic_t",
    "ic_mean",
    "top_minus_bottom",
    "rank_autocorr",
    "skipped_few_names",
]


def _write_reports(artifacts: ArtifactsResource, run_id: str, summary, as_of, first, png: bytes) -> None:
    if png:
        (artifacts.run_dir(run_id) / "reports" / "feature_ic_decay.png").write_bytes(png)
    chart = "feature_ic_decay.png" if png else None
    artifacts.write_report(run_id, "feature_ic.md", feature_ic_markdown(summary, as_of, first, chart))
    artifacts.write_report(run_id, "feature_ic.csv", summary.to_csv(index=False))


def _metadata(context, summary, table, png: bytes, n_features: int) -> dict:
    best = table.iloc[0] if len(table) and table["dates"].iloc[0] > 0 else None
    light = {
        "dagster/row_count": len(summary),
        "features": n_features,
        "dates_scored": int(table["dates"].max()) if len(table) else 0,
        "cells_skipped": int(table["skipped_few_names"].sum() + table["skipped_constant"].sum()),
        "best_feature": f"{best['feature']} h={best['horizon']}" if best is not None else "n/a",
        "best_rank_ic_ir": float(best["rank_ic_ir"]) if best is not None else float("nan"),
    }
    heavy = {"ranked": preview(table[_RANKED_COLUMNS], rows=20)}
    if png:
        heavy["ic_decay"] = dg.MetadataValue.md(png_md(context, png, "IC decay", "feature_ic_decay"))
    return report_metadata(context, light, heavy)
