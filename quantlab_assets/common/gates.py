"""The one rule every step applies to its inputs: each session of its partitions has upstream rows.

A step whose inputs are missing would otherwise write zero weights or an empty book and pass
every check. It writes nothing instead and its blocking ``upstream_complete`` check names what
is missing and which asset to materialize first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantlab_assets.common.calendar import trading_days

UPSTREAM_CHECK = "upstream_complete"
UPSTREAM_DESCRIPTION = "Every session of the partition has its upstream rows (else nothing is written)."


@dataclass
class GateResult:
    """One gate rule's verdict, the shape every team's core returns (data_curator's has the same fields)."""

    name: str
    passed: bool
    description: str
    blocking: bool = True
    figures: dict[str, float] = field(default_factory=dict)
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)


def not_evaluated(results: Sequence[GateResult], reason: str) -> list[GateResult]:
    """``results``' rules reported as not run (a warning each): their input rule failed first.

    Dagster needs a result for every check an asset declares, and a rule that never saw rows
    must not show as passed."""
    return [GateResult(r.name, False, f"not evaluated: {reason}", blocking=False) for r in results]


def inputs_missing_reason(upstream: GateResult) -> str:
    return f"{upstream.name} failed, nothing was computed"


def period_label(start, end) -> str:
    """``2021-09`` for a whole calendar month, ``2024-04-02`` for one day, else ``A..B``."""
    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a == b:
        return str(a.date())
    if a.day == 1 and (b + pd.Timedelta(days=1)).day == 1 and a.to_period("M") == b.to_period("M"):
        return a.strftime("%Y-%m")
    while b.weekday() >= 5 and b > a:  # a Friday partition owns its weekend: name the Friday
        b -= pd.Timedelta(days=1)
    return str(a.date()) if a == b else f"{a.date()}..{b.date()}"


def upstream_complete(inputs: Mapping[str, tuple[Collection[Any], str]], start, end) -> GateResult:
    """``inputs`` maps what is read (``"features"``) to (its dates present, the asset that makes it).

    Passes on a partition range without sessions (holidays): nothing is expected."""
    sessions = trading_days(start, end)
    label = period_label(start, end)
    if len(sessions) == 0:
        return GateResult(
            UPSTREAM_CHECK, True, f"no session in {label}: nothing expected, 0 rows", figures={"sessions": 0}
        )
    problems, rows, figures = [], [], {"sessions": float(len(sessions))}
    for what, (dates, source) in inputs.items():
        present = set(pd.to_datetime(pd.Series(list(dates), dtype="object")).dt.normalize()) if len(dates) else set()
        missing = [d for d in sessions if d not in present]
        figures[f"{what}_missing_sessions"] = float(len(missing))
        if missing:
            problems.append(
                f"{what} missing for {len(missing)} of {len(sessions)} sessions of {label}: "
                f"materialize {source} first (first missing {missing[0].date()})"
            )
            rows += [{"input": what, "date": d, "materialize": source} for d in missing]
    if not problems:
        return GateResult(
            UPSTREAM_CHECK,
            True,
            f"{', '.join(inputs)} present for all {len(sessions)} sessions of {label}",
            figures=figures,
        )
    return GateResult(
        UPSTREAM_CHECK,
        False,
        "; ".join(problems) + "; nothing was written",
        figures=figures,
        offending=pd.DataFrame(rows, columns=["input", "date", "materialize"]),
    )
