"""Sweep assets: one ``<sweep>/experiment_results`` asset per ``sweeps/*.yaml`` (its own lineage
and history; one run per sweep, every variant in memory on the shared arrays)."""

import logging
from pathlib import Path

import dagster as dg

from quantlab_assets.common import settings
from quantlab_assets.common.versions import content_hash
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import column_schema, detail, preview
from quantlab_assets.research.api import read_data
from quantlab_assets.research.sweep_report import leaderboard_markdown
from quantlab_assets.research.sweep_run import run_sweep
from quantlab_assets.research.sweep_spec import Sweep, SweepError, load_sweep, sweep_features, sweep_history_from
from quantlab_assets.research.sweep_store import EXPERIMENT_RESULTS, store_sweep
from quantlab_assets.resources import ArtifactsResource, WarehouseResource

GROUP = "research"
log = logging.getLogger(__name__)


def sweeps_dir() -> Path:
    """``QUANTLAB_SWEEPS`` or ``sweeps/`` at the project root."""
    return settings.sweeps_dir()


def load_sweeps() -> list[Sweep]:
    """Valid sweep files; a bad one is logged with its file and field and skipped."""
    out = []
    for path in sorted(sweeps_dir().glob("*.y*ml")):
        try:
            out.append(load_sweep(path))
        except SweepError as exc:
            log.warning("sweep file skipped: %s", exc)
    return out


def build_sweep_asset(sweep: Sweep) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey([sweep.name, "experiment_results"]),
        group_name=GROUP,
        kinds={"duckdb", "numpy"},
        # No lineage edge to features/ohlcv: the daily chain is ``ohlcv`` and everything downstream,
        # and a sweep is run on demand, not every evening.
        code_version=content_hash(str(sorted(v.spec_hash for v in sweep.variants))),
        description=f"Sweep '{sweep.name}': {len(sweep.variants)} variants of one strategy, in-sample and "
        f"out-of-sample KPIs, leaderboard and overfitting statistics. {sweep.description}",
        metadata={"sweep_file": sweep.source, "reads": "features, ohlcv (labels for model signals)"},
        owners=["team:strategy_lab"],
    )
    def _sweep(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        market_data: MarketDataResource,
        feature_store: FeatureStoreResource,
        artifacts: ArtifactsResource,
    ):
        model = any(v.spec.signal.kind == "model" for v in sweep.variants)
        with warehouse.get_connection() as con:
            data = read_data(
                con,
                sweep.start,
                sweep.end,
                market_data.registry(),
                sweep_features(sweep),
                sweep_history_from(sweep),
                labels=model,
                preset=feature_store.preset(),
            )
        result = run_sweep(sweep, data, say=context.log.info)
        with warehouse.get_connection() as con:
            exp_id, stored = store_sweep(con, sweep, result, data)
        report = leaderboard_markdown(sweep, result)
        artifacts.write_report(context.run.run_id, f"sweep_{sweep.name}.md", report)
        return dg.MaterializeResult(metadata=_sweep_metadata(context, sweep, result, exp_id, stored, report))

    return _sweep


def _sweep_metadata(context, sweep: Sweep, result, exp_id: str, stored, report: str) -> dict:
    st = result.statistics[0]
    top = stored.sort_values("is_rank")[["variant", "params", "is_sharpe", "oos_sharpe", "turnover", "costs"]]
    return {
        "dagster/row_count": len(stored),
        "dagster/column_schema": column_schema(EXPERIMENT_RESULTS),
        "experiment_id": exp_id,
        "variants": len(stored),
        "best_variant": st["best"],
        "best_oos_sharpe": float(st["best_oos_sharpe"]),
        "deflated_sharpe_ratio": float(st["dsr"]),
        "is_oos_rank_correlation": float(st["rank_corr"]),
        "leaderboard": detail(context, report, f"sweep_{sweep.name}.md"),
        "top_variants": preview(top, 10),
    }


SWEEPS = load_sweeps()
sweep_assets = [build_sweep_asset(s) for s in SWEEPS]
