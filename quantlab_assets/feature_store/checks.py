"""The feature store's quality gate: leakage 0 and incremental = batch, proven on samples."""

from typing import cast

import dagster as dg
import numpy as np
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import read_slice, table_columns
from quantlab_assets.feature_store.core.features import missing_rates
from quantlab_assets.feature_store.core.labels import HORIZONS, LABELS
from quantlab_assets.feature_store.core.store import (
    differing_cells,
    features_schema,
    history_gaps,
    lookback_start,
    read_bars,
    read_listings,
    recompute_dates,
    sample_dates,
)
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.partitions import partition_dates, trading_day_partitions
from quantlab_assets.resources import WarehouseResource

_FEATURE_SPECS = [
    ("no_lookahead_leakage", "Sampled dates recomputed with every later bar perturbed: zero differences."),
    (
        "incremental_equals_batch",
        "Sampled dates recomputed alone from their lookback window equal the stored rows exactly.",
    ),
    (
        "schema_matches_preset",
        "Stored columns are exactly date, symbol, warm and the preset's features; no label column.",
    ),
    ("no_infinite_values", "No +/-inf in any feature."),
    ("missing_rate_after_warmup", "Share of NaN per feature after warm-up within the limit."),
]
_WARM_SPEC = ("history_complete", "Every row has its full lookback window (warn: ohlcv history missing).")


def _result(name: str, passed: bool, description: str, **metadata) -> dg.AssetCheckResult:
    meta = {
        k: (dg.MetadataValue.md(markdown_table(v)) if isinstance(v, pd.DataFrame) else v) for k, v in metadata.items()
    }
    return dg.AssetCheckResult(
        asset_key="features", check_name=name, passed=bool(passed), description=description, metadata=meta
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset="features", blocking=True, description=desc, partitions_def=trading_day_partitions
        )
        for name, desc in _FEATURE_SPECS
    ]
    + [
        dg.AssetCheckSpec(
            _WARM_SPEC[0],
            asset="features",
            blocking=False,
            description=_WARM_SPEC[1],
            partitions_def=trading_day_partitions,
        )
    ],
)
def features_quality_gate(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, feature_store: FeatureStoreResource
):
    """Re-derives sampled dates from ohlcv two ways and compares with the stored features exactly."""
    start, end = partition_dates(context)
    preset = feature_store.preset()
    schema = features_schema(preset)
    dates = sample_dates(start, end, feature_store.check_sample_dates)
    with warehouse.get_connection() as con:
        stored = read_slice(con, schema, start, end)
        bars = read_bars(con, lookback_start(min(dates), preset) if dates else start, shift_sessions(end, 10))
        columns = table_columns(con, schema.name)
        listings = read_listings(con, stored["symbol"].unique())
    names = preset.feature_names
    sampled = stored[stored["date"].isin(dates)]

    leaked = differing_cells(sampled, recompute_dates(bars, preset, dates, future="perturb"), names)
    yield _result(
        "no_lookahead_leakage",
        leaked.empty,
        f"{len(dates)} dates recomputed with later bars perturbed: "
        + (
            "no difference"
            if leaked.empty
            else f"{len(leaked)} cells changed, e.g. "
            f"{leaked.iloc[0]['feature']} of {leaked.iloc[0]['symbol']} {pd.Timestamp(leaked.iloc[0]['date']).date()}"
        ),
        sample_dates=", ".join(str(d.date()) for d in dates),
        differences=leaked,
    )

    drifted = differing_cells(sampled, recompute_dates(bars, preset, dates, future="drop"), names)
    yield _result(
        "incremental_equals_batch",
        drifted.empty,
        f"{len(dates)} dates recomputed one at a time: "
        + ("bit-identical" if drifted.empty else f"{len(drifted)} cells differ"),
        differences=drifted,
    )

    expected = schema.column_names
    extra, missing = sorted(set(columns) - set(expected)), sorted(set(expected) - set(columns))
    label_like = [c for c in columns if c.startswith("fwd_") or c in LABELS.column_names[3:]]
    ok = not extra and not missing and not label_like
    yield _result(
        "schema_matches_preset",
        ok,
        "stored columns equal the preset's declaration"
        if ok
        else f"unexpected columns {extra}, missing {missing}, label columns {label_like}",
        columns=len(columns),
    )

    values = stored[names].to_numpy(float) if len(stored) else np.empty((0, len(names)))
    inf_cols = [n for n, bad in zip(names, cast(np.ndarray, np.isinf(values).any(axis=0))) if bad]
    yield _result(
        "no_infinite_values", not inf_cols, "no infinite values" if not inf_cols else f"infinite values in {inf_cols}"
    )

    warm = stored[stored["warm"]] if len(stored) else stored
    cold = len(stored) - len(warm)
    gaps, gaps_text = history_gaps(stored, preset, listings)  # respects first_date and the first bar
    yield dg.AssetCheckResult(
        asset_key="features",
        check_name="history_complete",
        passed=gaps == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=gaps_text,
        metadata={"cold_rows": cold, "warm_rows": len(warm), "rows_missing_history": gaps},
    )
    rates = missing_rates(warm, preset)  # each feature judged where it can have a value
    over = rates[rates > feature_store.max_missing_rate]
    yield _result(
        "missing_rate_after_warmup",
        over.empty,
        f"max missing rate after warm-up {float(rates.max()) if len(rates) else 0.0:.4f} "
        f"(limit {feature_store.max_missing_rate})" + ("" if over.empty else f"; over: {list(over.index)}"),
        warm_rows=len(warm),
        over_limit=over.rename("missing").reset_index().rename(columns={"index": "feature"}),
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "labels_match_prices",
            asset="labels",
            blocking=True,
            partitions_def=trading_day_partitions,
            description="Sampled labels recomputed from ohlcv opens equal the stored ones.",
        ),
        dg.AssetCheckSpec(
            "labels_pending",
            asset="labels",
            blocking=False,
            partitions_def=trading_day_partitions,
            description="Labels whose exit bar is not ingested yet (warning only).",
        ),
    ],
)
def labels_quality_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Labels are finite where available, and exactly next-open to open h sessions later."""
    start, end = partition_dates(context)
    with warehouse.get_connection() as con:
        stored = read_slice(con, LABELS, start, end)
        sample = stored.groupby("symbol", sort=True).head(3)
        wrong = []
        if len(sample):
            bars = read_bars(
                con,
                sample["entry_date"].min(),
                sample[f"exit_date_{max(HORIZONS)}"].max(),
                symbols=sorted(sample["symbol"].unique()),
            )
            adj_open = bars.assign(adj_open=bars["open"] * bars["adj_close"] / bars["close"]).set_index(
                ["symbol", "date"]
            )["adj_open"]
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
    wrong = pd.DataFrame(wrong, columns=["date", "symbol", "horizon", "stored", "from_prices"])
    yield dg.AssetCheckResult(
        asset_key="labels",
        check_name="labels_match_prices",
        passed=wrong.empty,
        description=f"{len(sample)} sampled rows × {len(HORIZONS)} horizons: "
        + ("all equal open-to-open returns" if wrong.empty else f"{len(wrong)} differ"),
        metadata={"differences": dg.MetadataValue.md(markdown_table(wrong))},
    )
    pending = {h: int(stored[f"fwd_ret_{h}"].isna().sum()) for h in HORIZONS}
    last_exit = stored[f"exit_date_{max(HORIZONS)}"].max() if len(stored) else None
    yield dg.AssetCheckResult(
        asset_key="labels",
        check_name="labels_pending",
        passed=not any(pending.values()),
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "all labels available"
            if not any(pending.values())
            else "not yet available: "
            + ", ".join(f"{n} of horizon {h}" for h, n in pending.items() if n)
            + (
                f"; complete once bars through {pd.Timestamp(last_exit).date()} are ingested"
                if last_exit is not None
                else ""
            )
        ),
        metadata={f"pending_fwd_ret_{h}": n for h, n in pending.items()},
    )
