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
