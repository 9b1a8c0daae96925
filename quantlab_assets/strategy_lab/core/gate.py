"""The strategy lab's gate rules on a partition's candidate targets, as ``GateResult``\\s the Dagster
layer only adapts. They run before the rows are published (write-audit-publish): a failing rule
keeps the stored targets as they were."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.strategy_lab.core.evaluation import day_groups
from quantlab_assets.strategy_lab.core.limits import EPS, constraint_violations, may_violate
from quantlab_assets.strategy_lab.core.spec import StrategySpec

# Every blocking rule of the targets gate and what it promises (the UI's check descriptions).
TARGETS_RULES = {
    "constraint_violations_zero": "Every decided book respects the strategy's constraints.",
    "symbols_in_registry": "Every target symbol is in the symbol registry.",
    "weights_finite": "Every weight is a finite number.",
    "one_row_per_symbol_and_day": "No duplicate (date, symbol) targets.",
}

# Warnings (non-blocking): what a reader must see, though the rows are valid.
TARGETS_WARNINGS = {
    "book_not_empty": "The strategy holds a book on some session of the range (warn: it held nothing, and why).",
}


@dataclass(frozen=True)
class FeatureHistory:
    """What the strategy's features need and what the warehouse holds: ``needs`` maps each feature
    the strategy reads to the sessions its window reads (up to and including the day; mom_12_1:
    253), ``stored`` is the most ohlcv sessions any universe name has up to the range's last day."""

    needs: Mapping[str, int]
    stored: int


def feature_history(sets: Iterable, spec: StrategySpec, stored: int) -> FeatureHistory:
    """The windows of the features ``spec`` reads, from the feature sets that declare them
    (``feature_store.core.sets.FeatureSet``), and the sessions ``stored``."""
    used = spec.features_used()
    return FeatureHistory({f: s.preset.window_of(f) for s in sets for f in used if f in s.preset.feature_names}, stored)


def _unscored_reason(spec: StrategySpec, history: FeatureHistory | None) -> str:
    """Why no name had a score, in numbers when the features' windows are longer than the
    history stored ("mom_12_1 undefined: needs 253 sessions, 250 stored")."""
    if history is not None:
        short = {f: n for f, n in history.needs.items() if n > history.stored}
        if short:
            more = max(short.values()) - history.stored
            return (
                "; ".join(f"{f} undefined: needs {n} sessions, {history.stored} stored" for f, n in short.items())
                + f" (the most any universe name has): ingest {more} more session(s) of ohlcv history before the "
                "range (docs/strategies.md#small-universes-and-your-own-data)"
            )
    return (
        f"no name had a score: {', '.join(spec.features_used())} undefined on every session for the whole "
        "universe (more history is needed before the range: the features' warm-up; see the features "
        "asset's history_complete check)"
    )


def book_not_empty(
    candidate: pd.DataFrame,
    spec: StrategySpec,
    notes: Iterable[str] = (),
    label: str = "",
    history: FeatureHistory | None = None,
) -> GateResult:
    """Warns when the strategy holds nothing on any session of ``candidate`` (the targets rows of
    the run's range), naming why: no name had a score (its features undefined: with ``history``,
    the feature, the sessions it needs and the sessions stored), or the construction's own notes
    ("3 scorable names < min_names 10: flat"). A range without rows (holidays, nothing computed)
    passes: there was nothing to hold."""
    if not len(candidate):
        return GateResult("book_not_empty", True, "no session: nothing to hold", blocking=False)
    weight = np.nan_to_num(candidate["weight"].to_numpy(np.float64), nan=0.0)
    held = np.abs(weight) > EPS
    days = pd.to_datetime(candidate["date"])
    figures = {"sessions_held": float(days[held].nunique()), "sessions": float(days.nunique())}
    if held.any():
        return GateResult(
            "book_not_empty", True, f"a book held on {int(figures['sessions_held'])} session(s)", False, figures
        )
    scored = candidate["score"].notna().to_numpy() if "score" in candidate.columns else np.zeros(len(candidate), bool)
    if not scored.any():
        why = _unscored_reason(spec, history)
    else:
        reasons = [n.split(": ", 1)[1] for n in notes if ": " in n]
        why = reasons[-1] if reasons else "no name selected"
    where = f" of {label}" if label else ""
    rows = pd.DataFrame({"date": sorted(days.unique())}).assign(reason=why)
    return GateResult(
        "book_not_empty",
        False,
        f"EMPTY BOOK: held nothing on any of {int(figures['sessions'])} session(s){where}: {why}",
        blocking=False,
        figures=figures,
        offending=rows,
    )


def _first(rows: pd.DataFrame) -> str:
    """``AAA 2024-04-01``: the first offending row's symbol and date."""
    row = rows.iloc[0]
    return f"{row['symbol']} {pd.Timestamp(row['date']).date()}"


def _decided_books(candidate: pd.DataFrame, spec: StrategySpec):
    """(day, its violations) of every decided book that may break a limit, days ascending: a
    vectorised screen (``may_violate``) picks the days, ``constraint_violations`` judges each."""
    rebalance = candidate[candidate["rebalance"].astype(bool)]
    order, bounds, days = day_groups(rebalance["date"])
    weight = np.nan_to_num(rebalance["weight"].to_numpy(np.float64)[order], nan=0.0, posinf=np.inf, neginf=-np.inf)
    absw = np.abs(weight)
    starts = bounds[:-1]
    if not len(starts):
        return
    flagged = may_violate(
        np.maximum.reduceat(absw, starts),
        np.add.reduceat(absw, starts),
        np.add.reduceat(weight, starts),
        np.add.reduceat((absw > EPS).astype(np.int64), starts),
        None,
        spec,
    )
    for i in np.flatnonzero(flagged):
        book = rebalance.iloc[order[bounds[i] : bounds[i + 1]]]  # the day's rows, as groupby gives them
        yield days[i], constraint_violations(book.set_index("symbol")["weight"], spec)


def targets_gate(candidate: pd.DataFrame, spec: StrategySpec, registry: Iterable[str]) -> list[GateResult]:
    """``candidate``: the strategy's targets rows of the partitions, as they would be published
    (every decided book is judged; a held book between decisions carries a judged one)."""
    violations = [{"date": day, "violation": v} for day, book in _decided_books(candidate, spec) for v in book]
    unregistered = candidate[~candidate["symbol"].isin(list(registry))]
    unknown = sorted(set(unregistered["symbol"]))
    bad = candidate[~np.isfinite(candidate["weight"].to_numpy(float))]
    dupes = candidate[candidate.duplicated(["date", "symbol"], keep=False)]
    first_violation = f"{violations[0]['date'].date()}: {violations[0]['violation']}" if violations else ""
    return [
        GateResult(
            "constraint_violations_zero",
            not violations,
            "no violation" if not violations else f"{len(violations)} violations, e.g. {first_violation}",
            figures={"violations": float(len(violations))},
            offending=pd.DataFrame(violations, columns=["date", "violation"]),
        ),
        GateResult(
            "symbols_in_registry",
            not unknown,
            "all symbols registered"
            if not unknown
            else f"unknown symbols {unknown[:10]} on {len(unregistered)} rows, e.g. {_first(unregistered)}",
            offending=unregistered,
        ),
        GateResult(
            "weights_finite",
            bad.empty,
            "all weights finite" if bad.empty else f"{len(bad)} non-finite weights, e.g. {_first(bad)}",
            offending=bad,
        ),
        GateResult(
            "one_row_per_symbol_and_day",
            dupes.empty,
            f"{int(candidate.duplicated(['date', 'symbol']).sum())} duplicate rows"
            + (f", e.g. {_first(dupes)}" if len(dupes) else ""),
            offending=dupes,
        ),
    ]
