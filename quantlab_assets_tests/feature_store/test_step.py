"""One partition computed and audited in memory (core.step): the candidate rows are the
kernels' rows, the gate judges exactly them, and a failed input rule computes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.feature_store.core.features import compute_features
from quantlab_assets.feature_store.core.labels import compute_labels
from quantlab_assets.feature_store.core.schema import HORIZONS, features_schema, label_column
from quantlab_assets.feature_store.core.step import (
    LEAKAGE_PROBE_SESSIONS,
    FeatureLimits,
    features_partition,
    features_read_window,
    labels_partition,
    labels_read_window,
)
from quantlab_assets.feature_store.core.store import lookback_start
from quantlab_assets_tests.feature_store.test_gate import PRESET, _bars, _listings

DAYS = trading_days("2024-01-02", "2024-03-28")
START, END = DAYS[30], DAYS[34]
LIMITS = FeatureLimits(
    max_missing_rate=0.0, sample_dates=3, corr_threshold=0.95, psi_threshold=0.25, drift_reference_sessions=10
)


def _window(bars: pd.DataFrame, lo, hi) -> pd.DataFrame:
    return bars[(bars["date"] >= lo) & (bars["date"] <= hi)].reset_index(drop=True)


def _features(bars: pd.DataFrame, reference: pd.DataFrame | None = None):
    read = _window(bars, *features_read_window(START, END, PRESET))
    reference = read.iloc[:0] if reference is None else reference
    return read, features_partition(read, _listings(bars), reference, PRESET, START, END, LIMITS)


def _verdicts(gate) -> dict:
    return {g.name: g for g in gate}


def test_the_candidate_is_the_kernels_rows_and_every_rule_passes():
    bars = _bars()
    read, part = _features(bars)
    before = read.copy()
    expected = compute_features(_window(bars, lookback_start(START, PRESET), END), PRESET, START, END)
    pd.testing.assert_frame_equal(part.frame, expected, check_exact=True)
    pd.testing.assert_frame_equal(read, before)  # inputs are not modified
    v = _verdicts(part.gate)
    assert list(v)[:2] == ["upstream_complete", "ohlcv_valid"]
    assert all(g.passed for g in part.gate), {g.name: g.description for g in part.gate if not g.passed}
    assert v["ohlcv_valid"].figures == {"ohlcv_rows": float(len(read[read["date"] <= END])), "invalid_rows": 0.0}
    assert part.profile is not None and part.profile.rows == len(expected)
    assert part.report.startswith(f"# Feature profile: tiny {START}..{END}\n")


def test_bars_after_the_partition_serve_the_leakage_probe_only():
    bars = _bars()
    _, part = _features(bars)
    assert features_read_window(START, END, PRESET)[1] == shift_sessions(END, LEAKAGE_PROBE_SESSIONS)
    # Later bars scaled by 3: the candidate rows cannot change, or the features leak.
    later = bars.copy()
    after = later["date"] > END
    later.loc[after, ["open", "high", "low", "close", "adj_close"]] *= 3.0
    _, moved = _features(later)
    pd.testing.assert_frame_equal(part.frame, moved.frame, check_exact=True)


def test_an_infinite_feature_fails_the_audit_naming_symbol_and_date(monkeypatch):
    import quantlab_assets.feature_store.core.step as partition

    day = DAYS[33]  # not one of the 3 sampled dates (START, DAYS[32], END)

    def poisoned(*args, **kwargs):
        frame = compute_features(*args, **kwargs)
        frame.loc[(frame["symbol"] == "BBB") & (frame["date"] == day), "ret_5"] = np.inf
        return frame

    monkeypatch.setattr(partition, "compute_features", poisoned)
    _, part = _features(_bars())
    v = _verdicts(part.gate)
    failed = {g.name for g in part.gate if not g.passed}
    assert failed == {"no_infinite_values"}
    assert v["no_infinite_values"].blocking
    assert v["no_infinite_values"].description == f"1 infinite values in ['ret_5'], e.g. ret_5 of BBB {day.date()}"
    assert "(refused by the audit: stored rows kept)" in part.report.splitlines()[0]


def test_a_duplicated_row_fails_one_row_per_symbol_and_day(monkeypatch):
    import quantlab_assets.feature_store.core.step as partition

    def doubled(*args, **kwargs):
        frame = compute_features(*args, **kwargs)
        return pd.concat([frame, frame.iloc[[3]]], ignore_index=True)

    monkeypatch.setattr(partition, "compute_features", doubled)
    _, part = _features(_bars())
    dupes = _verdicts(part.gate)["one_row_per_symbol_and_day"]
    row = part.frame.iloc[3]
    assert not dupes.passed and dupes.blocking
    assert dupes.description == f"1 duplicate rows, e.g. {row['symbol']} {row['date'].date()}"
    assert len(dupes.offending) == 2 and dupes.figures == {"duplicate_rows": 1.0}


def test_a_missing_session_computes_nothing_and_reports_the_rules_not_evaluated():
    bars = _bars()
    holey = bars[bars["date"] != DAYS[32]]
    _, part = _features(holey)
    assert part.frame.empty and list(part.frame.columns) == features_schema(PRESET).column_names
    assert part.profile is None and part.report == ""
    upstream, valid, *rules = part.gate
    assert not upstream.passed and upstream.blocking
    assert f"ohlcv missing for 1 of 5 sessions of {START.date()}..{END.date()}" in upstream.description
    assert valid.passed
    # Every declared rule still has a result (Dagster needs one per check): a warning, not a pass.
    assert [r.name for r in rules] == [r.name for r in _features(bars)[1].gate[2:]]
    assert all(not r.passed and not r.blocking for r in rules)
    assert {r.description for r in rules} == {"not evaluated: upstream_complete failed, nothing was computed"}


def test_an_invalid_bar_in_the_lookback_computes_nothing_and_names_it():
    bars = _bars()
    bad = bars.copy()
    cell = (bad["symbol"] == "CCC") & (bad["date"] == DAYS[29])
    bad.loc[cell, "close"] = -1.0
    _, part = _features(bad)
    v = _verdicts(part.gate)
    assert part.frame.empty and v["upstream_complete"].passed
    assert not v["ohlcv_valid"].passed
    assert v["ohlcv_valid"].description == (
        f"ohlcv has 1 invalid rows in the window read (first: CCC {DAYS[29].date()}): "
        "the ohlcv gate must pass first; nothing was computed"
    )
    assert v["ohlcv_valid"].offending[["symbol", "close"]].to_dict("records") == [{"symbol": "CCC", "close": -1.0}]
    assert v["no_lookahead_leakage"].description == "not evaluated: ohlcv_valid failed, nothing was computed"


@pytest.mark.parametrize("end", [DAYS[34], DAYS[-3]], ids=["complete", "pending"])
def test_labels_candidate_is_the_kernels_rows_with_pending_counts(end):
    bars = _bars()
    read = _window(bars, *labels_read_window(START, end))
    part = labels_partition(read, START, end)
    expected = compute_labels(read, START, end)
    pd.testing.assert_frame_equal(part.frame, expected, check_exact=True)
    v = _verdicts(part.gate)
    assert list(v) == [
        "upstream_complete",
        "ohlcv_valid",
        "labels_match_prices",
        "no_infinite_values",
        "one_row_per_symbol_and_day",
        "labels_pending",
    ]
    assert all(g.passed for g in part.gate if g.blocking)
    pending = {f"pending_{label_column(h)}": int(expected[label_column(h)].isna().sum()) for h in HORIZONS}
    assert part.pending == pending
    assert v["labels_pending"].passed == (not any(pending.values()))
    by_day = part.pending_by_day
    assert sorted(by_day) == list(trading_days(START, end))
    assert {k: sum(d[k] for d in by_day.values()) for k in pending} == pending


def test_labels_without_their_partition_bars_compute_nothing():
    bars = _bars()
    read = _window(bars, *labels_read_window(START, END))
    part = labels_partition(read[read["date"] != START], START, END)
    v = _verdicts(part.gate)
    assert part.frame.empty and not v["upstream_complete"].passed
    assert not v["labels_match_prices"].passed and not v["labels_match_prices"].blocking


def test_the_assets_declare_one_check_per_gate_rule_with_its_blocking_flag():
    from quantlab_assets.feature_store.assets import features, labels

    bars = _bars()
    _, part = _features(bars)
    declared = {(spec.name, spec.blocking) for spec in features.check_specs}
    assert declared == {(g.name, g.blocking) for g in part.gate}
    labelled = labels_partition(_window(bars, *labels_read_window(START, END)), START, END)
    assert {(spec.name, spec.blocking) for spec in labels.check_specs} == {(g.name, g.blocking) for g in labelled.gate}
