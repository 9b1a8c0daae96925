"""The supervisor's gate rules on stored rows, as ``GateResult``s the Dagster layer only adapts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, Books, book_matrix, judge

# The rules' names: the asset checks the UI shows on approvals and approved_targets.
EVERY_REJECTION_HAS_REASON = "every_rejection_has_reason"
APPROVED_TARGETS_WITHIN_RULES = "approved_targets_within_rules"


def every_rejection_has_reason(approvals: pd.DataFrame) -> GateResult:
    silent = approvals[
        (approvals["status"] != APPROVED) & approvals["reasons"].isna() & approvals["override_reason"].isna()
    ]
    return GateResult(
        EVERY_REJECTION_HAS_REASON,
        silent.empty,
        f"{int((approvals['status'] != APPROVED).sum())} non-approved days, all with reasons"
        if silent.empty
        else f"{len(silent)} non-approved days without a reason, e.g. {silent['date'].iloc[0].date()}",
        offending=silent[["date", "status"]] if len(silent) else pd.DataFrame(),
    )


DAY_APPROVED = "day_approved"


def day_approved(approvals: pd.DataFrame) -> GateResult:
    """A warning on each day the supervisor did not approve (rejected or needs_review), with its
    reasons: per partition, a rejected day shows in the UI's partition list, not only in a table."""
    days = approvals[approvals["status"] != APPROVED]
    offending = days[["date", "status", "reasons"]].reset_index(drop=True) if len(days) else pd.DataFrame()
    figures = {"days": float(approvals["date"].nunique()), "not_approved_days": float(days["date"].nunique())}
    if days.empty:
        return GateResult(DAY_APPROVED, True, f"{int(figures['days'])} day(s), all approved", False, figures)
    first = days.iloc[0]
    return GateResult(
        DAY_APPROVED,
        False,
        f"{len(days)} of {len(approvals)} day(s) not approved, e.g. {pd.Timestamp(first['date']).date()} "
        f"{first['status']}: {first['reasons']}",
        blocking=False,
        figures=figures,
        offending=offending,
    )


def approved_targets_within_rules(books: pd.DataFrame, limits) -> GateResult:
    """Every day's tradable book passes the hard limits (judged alone: no turnover, no KPIs)."""
    broken = []
    if len(books):
        days, matrix = book_matrix(books["date"], books["symbol"], books["weight"])
        alone = Books.empty(len(days), matrix.symbols)
        verdicts = judge(matrix, alone, np.zeros(len(days), dtype=bool), limits)
        for i in np.flatnonzero(verdicts.status != APPROVED):
            symbols = ", ".join(matrix.symbols[verdicts.flagged[i]])
            broken.append({"date": days[i], "symbols": symbols, "reason": verdicts.reasons[i][0]})
    return GateResult(
        APPROVED_TARGETS_WITHIN_RULES,
        not broken,
        f"{books['date'].nunique()} tradable books within the limits"
        if not broken
        else f"{len(broken)} books break a limit, e.g. {broken[0]['date'].date()}: {broken[0]['reason']}",
        figures={"breaking_days": float(len(broken))},
        offending=pd.DataFrame(broken),
    )
