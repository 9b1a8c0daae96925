"""The feature store's gate rules on stored features and labels, as ``GateResult``s the Dagster layer only adapts.

Features: leakage 0 and incremental = batch, proven by recomputing sampled dates from ohlcv;
schema, finiteness, missing rate after warm-up and complete history judged on the stored rows.
Labels: sampled rows equal open-to-open returns from ohlcv; pending labels only warn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from quantlab_assets.common.gates import GateResult
from quantlab_assets.data_curator.core.bars import adjusted_open
from quantlab_assets.feature_store.core.features import FeaturePreset, missing_rates
from quantlab_assets.feature_store.core.labels import HORIZONS, LABELS
from quantlab_assets.feature_store.core.store import differing_cells, features_schema, history_gaps, recompute_dates

LABEL_SAMPLE_ROWS = 3  # per symbol: the first rows of the partition are re-derived from prices


def features_gate(
    stored: pd.DataFrame,
    bars: pd.DataFrame,
    columns: Sequence[str],
    listings: pd.DataFrame,
    preset: FeaturePreset,
    dates: Sequence[pd.Timestamp],
    max_missing_rate: float,
) -> list[GateResult]:
    """``stored``: the partitions' feature rows; ``bars``: ohlcv from the sampled dates' lookback start
    to after the partition; ``columns``: the stored table's columns; ``listings``: first_date and
    first_bar per stored symbol; ``dates``: the sampled dates recomputed from ``bars``."""
    names = preset.feature_names
    sampled = stored[stored["date"].isin(dates)]
    results = []

    leaked = differing_cells(sampled, recompute_dates(bars, preset, dates, future="perturb"), names)
    results.append(
        GateResult(
            "no_lookahead_leakage",
            leaked.empty,
            f"{len(dates)} dates recomputed with later bars perturbed: "
            + (
                "no difference"
                if leaked.empty
                else f"{len(leaked)} cells changed, e.g. {leaked.iloc[0]['feature']} of "
                f"{leaked.iloc[0]['symbol']} {pd.Timestamp(leaked.iloc[0]['date']).date()}"
            ),
            offending=leaked,
        )
    )

    drifted = differing_cells(sampled, recompute_dates(bars, preset, dates, future="drop"), names)
    results.append(
        GateResult(
            "incremental_equals_batch",
            drifted.empty,
            f"{len(dates)} dates recomputed one at a time: "
            + ("bit-identical" if drifted.empty else f"{len(drifted)} cells differ"),
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
            "stored columns equal the preset's declaration"
            if ok
            else f"unexpected columns {extra}, missing {missing}, label columns {label_like}",
            figures={"columns": float(len(columns))},
        )
    )

    values = stored[names].to_numpy(float) if len(stored) else np.empty((0, len(names)))
    inf_cols = [n for n, bad in zip(names, cast(np.ndarray, np.isinf(values).any(axis=0))) if bad]
    results.append(
        GateResult(
            "no_infinite_values",
            not inf_cols,
            "no infinite values" if not inf_cols else f"infinite values in {inf_cols}",
        )
    )

    warm = stored[stored["warm"]] if len(stored) else stored
    gaps, gaps_text = history_gaps(stored, preset, listings)  # respects first_date and the first bar
    results.append(
        GateResult(
            "history_complete",
            gaps == 0,
            gaps_text,
            blocking=False,
            figures={
                "cold_rows": float(len(stored) - len(warm)),
                "warm_rows": float(len(warm)),
                "rows_missing_history": float(gaps),
            },
        )
    )

    rates = missing_rates(warm, preset)  # each feature judged where it can have a value
    over = rates[rates > max_missing_rate]
    results.append(
        GateResult(
            "missing_rate_after_warmup",
            over.empty,
            f"max missing rate after warm-up {float(rates.max()) if len(rates) else 0.0:.4f} "
            f"(limit {max_missing_rate})" + ("" if over.empty else f"; over: {list(over.index)}"),
            figures={"warm_rows": float(len(warm))},
            offending=over.rename("missing").reset_index().rename(columns={"index": "feature"}),
        )
    )
    return results


def label_sample(stored: pd.DataFrame) -> pd.DataFrame:
    """The stored label rows re-derived from prices: the first few of each symbol."""
    return stored.groupby("symbol", sort=True).head(LABEL_SAMPLE_ROWS)


def labels_gate(stored: pd.DataFrame, bars: pd.DataFrame) -> list[GateResult]:
    """``stored``: the partitions' label rows; ``bars``: ohlcv of ``label_sample(stored)``'s symbols
    from its first entry date to its last exit date (unused when the sample is empty)."""
    sample = label_sample(stored)
    wrong = []
    if len(sample):
        adj_open = pd.Series(adjusted_open(bars)).set_axis(pd.MultiIndex.from_frame(bars[["symbol", "date"]]))
        for row in sample.itertuples():
            entry = adj_open.get((row.symbol, row.entry_date))
            for h in HORIZONS:
                exit_ = adj_open.get((row.symbol, getattr(row, f"exit_date_{h}")))
                got = getattr(row, f"fwd_ret_{h}")
                want = exit_ / entry - 1 if entry is not None and exit_ is not None else np.nan
                if not ((np.isnan(got) and np.isnan(want)) or got == want):
                    wrong.append(
                        {"date": row.date, "symbol": row.symbol, "horizon": h, "stored": got, "from_prices": want}
                    )
    differ = pd.DataFrame(wrong, columns=["date", "symbol", "horizon", "stored", "from_prices"])

    pending = {h: int(stored[f"fwd_ret_{h}"].isna().sum()) for h in HORIZONS}
    last_exit = stored[f"exit_date_{max(HORIZONS)}"].max() if len(stored) else None
    return [
        GateResult(
            "labels_match_prices",
            differ.empty,
            f"{len(sample)} sampled rows × {len(HORIZONS)} horizons: "
            + ("all equal open-to-open returns" if differ.empty else f"{len(differ)} differ"),
            offending=differ,
        ),
        GateResult(
            "labels_pending",
            not any(pending.values()),
            "all labels available"
            if not any(pending.values())
            else "not yet available: "
            + ", ".join(f"{n} of horizon {h}" for h, n in pending.items() if n)
            + (
                f"; complete once bars through {pd.Timestamp(last_exit).date()} are ingested"
                if last_exit is not None
                else ""
            ),
            blocking=False,
            figures={f"pending_fwd_ret_{h}": float(n) for h, n in pending.items()},
        ),
    ]
