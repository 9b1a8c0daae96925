"""One partition of the supervision: the day-by-day decisions and their audit, in memory.

:func:`supervision_partition` is the one entry the Dagster step calls: it checks the inputs
(``upstream_complete``), decides every session (:func:`supervise`) and runs the team's blocking
rules (``core.gate``) on exactly those candidate rows. The step then publishes them with
``common.publish.audit_and_publish`` or keeps the stored rows when a rule fails.

Feedback without a cycle: names flagged on D-1 are excluded from D's tradable book, and a
rejected day holds the last approved book, so each partition starts from the stored decision
and book of the session before it (``SupervisionInputs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import SINCE_START, scope_window
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import GateResult, inputs_missing_reason, not_evaluated, upstream_complete
from quantlab_assets.common.publish import Slice
from quantlab_assets.common.warehouse import TableSchema
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, REJECTED, approved_book, evaluate
from quantlab_assets.portfolio_supervisor.core.gate import approved_targets_within_rules, every_rejection_has_reason
from quantlab_assets.portfolio_supervisor.core.rules import RiskLimits
from quantlab_assets.portfolio_supervisor.core.store import (
    APPROVALS,
    APPROVED_TARGETS,
    FLAGS_SEPARATOR,
    SupervisionInputs,
)
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def _performance(kpis: pd.DataFrame, day) -> dict:
    """The day's KPIs the performance limits judge: the first trailing scope once it is full,
    else since start."""
    rows = kpis[kpis["date"] == day].set_index("scope")
    if rows.empty:
        return {}
    windows = {s: w for s in rows.index if (w := scope_window(s)) is not None}
    scope = next(iter(windows), SINCE_START)
    if scope != SINCE_START and rows.loc[scope, "sessions"] < windows[scope]:
        scope = SINCE_START
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
                tradable, source = approved_book(weights, REJECTED, prev_approved, [])
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
                "flags": FLAGS_SEPARATOR.join(verdict.flags) or None,
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


@dataclass(frozen=True)
class Supervision:
    """A partition's candidate rows and their audit: ``upstream`` (both tables) and each table's
    own blocking rule (a warning "not evaluated" when the inputs are incomplete: nothing was decided)."""

    approvals: pd.DataFrame
    approved_targets: pd.DataFrame
    upstream: GateResult
    rules: Mapping[str, GateResult] = field(default_factory=dict)

    def slices(self, tables: Sequence[TableSchema], strategy: str) -> list[Slice]:
        frames = {APPROVALS.name: self.approvals, APPROVED_TARGETS.name: self.approved_targets}
        return [Slice(t, frames[t.name], strategy=strategy) for t in tables]

    def checks(self, table: TableSchema) -> list[GateResult]:
        """What the UI shows on ``table``'s asset: the inputs' gate and the table's own rule."""
        return [self.upstream, *([self.rules[table.name]] if table.name in self.rules else [])]

    def audit(self, tables: Sequence[TableSchema]) -> list[GateResult]:
        """The blocking rules of the slices being published, each once."""
        return [self.upstream, *(self.rules[t.name] for t in tables if t.name in self.rules)]


def supervision_partition(
    inputs: SupervisionInputs,
    spec: StrategySpec,
    limits: RiskLimits,
    overrides: pd.DataFrame,
    start,
    end,
    made_by: Mapping[str, str] | None = None,
) -> Supervision:
    """Decide [start, end] for ``spec`` and audit the candidate rows (see the module docstring).

    ``made_by`` names the asset that makes each input (``targets``, ``backtest_kpis``), for the
    message of a missing input ("materialize ... first")."""
    made_by = made_by or {}
    targets = inputs.targets[inputs.targets["date"] >= pd.Timestamp(start)]
    upstream = upstream_complete(
        {
            "targets": (targets["date"].unique(), made_by.get("targets", "targets")),
            "backtest_kpis": (inputs.kpis["date"].unique(), made_by.get("backtest_kpis", "backtest_kpis")),
        },
        start,
        end,
    )
    if not upstream.passed:  # nothing decided: each table's rule is reported as not evaluated
        approvals, books = (pd.DataFrame(columns=t.column_names) for t in (APPROVALS, APPROVED_TARGETS))
        skipped = not_evaluated(
            [every_rejection_has_reason(approvals), approved_targets_within_rules(books, limits)],
            inputs_missing_reason(upstream),
        )
        return Supervision(approvals, books, upstream, {APPROVALS.name: skipped[0], APPROVED_TARGETS.name: skipped[1]})
    prev_targets = inputs.targets[inputs.targets["date"] == inputs.previous_day].set_index("symbol")["weight"]
    approvals, books = supervise(
        spec,
        limits,
        targets,
        inputs.kpis,
        overrides,
        prev_targets if len(prev_targets) else None,
        inputs.previous_flags,
        inputs.previous_book,
        trading_days(start, end),
    )
    rules = {
        APPROVALS.name: every_rejection_has_reason(approvals),
        APPROVED_TARGETS.name: approved_targets_within_rules(books, limits),
    }
    return Supervision(approvals, books, upstream, rules)
