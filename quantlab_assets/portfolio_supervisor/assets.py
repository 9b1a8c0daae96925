"""The supervisor's asset factory: ``<strategy>/<strategy>_approvals`` and ``<strategy>/<strategy>_approved_targets``.

Feedback without a cycle: Dagster forbids cycles, so the supervisor's flags flow forward in
time. ``approved_targets`` of D depends on ``approvals`` of D and D-1 (a partition offset,
visible in the lineage): names flagged on D-1 are excluded from D's tradable book, and a
rejected day holds the last approved book (a self-dependency on D-1).
"""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from quantlab_assets.backtest_engine.assets import kpis_key
from quantlab_assets.backtest_engine.core.store import BACKTEST_KPIS
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.gates import upstream_complete
from quantlab_assets.common.warehouse import read_strategy_slice, replace_strategy_slice
from quantlab_assets.metadata import (
    add_partition_metadata,
    column_schema,
    detail,
    gate_check_result,
    preview,
    upstream_spec,
)
from quantlab_assets.partitions import (
    PREVIOUS_AND_SAME_SESSION,
    PREVIOUS_SESSION,
    partition_dates,
    trading_day_partitions,
)
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, approved_book, evaluate
from quantlab_assets.portfolio_supervisor.core.report import approval_summary_markdown, supervisor_kpis
from quantlab_assets.portfolio_supervisor.core.store import (
    APPROVALS,
    APPROVED_TARGETS,
    append_log,
    latest_overrides,
)
from quantlab_assets.portfolio_supervisor.resources import SupervisorResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource
from quantlab_assets.strategy_lab.assets import strategy_key, targets_key
from quantlab_assets.strategy_lab.core.spec import StrategySpec
from quantlab_assets.strategy_lab.core.targets import TARGETS

GROUP = "portfolio_supervisor"


def approvals_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "approvals")


def approved_key(name: str) -> dg.AssetKey:
    return strategy_key(name, "approved_targets")


def _performance(kpis: pd.DataFrame, day) -> dict:
    rows = kpis[kpis["date"] == day].set_index("scope")
    if rows.empty:
        return {}
    trailing = [s for s in rows.index if s.startswith("trailing_")]
    scope = (
        trailing[0]
        if trailing and rows.loc[trailing[0], "sessions"] >= int(trailing[0].split("_")[1])
        else "since_start"
    )
    r = rows.loc[scope]
    return {
        "scope": scope,
        "sessions": int(r["sessions"]),
        "max_drawdown": r["max_drawdown"],
        "sharpe_ratio": r["sharpe_ratio"],
    }


def supervise(
    spec: StrategySpec,
    limits,
    targets: pd.DataFrame,
    kpis: pd.DataFrame,
    overrides: pd.DataFrame,
    prev_targets: pd.Series | None,
    prev_flags: list[str],
    prev_approved: pd.Series | None,
    days,
):
    """Day by day: rules, override, tradable book. Returns (approvals rows, approved rows)."""
    by_day = {d: g.set_index("symbol") for d, g in targets.groupby("date", sort=True)}
    over = overrides.set_index("date") if len(overrides) else pd.DataFrame()
    approvals, books = [], []
    for day in days:
        book = by_day.get(day)
        if book is None:
            continue
        weights, rebalance = book["weight"], bool(book["rebalance"].iloc[0])
        verdict = evaluate(weights, prev_targets, rebalance, limits, _performance(kpis, day))
        status, by, why = verdict.status, None, None
        if day in over.index:
            status, by, why = over.loc[day, "status"], over.loc[day, "decided_by"], over.loc[day, "reason"]
        tradable, source = approved_book(weights, status, prev_approved, prev_flags)
        if status == APPROVED and source != "targets":
            check = evaluate(tradable, None, False, limits)
            if check.status != APPROVED and by is None:
                tradable, source = approved_book(weights, "rejected", prev_approved, [])
                verdict.reasons.append(
                    f"excluding flagged names would break a limit ({check.reasons[0]}): held the last approved book"
                )
        m = verdict.measures
        approvals.append(
            {
                "date": day,
                "strategy": spec.name,
                "status": status,
                "rule_status": verdict.status,
                "reasons": "; ".join(verdict.reasons) or None,
                "flags": ",".join(verdict.flags) or None,
                "rebalance": rebalance,
                **{k: m.get(k) for k in ("gross", "net", "names", "max_weight", "hhi", "turnover", "max_drawdown")},
                "sharpe": m.get("sharpe"),
                "override_by": by,
                "override_reason": why,
            }
        )
        books.append(
            pd.DataFrame(
                {
                    "date": day,
                    "strategy": spec.name,
                    "symbol": tradable.index,
                    "weight": tradable.to_numpy(float),
                    "source": source,
                }
            )
        )
        prev_targets, prev_flags, prev_approved = weights, verdict.flagged_symbols, tradable
    approvals_frame = pd.DataFrame(approvals, columns=APPROVALS.column_names)
    books_frame = pd.concat(books, ignore_index=True) if books else pd.DataFrame(columns=APPROVED_TARGETS.column_names)
    return approvals_frame, books_frame


def build_supervisor_assets(spec: StrategySpec) -> dg.AssetsDefinition:
    name = spec.name
    ap_key, book_key = approvals_key(name), approved_key(name)

    @dg.multi_asset(
        name=f"{name}__supervision",
        specs=[
            dg.AssetSpec(
                ap_key,
                group_name=GROUP,
                kinds={"duckdb"},
                skippable=True,
                deps=[dg.AssetDep(targets_key(name), partition_mapping=PREVIOUS_AND_SAME_SESSION), kpis_key(name)],
                description=f"Risk decision on '{name}' per day: approved / rejected / needs_review, "
                "every reason with measured value and limit, risk flags.",
                owners=["team:portfolio_supervisor"],
            ),
            dg.AssetSpec(
                book_key,
                group_name=GROUP,
                kinds={"duckdb"},
                skippable=True,
                deps=[
                    dg.AssetDep(ap_key, partition_mapping=PREVIOUS_AND_SAME_SESSION),
                    dg.AssetDep(book_key, partition_mapping=PREVIOUS_SESSION),
                ],
                description=f"What may be traded for '{name}': the targets when approved (minus names "
                "flagged the session before), else the last approved book.",
                owners=["team:portfolio_supervisor"],
            ),
        ],
        check_specs=[upstream_spec(ap_key), upstream_spec(book_key)],
        partitions_def=trading_day_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Either asset can be selected alone: both are decided day by day in one pass, and
        # only the selected ones are written.
        can_subset=True,
    )
    def _supervision(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        supervisor: SupervisorResource,
        artifacts: ArtifactsResource,
    ):
        start, end = partition_dates(context)
        selected = [k for k in (ap_key, book_key) if k in context.selected_asset_keys]
        limits = supervisor.rules().for_strategy(name)
        prev_day = shift_sessions(start, -1)
        with warehouse.get_connection() as con:
            targets = read_strategy_slice(con, TARGETS, name, prev_day, end).assign(strategy=name)
            kpis = read_strategy_slice(con, BACKTEST_KPIS, name, start, end)
            gate = upstream_complete(
                {
                    "targets": (
                        targets["date"][targets["date"] >= pd.Timestamp(start)].unique(),
                        targets_key(name).to_user_string(),
                    ),
                    "backtest_kpis": (kpis["date"].unique(), kpis_key(name).to_user_string()),
                },
                start,
                end,
            )
            if gate.passed:
                overrides = latest_overrides(con, name, start, end)
                prev_approval = read_strategy_slice(con, APPROVALS, name, prev_day, prev_day)
                prev_book = read_strategy_slice(con, APPROVED_TARGETS, name, prev_day, prev_day)
                prev_targets = targets[targets["date"] == prev_day].set_index("symbol")["weight"]
                prev_flags = (
                    sorted({f.split(":", 1)[1] for f in (prev_approval["flags"].iloc[0] or "").split(",") if ":" in f})
                    if len(prev_approval)
                    else []
                )
                approvals, books = supervise(
                    spec,
                    limits,
                    targets[targets["date"] >= pd.Timestamp(start)],
                    kpis,
                    overrides,
                    prev_targets if len(prev_targets) else None,
                    prev_flags,
                    prev_book.set_index("symbol")["weight"] if len(prev_book) else None,
                    trading_days(start, end),
                )
                if ap_key in selected:
                    replace_strategy_slice(con, APPROVALS, approvals, name, start, end)
                    now = datetime.now(timezone.utc).replace(tzinfo=None)
                    append_log(
                        con,
                        approvals.assign(
                            source=approvals["override_by"].map(lambda b: "rules" if pd.isna(b) else "override"),
                            run_id=context.run.run_id,
                            logged_at=pd.Timestamp(now),
                        ),
                    )
                if book_key in selected:
                    replace_strategy_slice(con, APPROVED_TARGETS, books, name, start, end)
        if not gate.passed:
            for key in selected:
                add_partition_metadata(context, [], asset_key=key, written=False)
                yield dg.MaterializeResult(
                    asset_key=key, metadata={"dagster/row_count": 0, "not_written": gate.description}
                )
                yield gate_check_result(gate, key)
            return
        if ap_key in selected:
            report = approval_summary_markdown(name, start, end, approvals)
            artifacts.write_section(context.run.run_id, "approval_summary.md", name, report, title="Approval summary")
            # Each partition: its own decision and reasons, not the run's last day.
            add_partition_metadata(
                context,
                approvals["date"],
                asset_key=ap_key,
                per_day={
                    r.date: {
                        "status": str(r.status),
                        "rule_status": str(r.rule_status),
                        "reasons": r.reasons or "none",  # text: shown inline on the partition's page
                        **({"override": f"{r.override_by}: {r.override_reason}"} if pd.notna(r.override_by) else {}),
                    }
                    for r in approvals.itertuples()
                },
                latest={"run_summary": detail(context, report, "approval_summary.md"), **supervisor_kpis(approvals)},
            )
            yield dg.MaterializeResult(
                asset_key=ap_key,
                metadata={
                    "dagster/row_count": len(approvals),
                    "dagster/column_schema": column_schema(APPROVALS),
                },
            )
            yield gate_check_result(gate, ap_key)
        if book_key in selected:
            add_partition_metadata(
                context,
                books["date"].unique() if len(books) else [],
                asset_key=book_key,
                per_day={
                    day: {"names": int((g["weight"].abs() > 1e-12).sum()), "source": str(g["source"].iloc[0])}
                    for day, g in books.groupby("date")
                },
            )
            yield dg.MaterializeResult(
                asset_key=book_key,
                metadata={
                    "dagster/row_count": len(books),
                    "dagster/column_schema": column_schema(APPROVED_TARGETS),
                    "book": preview(
                        books[(books["date"] == books["date"].max()) & (books["weight"].abs() > 1e-12)][
                            ["symbol", "weight", "source"]
                        ],
                        20,
                    )
                    if len(books)
                    else "empty",
                },
            )
            yield gate_check_result(gate, book_key)

    return _supervision
