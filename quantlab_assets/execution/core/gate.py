"""The execution gate on a partition's ``paper_book`` rows, as ``GateResult``s."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.execution.core.compare import DRIFT_PARTS
from quantlab_assets.execution.core.recon import describe_breaks

RECONCILED = "reconciled"
DRIFT_PARTS_SUM = "drift_parts_sum_to_total"
CASH_NOT_NEGATIVE = "cash_not_negative"
# Parts of the drift must sum to it within this share of the day's equity (float rounding only).
DRIFT_TOLERANCE = 1e-9


def reconciled(breaks: pd.DataFrame, unresolved: pd.DataFrame, strategy: str) -> GateResult:
    """No break at the start or end of any cycle, and none left unresolved from before."""
    if len(breaks):
        first = breaks.iloc[0]
        return GateResult(
            RECONCILED,
            False,
            f"{strategy}: ledger and broker differ on {pd.Timestamp(first['date']).date()} ({first['phase']} of the "
            f"cycle): {describe_breaks(breaks)}; new orders are halted until "
            f"`quantlab execution resolve {strategy} --decision ... --reason ... --by ...`",
            figures={"breaks": float(len(breaks))},
            offending=breaks,
        )
    if len(unresolved):
        return GateResult(
            RECONCILED,
            False,
            f"{strategy}: {len(unresolved)} earlier break(s) unresolved ({describe_breaks(unresolved, 2)}): new orders "
            f"are halted until `quantlab execution resolve {strategy} ...`",
            figures={"breaks": float(len(unresolved))},
            offending=unresolved,
        )
    return GateResult(RECONCILED, True, "ledger and broker agree at the start and end of every cycle")


def drift_parts_sum(book: pd.DataFrame) -> GateResult:
    if book.empty:
        return GateResult(DRIFT_PARTS_SUM, True, "no session")
    parts = book[[f"drift_{p}" for p in DRIFT_PARTS]].sum(axis=1).to_numpy(float)
    gap = np.abs(parts - book["drift"].to_numpy(float))
    bad = gap > DRIFT_TOLERANCE * np.maximum(book["equity"].abs().to_numpy(float), 1.0)
    worst = float(gap.max())
    return GateResult(
        DRIFT_PARTS_SUM,
        not bad.any(),
        f"the drift's parts sum to it on every day (largest gap {worst:.3g})"
        if not bad.any()
        else f"{int(bad.sum())} days where the drift's parts miss the total by up to {worst:.3g}",
        figures={"largest_gap": worst},
        offending=book.loc[bad, ["date", "drift"]],
    )


def cash_not_negative(book: pd.DataFrame) -> GateResult:
    bad = book[book["cash"] < -0.01]
    return GateResult(
        CASH_NOT_NEGATIVE,
        bad.empty,
        "cash stays at or above 0"
        if bad.empty
        else f"cash is negative on {len(bad)} days, e.g. {bad['cash'].iloc[0]:,.2f} on {bad['date'].iloc[0].date()}",
        offending=bad[["date", "cash"]],
    )
