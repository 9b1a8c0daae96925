"""The strategy lab's asset factory: one ``<strategy>/<strategy>_targets`` asset (and its checks) per file."""

import logging
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.publish import Slice, audit_and_publish
from quantlab_assets.common.versions import content_hash
from quantlab_assets.common.warehouse import read_slice, read_strategy_slice
from quantlab_assets.data_curator.core.bars import most_sessions_stored
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.feature_store.assets import FEATURE_SETS
from quantlab_assets.feature_store.assets import labels as labels_asset
from quantlab_assets.feature_store.core.schema import LABELS
from quantlab_assets.feature_store.core.sets import default_set, read_features, sets_for
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.metadata import column_schema, detail, preview, published_results
from quantlab_assets.partitions import (
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
    weekdays_spanning,
)
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.checks import predictions_check_specs, targets_check_specs
from quantlab_assets.strategy_lab.core.evaluation import book_per_day
from quantlab_assets.strategy_lab.core.gate import feature_history
from quantlab_assets.strategy_lab.core.predictions import fits_table, predictions_partition
from quantlab_assets.strategy_lab.core.schema import PREDICTIONS, TARGETS
from quantlab_assets.strategy_lab.core.spec import StrategySpec, discover
from quantlab_assets.strategy_lab.core.step import label_columns, targets_partition
from quantlab_assets.strategy_lab.core.targets import read_previous_weights
from quantlab_assets.strategy_lab.core.universe import universe_of
from quantlab_assets.strategy_lab.resources import strategies_dir

GROUP = "strategy_lab"
SCORE_COLUMNS = ["date", "symbol", "score"]  # what the targets read of the predictions
REPORT = "strategy_summary.md"  # the run's report file the strategies' summaries are sections of
log = logging.getLogger(__name__)


def strategy_key(name: str, stage: str) -> dg.AssetKey:
    """``<strategy>/<strategy>_<stage>``: the lineage graph labels a node with the key's last part,
    so that part carries the strategy's name (three strategies' ``targets`` would look identical)."""
    return dg.AssetKey([name, f"{name}_{stage}"])


def targets_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "targets")


def predictions_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "predictions")


def _history(model) -> dg.TimeWindowPartitionMapping:
    """A model trains on the features and labels of its window before the decision date."""
    return dg.TimeWindowPartitionMapping(
        start_offset=-weekdays_spanning(model.history), end_offset=0, allow_nonexistent_upstream_partitions=True
    )


def build_predictions_asset(spec: StrategySpec) -> dg.AssetsDefinition:
    """``<strategy>/<strategy>_predictions`` of a model strategy (docs/models.md)."""
    key = predictions_key(spec.name)
    model = spec.signal.model
    assert model is not None  # built for model strategies only

    tables = list(sets_for(FEATURE_SETS, model.features))

    @dg.asset(
        key=key,
        group_name=GROUP,
        kinds={"duckdb", "pandas"},
        deps=[
            *(dg.AssetDep(dg.AssetKey(table), partition_mapping=_history(model)) for table in tables),
            dg.AssetDep(labels_asset, partition_mapping=_history(model)),
        ],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=content_hash(spec.signal.model_dump_json()),
        description=f"Walk-forward {model.kind} predictions of strategy '{spec.name}' (score per date and symbol, "
        "with the model version and training range): trained at each refit on labels known then. "
        "Written, audited, published: rows that fail a blocking check are not published.",
        metadata={"strategy_file": f"strategies/{spec.name}.yaml", "model": model.kind},
        check_specs=predictions_check_specs(key),
        owners=["team:strategy_lab"],
    )
    def _predictions(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        market_data: MarketDataResource,
        feature_store: FeatureStoreResource,
    ):
        start, end = partition_dates(context)
        registry = market_data.registry()
        universe = universe_of(registry, spec)
        load_from = shift_sessions(start, -model.history)
        sets = (default_set(feature_store.preset()), *FEATURE_SETS[1:])
        with warehouse.get_connection() as con:
            feats, set_dates = read_features(con, sets, model.features, load_from, end, universe)
            labels = read_slice(con, LABELS, load_from, end, label_columns(spec), universe)
            part = predictions_partition(feats, labels, spec, universe, registry.tickers, start, end, set_dates)
            rows = Slice(PREDICTIONS, part.predictions, strategy=spec.name)
            outcome = audit_and_publish(
                con, [rows], part.gate, start, end, contract=f"predictions/{spec.name}", run_id=context.run.run_id
            )
        metadata = {
            "dagster/row_count": outcome.rows.get(PREDICTIONS.name, 0),
            "dagster/column_schema": column_schema(PREDICTIONS),
            **part.figures,
            "fits": preview(fits_table(part.walk_forward), 50),
        }
        yield from published_results(context, outcome, key, metadata, part.predictions["date"])

    return _predictions


def build_targets_asset(spec: StrategySpec) -> dg.AssetsDefinition:
    key = targets_key(spec.name)
    model = spec.signal.model if spec.signal.kind == "model" else None
    # The feature sets the strategy reads (the default ``features`` and/or ``features_<set>``); a
    # model strategy's training window is read by its predictions asset, not here.
    tables = list(sets_for(FEATURE_SETS, spec.features_used())) or [FEATURE_SETS[0].table]
    deps = [
        *(dg.AssetDep(dg.AssetKey(table)) for table in tables),
        dg.AssetDep(key, partition_mapping=PREVIOUS_SESSION),
    ]
    if model:  # a model strategy ranks its published predictions
        deps.append(dg.AssetDep(predictions_key(spec.name)))

    @dg.asset(
        key=key,
        group_name=GROUP,
        kinds={"duckdb", "pandas"},
        deps=deps,
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=content_hash(spec.version_json()),
        description=f"Target weights of strategy '{spec.name}': {spec.description} "
        "Decided at each close from that day's features; filled by the backtest at the next open. "
        "Written, audited, published: rows that fail a blocking check are not published.",
        metadata={"strategy_file": f"strategies/{spec.name}.yaml"},
        check_specs=targets_check_specs(key),
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
        sets = (default_set(feature_store.preset()), *FEATURE_SETS[1:])
        with warehouse.get_connection() as con:
            feats, set_dates = read_features(con, sets, spec.features_used(), start, end, universe)
            labels = read_slice(con, LABELS, start, end, label_columns(spec), universe)
            prev = read_previous_weights(con, spec.name, start)
            scores = read_strategy_slice(con, PREDICTIONS, spec.name, start, end, SCORE_COLUMNS) if model else None
            history = feature_history(sets, spec, most_sessions_stored(con, universe, end))  # an empty book's why
            part = targets_partition(
                feats, labels, spec, universe, registry.tickers, prev, start, end, set_dates, scores, history
            )
            targets = Slice(TARGETS, part.targets, strategy=spec.name)
            outcome = audit_and_publish(
                con, [targets], part.gate, start, end, contract=f"targets/{spec.name}", run_id=context.run.run_id
            )
        if outcome.published:
            artifacts.write_section(context.run.run_id, REPORT, spec.name, part.report, title="Strategy summary")
        metadata = {
            "dagster/row_count": outcome.rows.get(TARGETS.name, 0),
            "dagster/column_schema": column_schema(TARGETS),
            **part.figures,
            "book": preview(part.book, 20),
        }
        latest = {"run_summary": detail(context, part.report, REPORT)}
        per_day = book_per_day(part.targets)
        yield from published_results(
            context, outcome, key, metadata, part.targets["date"], per_day=per_day, latest=latest
        )

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


def _no_conflicts(specs: list[StrategySpec]) -> dict[str, list[str]]:
    return {}


def _conflicts_table(conflicts: dict[str, list[str]]) -> str:
    rows = pd.DataFrame(
        [{"strategy": n, "contradiction": m.replace("|", "/")} for n, ms in conflicts.items() for m in ms],
        columns=["strategy", "contradiction"],
    )
    return markdown_table(rows, max_rows=50) if len(rows) else "_none_"


def build_strategy_files_asset(
    specs: list[StrategySpec],
    errors: dict[str, str],
    known_features: set[str],
    conflicts: Callable[[list[StrategySpec]], dict[str, list[str]]] = _no_conflicts,
) -> dg.AssetsDefinition:
    """``strategy_files``: where an invalid strategy file shows in the UI (the asset's description
    and metadata from the moment the definitions load; its blocking check once materialized), and
    a valid one the supervisor can never approve (``conflicts``: the portfolio supervisor's
    verdict on the files, passed in by the definitions; a warning check once materialized)."""
    at_load = conflicts(specs)
    summary = f"{len(specs)} valid ({', '.join(s.name for s in specs) or 'none'}); " + (
        f"**{len(errors)} invalid, skipped**: " + "; ".join(errors.values()) if errors else "none invalid"
    )
    if at_load:
        summary += f"; **{len(at_load)} the supervisor rejects every invested day**: " + "; ".join(
            m for ms in at_load.values() for m in ms
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
            "supervisor_conflicts": dg.MetadataValue.md(_conflicts_table(at_load)),
        },
        check_specs=[
            dg.AssetCheckSpec(
                "all_files_valid",
                asset="strategy_files",
                blocking=True,
                description="Every strategy file loads and validates (file and field named).",
            ),
            dg.AssetCheckSpec(
                "supervisor_can_approve",
                asset="strategy_files",
                blocking=False,
                description="No strategy's constraints contradict the supervisor's risk rules so that every "
                "invested day is rejected (both files and fields named).",
            ),
        ],
        owners=["team:strategy_lab"],
    )
    def strategy_files(context: dg.AssetExecutionContext):
        # Re-read now: the files may have changed since the definitions loaded.
        now_specs, now_errors = discover(strategies_dir(), known_features)
        now_conflicts = conflicts(now_specs)
        yield dg.MaterializeResult(
            metadata={
                "valid_strategies": ", ".join(s.name for s in now_specs),
                "invalid_files": dg.MetadataValue.md(_files_table(now_errors) if now_errors else "_none_"),
                "supervisor_conflicts": dg.MetadataValue.md(_conflicts_table(now_conflicts)),
                "reload_needed": sorted(s.name for s in now_specs) != sorted(s.name for s in specs),
            }
        )
        messages = [m for ms in now_conflicts.values() for m in ms]
        yield dg.AssetCheckResult(
            check_name="supervisor_can_approve",
            passed=not messages,
            severity=dg.AssetCheckSeverity.WARN,
            description="no strategy contradicts the risk rules"
            if not messages
            else f"rejected every invested day ({len(now_conflicts)}): " + "; ".join(messages),
            metadata={"supervisor_conflicts": dg.MetadataValue.md(_conflicts_table(now_conflicts))},
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
