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

import numpy as np
import pandas as pd

from quantlab_assets.backtest_engine.core.kpis import SINCE_START, scope_window
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import GateResult, inputs_missing_reason, not_evaluated, upstream_complete
from quantlab_assets.common.publish import Slice
from quantlab_assets.common.warehouse import TableSchema
from quantlab_assets.portfolio_supervisor.core.evaluate import (
    APPROVED,
    MEASURES,
    REJECTED,
    Books,
    Performance,
    Verdicts,
    approved_row,
    book_matrix,
    judge,
)
from quantlab_assets.portfolio_supervisor.core.gate import (
    approved_targets_within_rules,
    day_approved,
    every_rejection_has_reason,
)
from quantlab_assets.portfolio_supervisor.core.rules import RiskLimits
from quantlab_assets.portfolio_supervisor.core.schema import APPROVALS, APPROVED_TARGETS, FLAGS_SEPARATOR
from quantlab_assets.portfolio_supervisor.core.store import SupervisionInputs
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def performance(kpis: pd.DataFrame, days: pd.DatetimeIndex) -> Performance:
    """Each day's KPIs the performance limits judge: the day's first trailing scope once it is
    full, else since start (a day without KPIs: ``sessions`` 0, not judged)."""
    out = Performance.none(len(days))
    rows = kpis[kpis["date"].isin(days)]
    if rows.empty:
        return out
    day = days.get_indexer(rows["date"])
    scope, sessions = rows["scope"].to_numpy(object), rows["sessions"].to_numpy()
    window = np.array([w if (w := scope_window(s)) is not None else np.nan for s in scope], dtype=float)
    trailing = np.flatnonzero(~np.isnan(window))
    first = trailing[np.unique(day[trailing], return_index=True)[1]]  # the day's first trailing scope
    full = first[~(sessions[first] < window[first])]
    chosen = np.full(len(days), SINCE_START, dtype=object)
    chosen[day[full]] = scope[full]
    match = np.flatnonzero(scope == chosen[day])
    picked = match[np.unique(day[match], return_index=True)[1]]
    missing = np.setdiff1d(day, day[picked])
    if len(missing):
        raise ValueError(f"backtest_kpis: no {chosen[missing[0]]!r} row on {days[missing[0]].date()}")
    at = day[picked]
    out.scope[at] = scope[picked]
    out.sessions[at] = sessions[picked].astype(np.int64)
    out.max_drawdown[at] = rows["max_drawdown"].to_numpy(float)[picked]
    out.sharpe_ratio[at] = rows["sharpe_ratio"].to_numpy(float)[picked]
    return out


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
    """Every day's rules at once, then day by day the override and the tradable book.
    Returns (approvals rows, approved rows); a day without targets is skipped."""
    sessions = pd.DatetimeIndex(days)
    decided = targets["date"].isin(sessions)
    if not decided.all():  # (a copy of a million rows only when needed)
        targets = targets[decided]
    if targets.empty:
        return pd.DataFrame(columns=APPROVALS.column_names), pd.DataFrame(columns=APPROVED_TARGETS.column_names)
    dates, books = book_matrix(targets["date"], targets["symbol"], targets["weight"])
    extra = {s for p in (prev_targets, prev_approved) if p is not None for s in p.index} - set(books.symbols)
    if extra:  # names only the day before held: one axis for both
        axis = np.asarray(sorted({*books.symbols, *extra}), dtype=object)
        dates, books = book_matrix(targets["date"], targets["symbol"], targets["weight"], axis)
    dates = sessions[sessions.get_indexer(dates)]  # the sessions' own values (the rows' may differ in unit)
    first = Books.of(prev_targets, books.symbols) if prev_targets is not None else Books.empty(1, books.symbols)
    before = Books(books.symbols, np.empty_like(books.weights), np.empty_like(books.present))
    for shifted, day_before, rows in (
        (before.weights, first.weights, books.weights),
        (before.present, first.present, books.present),
    ):
        shifted[0], shifted[1:] = day_before[0], rows[:-1]
    rebalance = targets.groupby("date", sort=True)["rebalance"].first().to_numpy(bool)
    verdicts = judge(books, before, rebalance, limits, performance(kpis, dates))
    status, reasons = verdicts.status.copy(), verdicts.reasons
    by = np.full(len(dates), None, dtype=object)
    why = by.copy()
    if len(overrides):
        over = overrides.drop_duplicates("date", keep="last")
        at = dates.get_indexer(pd.DatetimeIndex(over["date"]))
        keep = at >= 0
        status[at[keep]] = over["status"].to_numpy()[keep]
        by[at[keep]], why[at[keep]] = over["decided_by"].to_numpy()[keep], over["reason"].to_numpy()[keep]
    column = {s: j for j, s in enumerate(books.symbols)}
    excluded = sorted(column[s] for s in prev_flags if s in column)
    last = Books.of(prev_approved, books.symbols).weights[0] if prev_approved is not None else None
    tradable, sources = np.zeros_like(books.weights), np.empty(len(dates), dtype=object)
    for i in range(len(dates)):
        row, source = approved_row(books, i, status[i], last, excluded)
        if status[i] == APPROVED and source != "targets":
            one = Books(books.symbols, row[None, :], books.present[i][None, :])
            check = judge(one, Books.empty(1, books.symbols), np.array([False]), limits)
            if check.status[0] != APPROVED and by[i] is None:
                row, source = approved_row(books, i, REJECTED, last, [])
                reasons[i] = [
                    *reasons[i],
                    f"excluding flagged names would break a limit ({check.reasons[0][0]}): held the last approved book",
                ]
        tradable[i], sources[i] = row, source
        last, excluded = np.where(books.present[i], row, 0.0), verdicts.flagged[i]
    return _approvals(spec.name, dates, status, verdicts, reasons, rebalance, by, why), _books(
        spec.name, dates, books, tradable, sources
    )


def _approvals(name, dates, status, verdicts: Verdicts, reasons, rebalance, by, why) -> pd.DataFrame:
    m, judged = verdicts.measures, verdicts.performance_judged

    def performance_column(values: np.ndarray) -> list:  # None where not judged, as a per-day record had it
        return [float(v) if j else None for v, j in zip(values, judged)]

    return pd.DataFrame(
        {
            "date": dates,
            "strategy": name,
            "status": status,
            "rule_status": verdicts.status,
            "reasons": ["; ".join(r) if r else None for r in reasons],
            "flags": [FLAGS_SEPARATOR.join(f) if f else None for f in verdicts.flags],
            "rebalance": rebalance,
            **{k: m[k] for k in MEASURES},
            "max_drawdown": performance_column(m["max_drawdown"]),
            "sharpe": performance_column(m["sharpe"]),
            "override_by": by,
            "override_reason": why,
        },
        columns=APPROVALS.column_names,
    )


def _books(name, dates, books: Books, tradable: np.ndarray, sources: np.ndarray) -> pd.DataFrame:
    day, column = np.nonzero(books.present)  # day by day, symbols in order
    frame = pd.DataFrame({"date": dates[day], "weight": tradable[day, column]})
    # Text columns added one by one: built together, pandas copies them into one block (slow at 1M rows).
    frame.insert(1, "strategy", np.array([name], dtype=object).repeat(len(day)))
    frame.insert(2, "symbol", books.symbols[column])
    frame["source"] = sources[day]
    return frame


@dataclass(frozen=True)
class Supervision:
    """A partition's candidate rows and their audit: ``upstream`` (both tables) and each table's
    own blocking rule (a warning "not evaluated" when the inputs are incomplete: nothing was decided)."""

    approvals: pd.DataFrame
    approved_targets: pd.DataFrame
    upstream: GateResult
    rules: Mapping[str, GateResult] = field(default_factory=dict)
    warnings: Mapping[str, GateResult] = field(default_factory=dict)  # non-blocking, reported with the rules

    def slices(self, tables: Sequence[TableSchema], strategy: str) -> list[Slice]:
        frames = {APPROVALS.name: self.approvals, APPROVED_TARGETS.name: self.approved_targets}
        return [Slice(t, frames[t.name], strategy=strategy) for t in tables]

    def checks(self, table: TableSchema) -> list[GateResult]:
        """What the UI shows on ``table``'s asset: the inputs' gate, the table's own rule, its warning."""
        own = [d[table.name] for d in (self.rules, self.warnings) if table.name in d]
        return [self.upstream, *own]

    def audit(self, tables: Sequence[TableSchema]) -> list[GateResult]:
        """The rules of the slices being published, each once (the warnings never block)."""
        return [self.upstream, *(d[t.name] for t in tables for d in (self.rules, self.warnings) if t.name in d)]


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
            [
                every_rejection_has_reason(approvals),
                approved_targets_within_rules(books, limits),
                day_approved(approvals),
            ],
            inputs_missing_reason(upstream),
        )
        return Supervision(
            approvals,
            books,
            upstream,
            {APPROVALS.name: skipped[0], APPROVED_TARGETS.name: skipped[1]},
            {APPROVALS.name: skipped[2]},
        )
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
    return Supervision(approvals, books, upstream, rules, {APPROVALS.name: day_approved(approvals)})
