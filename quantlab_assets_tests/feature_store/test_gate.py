"""The feature store's gate rules on hand-made frames (the Dagster checks only adapt these)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.feature_store.core.features import FeaturePreset, compute_features
from quantlab_assets.feature_store.core.gate import features_gate, labels_gate
from quantlab_assets.feature_store.core.labels import compute_labels
from quantlab_assets.feature_store.core.schema import features_schema

# Three features: a 1-day and a 5-day return and the cross-sectional z-score of the 5-day one.
PRESET = FeaturePreset.model_validate(
    {
        "name": "tiny",
        "features": [
            {"name": "ret_1", "kind": "return", "params": {"horizon": 1}},
            {"name": "ret_5", "kind": "return", "params": {"horizon": 5}},
            {"name": "cs_z_ret_5", "kind": "cs_zscore", "params": {"of": "ret_5"}},
        ],
    }
)
DAYS = trading_days("2024-01-02", "2024-03-28")
START, END = DAYS[30], DAYS[40]
DATES = [START, DAYS[35], END]


def _bars(symbols=("AAA", "BBB", "CCC")) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(DAYS))))
        frames.append(
            pd.DataFrame(
                {
                    "date": DAYS,
                    "symbol": symbol,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "adj_close": close,
                    "volume": 1e6,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _listings(bars: pd.DataFrame) -> pd.DataFrame:
    first = bars.groupby("symbol", as_index=False)["date"].min().rename(columns={"date": "first_bar"})
    return first.assign(first_date=pd.NaT)[["symbol", "first_date", "first_bar"]]


def _verdicts(stored, bars, columns=None, max_missing_rate=0.05):
    columns = features_schema(PRESET).column_names if columns is None else columns
    results = features_gate(stored, bars, columns, _listings(bars), PRESET, DATES, max_missing_rate)
    return {r.name: r for r in results}


def test_stored_batch_features_pass_every_rule():
    bars = _bars()
    v = _verdicts(compute_features(bars, PRESET, START, END), bars)
    assert list(v) == [
        "no_lookahead_leakage",
        "incremental_equals_batch",
        "schema_matches_preset",
        "no_infinite_values",
        "one_row_per_symbol_and_day",
        "history_complete",
        "missing_rate_after_warmup",
    ]
    assert all(r.passed for r in v.values()), {n: r.description for n, r in v.items() if not r.passed}
    sampled = ", ".join(str(d.date()) for d in DATES)
    assert v["no_lookahead_leakage"].description == (
        f"3 dates ({sampled}) recomputed with later bars perturbed: no difference"
    )
    assert v["history_complete"].blocking is False
    assert all(r.blocking for n, r in v.items() if n != "history_complete")
    rows = len(DAYS[30:41]) * 3
    assert v["history_complete"].figures == {"cold_rows": 0.0, "warm_rows": float(rows), "rows_missing_history": 0.0}


def test_a_feature_that_reads_the_next_bar_is_a_leak():
    bars = _bars()
    stored = compute_features(bars, PRESET, START, END)
    cell = (stored["symbol"] == "AAA") & (stored["date"] == DAYS[35])
    honest = stored.loc[cell, "ret_1"].item()
    # Store AAA's ret_1 of DAYS[35] as the return into the next session: it uses a later bar.
    aaa = bars[bars["symbol"] == "AAA"].set_index("date")["close"]
    leak = aaa[DAYS[36]] / aaa[DAYS[35]] - 1
    stored.loc[cell, "ret_1"] = leak
    v = _verdicts(stored, bars)
    leaked = v["no_lookahead_leakage"]
    assert not leaked.passed
    assert leaked.description.endswith(
        f"recomputed with later bars perturbed: 1 cells changed, e.g. ret_1 of AAA {DAYS[35].date()}"
    )
    row = leaked.offending.iloc[0]
    assert (row["date"], row["symbol"], row["feature"], row["stored"]) == (DAYS[35], "AAA", "ret_1", leak)
    assert row["recomputed"] == honest  # recomputed from bars through DAYS[35] only
    assert not v["incremental_equals_batch"].passed
    assert v["incremental_equals_batch"].description == (
        f"3 dates recomputed one at a time: 1 cells differ, e.g. ret_1 of AAA {DAYS[35].date()}"
    )
    assert v["schema_matches_preset"].passed and v["no_infinite_values"].passed


def test_a_nan_beyond_warm_up_counts_against_the_missing_rate():
    bars = _bars()
    stored = compute_features(bars, PRESET, START, END)
    # One NaN ret_1 on a non-sampled date of a warm row: 1 of 33 rows (> 1% limit).
    stored.loc[(stored["symbol"] == "BBB") & (stored["date"] == DAYS[32]), "ret_1"] = np.nan
    v = _verdicts(stored, bars, max_missing_rate=0.01)
    over = v["missing_rate_after_warmup"]
    assert not over.passed
    assert over.description == f"max missing rate after warm-up {1 / 33:.4f} (limit 0.01); over: ['ret_1']"
    assert over.offending.to_dict("records") == [{"feature": "ret_1", "missing": 1 / 33}]
    assert over.figures == {"warm_rows": 33.0}
    assert v["no_lookahead_leakage"].passed  # the sampled dates are untouched
    assert _verdicts(stored, bars, max_missing_rate=0.05)["missing_rate_after_warmup"].passed


def test_an_infinite_value_and_a_label_column_fail_their_rules():
    bars = _bars()
    stored = compute_features(bars, PRESET, START, END)
    stored.loc[stored.index[0], "ret_5"] = np.inf
    columns = [*features_schema(PRESET).column_names, "fwd_ret_1"]
    v = _verdicts(stored, bars, columns=columns)
    assert not v["no_infinite_values"].passed
    assert v["no_infinite_values"].description == f"1 infinite values in ['ret_5'], e.g. ret_5 of AAA {START.date()}"
    assert v["no_infinite_values"].offending.to_dict("records") == [
        {"date": START, "symbol": "AAA", "column": "ret_5", "value": "inf"}
    ]
    schema = v["schema_matches_preset"]
    assert not schema.passed
    assert schema.description == "unexpected columns ['fwd_ret_1'], missing [], label columns ['fwd_ret_1']"
    assert schema.figures == {"columns": 7.0}


def test_one_name_universe_passes_with_its_z_scores_undefined():
    bars = _bars(symbols=("AAA",))
    stored = compute_features(bars, PRESET, START, END)
    assert stored["cs_z_ret_5"].isna().all()  # a z-score of one name is NaN by definition
    v = _verdicts(stored, bars, max_missing_rate=0.0)
    assert all(r.passed for r in v.values()), {n: r.description for n, r in v.items() if not r.passed}
    assert v["missing_rate_after_warmup"].offending.empty


def test_cold_rows_whose_history_may_exist_warn():
    bars = _bars()
    short = bars[bars["date"] >= DAYS[28]]  # only 2 sessions of history before START
    stored = compute_features(short, PRESET, START, END)
    # ohlcv starts at DAYS[28] and no listing date is known: the missing history may exist.
    results = features_gate(
        stored, short, features_schema(PRESET).column_names, _listings(short), PRESET, DATES, max_missing_rate=1.0
    )
    history = {r.name: r for r in results}["history_complete"]
    cold = int((~stored["warm"]).sum())
    assert cold > 0 and not history.passed and not history.blocking
    assert history.figures["rows_missing_history"] == float(cold)
    assert history.description.startswith(f"{cold} of {len(stored)} rows lack a full")
    assert "ingest ohlcv for AAA from" in history.description


def test_labels_equal_open_to_open_returns_and_pending_ones_warn():
    bars = _bars(symbols=("AAA", "BBB"))
    stored = compute_labels(bars, DAYS[-10], DAYS[-1])
    sample_bars = bars[bars["date"] >= DAYS[-10]]
    v = {r.name: r for r in labels_gate(stored, sample_bars)}
    assert v["labels_match_prices"].passed
    assert v["labels_match_prices"].description == "6 sampled rows × 3 horizons: all equal open-to-open returns"
    pending = v["labels_pending"]
    assert not pending.passed and not pending.blocking  # the last sessions have no exit bar yet
    # Entry at the next open, exit h opens later: the last two sessions of each symbol lack fwd_ret_1.
    assert pending.figures["pending_fwd_ret_1"] == 4.0
    assert pending.figures["pending_fwd_ret_20"] == 20.0

    wrong = stored.copy()
    first = wrong.index[0]
    wrong.loc[first, "fwd_ret_1"] += 0.01
    v = {r.name: r for r in labels_gate(wrong, sample_bars)}
    assert not v["labels_match_prices"].passed
    symbol, day = wrong.loc[first, "symbol"], wrong.loc[first, "date"].date()
    assert (
        v["labels_match_prices"].description
        == f"6 sampled rows × 3 horizons: 1 differ, e.g. fwd_ret_1 of {symbol} {day}"
    )
    assert v["labels_match_prices"].offending[["symbol", "horizon"]].to_dict("records") == [
        {"symbol": wrong.loc[first, "symbol"], "horizon": 1}
    ]


def test_no_labels_no_bars_needed():
    empty = compute_labels(_bars().iloc[:0], DAYS[0], DAYS[1])
    v = {r.name: r for r in labels_gate(empty, pd.DataFrame())}
    assert v["labels_match_prices"].passed and v["labels_pending"].passed


def test_an_infinite_or_duplicated_label_fails_naming_symbol_and_date():
    bars = _bars(symbols=("AAA", "BBB"))
    labels = compute_labels(bars, DAYS[-10], DAYS[-1])
    sample_bars = bars[bars["date"] >= DAYS[-10]]
    bad = labels.copy()
    row = bad.index[(bad["symbol"] == "BBB") & (bad["date"] == DAYS[-5])][0]
    bad.loc[row, "fwd_ret_5"] = -np.inf
    bad = pd.concat([bad, bad.loc[[row]]], ignore_index=True)
    v = {r.name: r for r in labels_gate(bad, sample_bars)}
    assert not v["no_infinite_values"].passed and v["no_infinite_values"].blocking
    # The duplicate carries the inf too: two cells, one (date, symbol).
    assert v["no_infinite_values"].description == (
        f"2 infinite values in ['fwd_ret_5'], e.g. fwd_ret_5 of BBB {DAYS[-5].date()}"
    )
    dupes = v["one_row_per_symbol_and_day"]
    assert not dupes.passed and dupes.description == f"1 duplicate rows, e.g. BBB {DAYS[-5].date()}"
    assert v["labels_match_prices"].passed  # the sampled first rows are untouched
    assert {r.name for r in labels_gate(labels, sample_bars) if not r.passed} == {"labels_pending"}
