"""The supervisor's gate rules on stored rows, as ``GateResult``s the Dagster layer only adapts."""

from __future__ import annotations

import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.portfolio_supervisor.core.evaluate import APPROVED, evaluate

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
    broken = []
    for day, book in books.groupby("date", sort=True):
        verdict = evaluate(book.set_index("symbol")["weight"], None, False, limits)
        if verdict.reasons:
            broken.append({"date": day, "symbols": ", ".join(verdict.flagged_symbols), "reason": verdict.reasons[0]})
    return GateResult(
        APPROVED_TARGETS_WITHIN_RULES,
        not broken,
        f"{books['date'].nunique()} tradable books within the limits"
        if not broken
        else f"{len(broken)} books break a limit, e.g. {broken[0]['date'].date()}: {broken[0]['reason']}",
        figures={"breaking_days": float(len(broken))},
        offending=pd.DataFrame(broken),
    )
