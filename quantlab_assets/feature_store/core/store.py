"""Warehouse I/O of the feature store: the features table's schema follows the preset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.versions import content_hash
from quantlab_assets.data_curator.core.schema import PRICE_COLUMNS
from quantlab_assets.feature_store.core.features import compute_features
from quantlab_assets.feature_store.core.kinds import KINDS_VERSION
from quantlab_assets.feature_store.core.preset import FeaturePreset

# Fixed, so a run's leakage probe is reproducible: the same partition perturbs the same way.
LEAKAGE_PROBE_SEED = 20240101
# The leakage probe perturbs this many sessions after each sampled date; the last sampled date is
# the partition's end, so the features read this many sessions past it (when they are stored).
# Further ahead needs no probe: the batch rows were computed with every bar up to the partition's
# end, so a use of any later bar of the partition differs from the date recomputed without them
# (incremental_equals_batch).
LEAKAGE_PROBE_SESSIONS = 10


def empty_features(preset: FeaturePreset) -> pd.DataFrame:
    """No feature rows, with the columns and dtypes ``compute_features`` returns."""
    return pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[ns]"),
            "symbol": pd.Series(dtype=object),
            "warm": pd.Series(dtype=bool),
            **{name: pd.Series(dtype=np.float64) for name in preset.feature_names},
        }
    )


def lookback_start(start, preset: FeaturePreset) -> pd.Timestamp:
    return shift_sessions(start, -preset.lookback_sessions)


def history_gaps(stored: pd.DataFrame, preset: FeaturePreset, listings: pd.DataFrame) -> tuple[int, str]:
    """Rows whose lookback lacks history that exists or may exist, and what to ingest.

    A row of date D is cold (``warm`` false) when its symbol's bars do not reach the
    ``preset.lookback_sessions`` sessions before D. History could be ingested only from
    ``max(lookback start, the registry's first_date)``; when the first stored bar is already
    there (a young listing), the cold row is the listing's natural warm-up, not a gap.
    """
    cold = stored.loc[~stored["warm"].astype(bool), ["date", "symbol"]]
    if cold.empty:
        return 0, f"all {len(stored)} rows have a full {preset.lookback_sessions}-session lookback"
    first_cold = cold.groupby("symbol")["date"].min()
    # One calendar shift per distinct date (a backfill's symbols mostly share one), not per symbol.
    starts = {d: lookback_start(d, preset) for d in first_cold.unique()}
    need = first_cold.map(starts).rename("need_from")
    known = need.reset_index().merge(listings, on="symbol", how="left")
    known["ingest_from"] = known[["need_from", "first_date"]].max(axis=1)
    fixable = known[known["first_bar"].isna() | (known["first_bar"] > known["ingest_from"])]
    gaps = int(cold["symbol"].isin(fixable["symbol"]).sum())
    young = len(cold) - gaps
    note = f"; {young} cold rows are the warm-up after a listing's first bar" if young else ""
    if not gaps:
        return 0, f"no history missing: {young} cold rows are the warm-up after a listing's first bar"
    first = fixable.sort_values("ingest_from").iloc[0]
    where = ", ".join(f"{r.symbol} from {r.ingest_from.date()}" for r in fixable.head(5).itertuples())
    return gaps, (
        f"{gaps} of {len(stored)} rows lack a full {preset.lookback_sessions}-session lookback "
        f"(their features are NaN, not filled): ingest ohlcv for {where}"
        + (f" and {len(fixable) - 5} more symbols" if len(fixable) > 5 else "")
        + (" (set first_date in the registry for a younger listing)" if pd.isna(first.first_date) else "")
        + note
    )


def invalid_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Rows downstream must not compute on (the gate's price rules, applied to a window)."""
    prices = bars[list(PRICE_COLUMNS)]
    bad = (~np.isfinite(prices)).any(axis=1) | (prices <= 0).any(axis=1) | (bars["high"] < bars["low"])
    return bars[bad]


def sample_dates(start, end, k: int) -> list[pd.Timestamp]:
    """k sessions spread evenly over [start, end], always including both ends."""
    days = trading_days(start, end)
    if len(days) <= k:
        return list(days)
    idx = np.unique(np.linspace(0, len(days) - 1, k).round().astype(int))
    return [days[i] for i in idx]


def recompute_dates(bars: pd.DataFrame, preset: FeaturePreset, dates, *, future: str) -> pd.DataFrame:
    """Features of ``dates`` recomputed one date at a time from that date's lookback window.

    ``future`` = "drop" removes every bar after the date (the incremental computation);
    "perturb" keeps the ``LEAKAGE_PROBE_SESSIONS`` after it but scales their prices and volume by
    random factors, so any use of them would change the result (the leakage probe; a 10-year
    partition's first date would otherwise recompute ten years of bars).
    """
    rng = np.random.default_rng(LEAKAGE_PROBE_SEED)
    out = []
    for day in dates:
        lo = lookback_start(day, preset)
        window = bars[bars["date"] >= lo]
        if future == "drop":
            window = window[window["date"] <= day]
        elif future == "perturb":
            window = window[window["date"] <= shift_sessions(day, LEAKAGE_PROBE_SESSIONS)]
            later = (window["date"] > day).to_numpy()
            factor = rng.uniform(0.5, 1.5, size=int(later.sum()))
            # New columns from arrays (the frame's other columns are shared, not copied).
            scaled = {}
            for col, by in [*((c, factor) for c in PRICE_COLUMNS), ("volume", factor[::-1])]:
                values = window[col].to_numpy(dtype=np.float64, copy=True)
                values[later] = values[later] * by
                scaled[col] = values
            window = window.assign(**scaled)
        else:
            raise ValueError(f"future must be 'drop' or 'perturb', got {future!r}")
        out.append(compute_features(window, preset, day, day))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def differing_cells(stored: pd.DataFrame, recomputed: pd.DataFrame, columns) -> pd.DataFrame:
    """(date, symbol, feature, stored, recomputed) where the two differ (NaN equals NaN)."""
    keys = ["date", "symbol"]
    if recomputed.empty:  # no sampled date (a holiday partition): compare against no rows
        recomputed = stored.iloc[:0][[*keys, *columns]]
    merged = stored.merge(recomputed, on=keys, how="outer", suffixes=("_stored", "_recomputed"), indicator=True)
    rows = [
        {
            "date": r.date,
            "symbol": r.symbol,
            "feature": f"(row only in {r._merge})",
            "stored": np.nan,
            "recomputed": np.nan,
        }
        for r in merged[merged["_merge"] != "both"].itertuples()
    ]
    for name in columns:
        a, b = merged[f"{name}_stored"].to_numpy(float), merged[f"{name}_recomputed"].to_numpy(float)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        for i in np.flatnonzero(~same):
            rows.append(
                {
                    "date": merged["date"].iat[i],
                    "symbol": merged["symbol"].iat[i],
                    "feature": name,
                    "stored": a[i],
                    "recomputed": b[i],
                }
            )
    return pd.DataFrame(rows, columns=["date", "symbol", "feature", "stored", "recomputed"])


def preset_version(preset: FeaturePreset) -> str:
    """A short hash of the preset's content and of the kinds' computation (``KINDS_VERSION``):
    Dagster's code_version, so a changed preset or formula shows the stored features stale."""
    return content_hash(f"{KINDS_VERSION}:{preset.model_dump_json()}")
