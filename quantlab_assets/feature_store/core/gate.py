r"""The feature store's gate rules, as ``GateResult``\s the Dagster layer only adapts.

They audit a partition's **candidate** rows in memory, before anything is published
(``core.step``, ``common.publish``): a failing blocking rule leaves the stored rows as
they were. Features: leakage 0 and incremental = batch, proven by recomputing sampled dates
from ohlcv; schema, finiteness, one row per (date, symbol), missing rate after warm-up and
complete history judged on the candidate rows. Labels: sampled rows equal open-to-open
returns from ohlcv, finite, one row per (date, symbol); pending labels only warn. Both:
the ohlcv rows read are valid prices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.data_curator.core.bars import adjusted_open
from quantlab_assets.feature_store.core.coverage import missing_rates
from quantlab_assets.feature_store.core.labels import pending_counts
from quantlab_assets.feature_store.core.preset import FeaturePreset
from quantlab_assets.feature_store.core.schema import HORIZONS, LABELS, exit_column, features_schema, label_column
from quantlab_assets.feature_store.core.store import differing_cells, history_gaps, invalid_bars, recompute_dates

LABEL_SAMPLE_ROWS = 3  # per symbol: the first rows of the partition are re-derived from prices
OHLCV_VALID = "ohlcv_valid"
KEYS = ["date", "symbol"]


def _where(row) -> str:
    """``AAA 2024-04-02``: the symbol and date a message points at."""
    return f"{row['symbol']} {pd.Timestamp(row['date']).date()}"


def ohlcv_valid(bars: pd.DataFrame) -> GateResult:
    """The ohlcv rows a step computes from pass the ohlcv price rules (finite, positive, high >= low)."""
    bad = invalid_bars(bars)
    figures = {"ohlcv_rows": float(len(bars)), "invalid_rows": float(len(bad))}
    if bad.empty:
        return GateResult(OHLCV_VALID, True, f"all {len(bars)} ohlcv rows read are valid prices", figures=figures)
    return GateResult(
        OHLCV_VALID,
        False,
        f"ohlcv has {len(bad)} invalid rows in the window read (first: {_where(bad.iloc[0])}): "
        "the ohlcv gate must pass first; nothing was computed",
        figures=figures,
        offending=bad,
    )


def no_infinite_values(frame: pd.DataFrame, columns: Sequence[str]) -> GateResult:
    """No +/-inf in ``columns``; the offending cells as (date, symbol, column, value)."""
    columns = list(columns)
    # Column by column first: the usual clean frame is never copied into one 2-D array.
    clean = not any(np.isinf(frame[c].to_numpy(float)).any() for c in columns)
    values = np.empty((0, len(columns))) if clean or not len(frame) else frame[columns].to_numpy(float)
    rows, cols = np.nonzero(np.isinf(values))
    bad = pd.DataFrame(
        {
            "date": frame["date"].to_numpy()[rows],
            "symbol": frame["symbol"].to_numpy()[rows],
            "column": np.asarray(columns, dtype=object)[cols],
            # As text: the refusal's JSON (audit_rejects) would store a float inf as null.
            "value": [str(v) for v in values[rows, cols]],
        }
    )
    return GateResult(
        "no_infinite_values",
        bad.empty,
        "no infinite values"
        if bad.empty
        else f"{len(bad)} infinite values in {sorted(set(bad['column']))}, "
        f"e.g. {bad['column'].iat[0]} of {_where(bad.iloc[0])}",
        figures={"infinite_cells": float(len(bad))},
        offending=bad,
    )


def one_row_per_symbol_and_day(frame: pd.DataFrame) -> GateResult:
    """No (date, symbol) twice: the table has no key constraint, so the audit is the guard."""
    twice = frame.duplicated(KEYS, keep=False)
    dupes = frame[twice]
    extra = int(frame.duplicated(KEYS).sum()) if len(dupes) else 0
    return GateResult(
        "one_row_per_symbol_and_day",
        dupes.empty,
        "one row per (date, symbol)" if dupes.empty else f"{extra} duplicate rows, e.g. {_where(dupes.iloc[0])}",
        figures={"duplicate_rows": float(extra)},
        offending=dupes,
    )


def _dates_text(dates: Sequence[pd.Timestamp]) -> str:
    return ", ".join(str(pd.Timestamp(d).date()) for d in dates) or "none"


def features_gate(
    candidate: pd.DataFrame,
    bars: pd.DataFrame,
    columns: Sequence[str],
    listings: pd.DataFrame,
    preset: FeaturePreset,
    dates: Sequence[pd.Timestamp],
    max_missing_rate: float,
) -> list[GateResult]:
    """``candidate``: the partitions' computed feature rows; ``bars``: ohlcv from the sampled
    dates' lookback start to after the partition; ``columns``: the candidate's columns;
    ``listings``: first_date and first_bar per symbol; ``dates``: the sampled dates
    recomputed from ``bars``."""
    names = preset.feature_names
    sampled = candidate[candidate["date"].isin(dates)]
    results = []

    leaked = differing_cells(sampled, recompute_dates(bars, preset, dates, future="perturb"), names)
    results.append(
        GateResult(
            "no_lookahead_leakage",
            leaked.empty,
            f"{len(dates)} dates ({_dates_text(dates)}) recomputed with later bars perturbed: "
            + (
                "no difference"
                if leaked.empty
                else f"{len(leaked)} cells changed, e.g. {leaked.iloc[0]['feature']} of {_where(leaked.iloc[0])}"
            ),
            figures={"sampled_dates": float(len(dates)), "changed_cells": float(len(leaked))},
            offending=leaked,
        )
    )

    drifted = differing_cells(sampled, recompute_dates(bars, preset, dates, future="drop"), names)
    results.append(
        GateResult(
            "incremental_equals_batch",
            drifted.empty,
            f"{len(dates)} dates recomputed one at a time: "
            + (
                "bit-identical"
                if drifted.empty
                else f"{len(drifted)} cells differ, e.g. {drifted.iloc[0]['feature']} of {_where(drifted.iloc[0])}"
            ),
            figures={"sampled_dates": float(len(dates)), "differing_cells": float(len(drifted))},
            offending=drifted,
        )
    )

    expected = features_schema(preset).column_names
    extra, missing = sorted(set(columns) - set(expected)), sorted(set(expected) - set(columns))
    label_like = [c for c in columns if c.startswith("fwd_") or c in LABELS.column_names[3:]]
    ok = not extra and not missing and not label_like
    results.append(
        GateResult(
            "schema_matches_preset",
            ok,
            "columns equal the preset's declaration"
            if ok
            else f"unexpected columns {extra}, missing {missing}, label columns {label_like}",
            figures={"columns": float(len(columns))},
        )
    )

    results.append(no_infinite_values(candidate, names))
    results.append(one_row_per_symbol_and_day(candidate))

    # A mask, not a copy of the warm rows (a 10-year candidate is half a gigabyte).
    warm = candidate["warm"].astype(bool).to_numpy() if len(candidate) else np.zeros(0, dtype=bool)
    n_warm = int(warm.sum())
    gaps, gaps_text = history_gaps(candidate, preset, listings)  # respects first_date and the first bar
    results.append(
        GateResult(
            "history_complete",
            gaps == 0,
            gaps_text,
            blocking=False,
            figures={
                "cold_rows": float(len(candidate) - n_warm),
                "warm_rows": float(n_warm),
                "rows_missing_history": float(gaps),
            },
        )
    )

    rates = missing_rates(candidate, preset, rows=warm)  # each feature judged where it can have a value
    over = rates[rates > max_missing_rate]
    results.append(
        GateResult(
            "missing_rate_after_warmup",
            over.empty,
            f"max missing rate after warm-up {float(rates.max()) if len(rates) else 0.0:.4f} "
            f"(limit {max_missing_rate})" + ("" if over.empty else f"; over: {list(over.index)}"),
            figures={"warm_rows": float(n_warm)},
            offending=over.rename("missing").reset_index().rename(columns={"index": "feature"}),
        )
    )
    return results


def label_sample(candidate: pd.DataFrame) -> pd.DataFrame:
    """The label rows re-derived from prices: the first few of each symbol."""
    return candidate.groupby("symbol", sort=True).head(LABEL_SAMPLE_ROWS)


def labels_gate(candidate: pd.DataFrame, bars: pd.DataFrame) -> list[GateResult]:
    """``candidate``: the partitions' computed label rows; ``bars``: ohlcv covering
    ``label_sample(candidate)``'s symbols from its first entry date to its last exit date
    (unused when the sample is empty)."""
    sample = label_sample(candidate)
    wrong = []
    if len(sample):
        # Only the bars on the sample's entry and exit dates are looked up: index those, not all.
        needed = pd.unique(sample[["entry_date", *(exit_column(h) for h in HORIZONS)]].to_numpy().ravel())
        bars = bars[bars["date"].isin(needed)]
        adj_open = pd.Series(adjusted_open(bars)).set_axis(pd.MultiIndex.from_frame(bars[["symbol", "date"]]))
        for row in sample.to_dict("records"):
            entry = adj_open.get((row["symbol"], row["entry_date"]))
            for h in HORIZONS:
                exit_ = adj_open.get((row["symbol"], row[exit_column(h)]))
                got = row[label_column(h)]
                want = exit_ / entry - 1 if entry is not None and exit_ is not None else np.nan
                if not ((np.isnan(got) and np.isnan(want)) or got == want):
                    wrong.append(
                        {"date": row["date"], "symbol": row["symbol"], "horizon": h, "stored": got, "from_prices": want}
                    )
    differ = pd.DataFrame(wrong, columns=["date", "symbol", "horizon", "stored", "from_prices"])

    pending = pending_counts(candidate)
    last_exit = candidate[exit_column(max(HORIZONS))].max() if len(candidate) else None
    return [
        GateResult(
            "labels_match_prices",
            differ.empty,
            f"{len(sample)} sampled rows × {len(HORIZONS)} horizons: "
            + (
                "all equal open-to-open returns"
                if differ.empty
                else f"{len(differ)} differ, e.g. {label_column(differ['horizon'].iat[0])} of {_where(differ.iloc[0])}"
            ),
            offending=differ,
        ),
        no_infinite_values(candidate, [label_column(h) for h in HORIZONS]),
        one_row_per_symbol_and_day(candidate),
        GateResult(
            "labels_pending",
            not any(pending.values()),
            "all labels available"
            if not any(pending.values())
            else "not yet available: "
            + ", ".join(f"{n} of horizon {h}" for h, n in zip(HORIZONS, pending.values()) if n)
            + (
                f"; complete once bars through {pd.Timestamp(last_exit).date()} are ingested"
                if last_exit is not None
                else ""
            ),
            blocking=False,
            figures={name: float(n) for name, n in pending.items()},
        ),
    ]
