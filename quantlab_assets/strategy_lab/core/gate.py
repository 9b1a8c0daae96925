"""The strategy lab's gate rules on stored targets, as ``GateResult``s the Dagster layer only adapts."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.strategy_lab.core.construct import constraint_violations
from quantlab_assets.strategy_lab.core.spec import StrategySpec


def targets_gate(stored: pd.DataFrame, spec: StrategySpec, registry: Iterable[str]) -> list[GateResult]:
    """``stored``: the strategy's stored targets of the partitions (every decided book is judged)."""
    violations = []
    for day, book in stored[stored["rebalance"].astype(bool)].groupby("date", sort=True):
        violations += [f"{day.date()}: {v}" for v in constraint_violations(book.set_index("symbol")["weight"], spec)]
    unknown = sorted(set(stored["symbol"]) - set(registry))
    weights = stored["weight"].to_numpy(float)
    bad = stored[~np.isfinite(weights)]
    dupes = stored[stored.duplicated(["date", "symbol"], keep=False)]
    return [
        GateResult(
            "constraint_violations_zero",
            not violations,
            "no violation" if not violations else f"{len(violations)} violations, e.g. {violations[0]}",
            figures={"violations": float(len(violations))},
        ),
        GateResult(
            "symbols_in_registry",
            not unknown,
            "all symbols registered" if not unknown else f"unknown symbols {unknown[:10]}",
        ),
        GateResult(
            "weights_finite",
            bad.empty,
            "all weights finite"
            if bad.empty
            else f"{len(bad)} non-finite weights, e.g. {bad.iloc[0]['symbol']} {bad.iloc[0]['date'].date()}",
            offending=bad,
        ),
        GateResult(
            "one_row_per_symbol_and_day",
            dupes.empty,
            f"{int(stored.duplicated(['date', 'symbol']).sum())} duplicate rows",
            offending=dupes,
        ),
    ]
