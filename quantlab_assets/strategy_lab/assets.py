"""The strategy lab's asset factory: one ``<strategy>/<strategy>_targets`` asset (and its checks) per file."""

import hashlib
import logging
from pathlib import Path

import dagster as dg
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.gates import upstream_complete
from quantlab_assets.common.warehouse import read_slice, replace_strategy_slice
from quantlab_assets.data_curator.core.registry import SymbolRegistry
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.feature_store.assets import features as features_asset
from quantlab_assets.feature_store.assets import labels as labels_asset
from quantlab_assets.feature_store.core.labels import LABELS
from quantlab_assets.feature_store.core.store import features_schema
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import (
    add_partition_metadata,
    column_schema,
    detail,
    gate_check_result,
    preview,
    upstream_spec,
)
from quantlab_assets.partitions import (
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
    weekdays_spanning,
)
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.core.construct import universe_filter
from quantlab_assets.strategy_lab.core.evaluation import book_stats, signal_quality, strategy_summary_markdown
from quantlab_assets.strategy_lab.core.spec import StrategySpec, discover
from quantlab_assets.strategy_lab.core.targets import TARGETS, compute_targets
from quantlab_assets.strategy_lab.resources import strategies_dir

GROUP = "strategy_lab"
log = logging.getLogger(__name__)


def strategy_key(name: str, stage: str) -> dg.AssetKey:
    """``<strategy>/<strategy>_<stage>``: the lineage graph labels a node with the key's last part,
    so that part carries the strategy's name (three strategies' ``targets`` would look identical)."""
    return dg.AssetKey([name, f"{name}_{stage}"])


def targets_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "targets")


def read_previous_weights(con, name: str, start) -> pd.Series | None:
    """The strategy's book at the session before ``start`` (None if never materialized)."""
    prev_day = shift_sessions(start, -1)
    prev = read_slice(con, TARGETS, prev_day, prev_day)
    prev = prev[prev["strategy"] == name]
    return prev.set_index("symbol")["weight"] if len(prev) else None


def universe_of(registry: SymbolRegistry, spec: StrategySpec) -> list[str]:
    return universe_filter(registry.tickers, registry.sector_of(), spec)


def build_targets_asset(spec: StrategySpec) -> dg.AssetsDefinition:
    model = spec.signal.model if spec.signal.kind == "model" else None
    # A model signal trains on the features and labels of its window before the decision date.
    history = dg.TimeWindowPartitionMapping(
        start_offset=-weekdays_spanning(model.train_sessions + model.refit_every) if model else 0,
        end_offset=0,
        allow_nonexistent_upstream_partitions=True,
    )
    deps = [
        dg.AssetDep(features_asset, partition_mapping=history),
        dg.AssetDep(targets_key(spec.name), partition_mapping=PREVIOUS_SESSION),
    ]
    if model:
        deps.append(dg.AssetDep(labels_asset, partition_mapping=history))

    @dg.asset(
        key=targets_key(spec.name),
        group_name=GROUP,
        kinds={"duckdb", "pandas"},
        deps=deps,
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12],
        description=f"Target weights of strategy '{spec.name}': {spec.description} "
        "Decided at each close from that day's features; filled by the backtest at the next open.",
        metadata={"strategy_file": f"strategies/{spec.name}.yaml"},
        check_specs=[upstream_spec(targets_key(spec.name))],
        owners=["team:strategy_lab"],
    )
    def _targets(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        market_data: MarketDataResource,
        feature_store: FeatureStoreResource,
        artifacts: ArtifactsResource,
    ):
        start, end = partition_dates(context)
        registry = market_data.registry()
        universe = universe_of(registry, spec)
        fschema = features_schema(feature_store.preset())
        load_from = shift_sessions(start, -(model.train_sessions + model.refit_every)) if model else start
        with warehouse.get_connection() as con:
            feats = read_slice(
                con, fschema, load_from, end, columns=["date", "symbol", *spec.features_used()], symbols=universe
            )
            labels = read_slice(con, LABELS, load_from, end, symbols=universe)
            in_range = feats["date"][feats["date"] >= pd.Timestamp(start)].unique()
            gate = upstream_complete({"features": (in_range, "features")}, start, end)
            if not gate.passed:
                add_partition_metadata(context, [], written=False)
                yield dg.MaterializeResult(metadata={"dagster/row_count": 0, "not_written": gate.description})
                yield gate_check_result(gate, targets_key(spec.name))
                return
            prev = read_previous_weights(con, spec.name, start)
            result = compute_targets(
                feats, spec, universe, start, end, prev_weights=prev, labels=labels if model else None
            )
            written = replace_strategy_slice(con, TARGETS, result.targets, spec.name, start, end)
        quality = signal_quality(result.targets, labels)
        stats = book_stats(result.targets, result.turnover)
        latest = result.targets[result.targets["date"] == result.targets["date"].max()]
        report = strategy_summary_markdown(
            spec, start, end, universe, stats, quality, result.violations, result.notes, latest
        )
        artifacts.write_section(context.run.run_id, "strategy_summary.md", spec.name, report, title="Strategy summary")
        add_partition_metadata(
            context,
            result.targets["date"],
            per_day={
                day: {
                    "names": int((g["weight"].abs() > 1e-12).sum()),
                    "gross": float(g["weight"].abs().sum()),
                    "rebalance": bool(g["rebalance"].iloc[0]),
                }
                for day, g in result.targets.groupby("date")
            },
            latest={"run_summary": detail(context, report, "strategy_summary.md")},
        )
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "dagster/column_schema": column_schema(TARGETS),
                "universe": len(universe),
                "constraint_violations": len(result.violations),
                **{k: float(v) for k, v in stats.items()},
                **{k: float(v) for k, v in quality.items()},
                "book": preview(latest[latest["weight"].abs() > 1e-12][["symbol", "score", "weight"]], 20),
            }
        )
        yield gate_check_result(gate, targets_key(spec.name))

    return _targets


def load_strategy_specs(known_features: set[str]) -> tuple[list[StrategySpec], dict[str, str]]:
    """Valid strategy files and {file: message} for the invalid ones; an invalid file is logged
    with its file and field and skipped, so it never takes the other strategies or the UI down."""
    specs, errors = discover(strategies_dir(), known_features)
    for message in errors.values():
        log.warning("strategy file skipped: %s", message)
    return specs, errors


def _files_table(errors: dict[str, str]) -> str:
    rows = pd.DataFrame(
        [{"file": Path(p).name, "message": m.replace("|", "/")} for p, m in errors.items()], columns=["file", "message"]
    )
    return markdown_table(rows, max_rows=50)


def build_strategy_files_asset(
    specs: list[StrategySpec], errors: dict[str, str], known_features: set[str]
) -> dg.AssetsDefinition:
    """``strategy_files``: where an invalid strategy file shows in the UI (the asset's description
    and metadata from the moment the definitions load; its blocking check once materialized)."""
    summary = f"{len(specs)} valid ({', '.join(s.name for s in specs) or 'none'}); " + (
        f"**{len(errors)} invalid, skipped**: " + "; ".join(errors.values()) if errors else "none invalid"
    )

    @dg.asset(
        name="strategy_files",
        group_name=GROUP,
        kinds={"yaml"},
        description=f"The strategy files of {strategies_dir()} (QUANTLAB_STRATEGIES); each valid file becomes "
        f"its own targets, backtest and approvals assets. At load: {summary}",
        metadata={
            "directory": str(strategies_dir()),
            "valid_strategies": ", ".join(s.name for s in specs),
            "invalid_files": dg.MetadataValue.md(_files_table(errors) if errors else "_none_"),
        },
        check_specs=[
            dg.AssetCheckSpec(
                "all_files_valid",
                asset="strategy_files",
                blocking=True,
                description="Every strategy file loads and validates (file and field named).",
            )
        ],
        owners=["team:strategy_lab"],
    )
    def strategy_files(context: dg.AssetExecutionContext):
        # Re-read now: the files may have changed since the definitions loaded.
        now_specs, now_errors = discover(strategies_dir(), known_features)
        yield dg.MaterializeResult(
            metadata={
                "valid_strategies": ", ".join(s.name for s in now_specs),
                "invalid_files": dg.MetadataValue.md(_files_table(now_errors) if now_errors else "_none_"),
                "reload_needed": sorted(s.name for s in now_specs) != sorted(s.name for s in specs),
            }
        )
        yield dg.AssetCheckResult(
            check_name="all_files_valid",
            passed=not now_errors,
            description=f"all {len(now_specs)} strategy files valid"
            if not now_errors
            else f"{len(now_errors)} invalid strategy file(s), skipped: " + "; ".join(now_errors.values()),
            metadata={"invalid_files": dg.MetadataValue.md(_files_table(now_errors) if now_errors else "_none_")},
        )

    return strategy_files
