"""Write, audit, publish for ``features`` and ``labels`` through the real Definitions: a week is
published by a passing run (exactly the kernels' rows); then a run whose candidate rows break a
blocking rule keeps every stored row bit for bit, records the refusal in ``audit_rejects``, fails
the check naming symbol and date, marks its partitions not written and stops what follows."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pandas as pd
import pytest

import quantlab_assets.feature_store.core.step as partition
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.common.publish import read_audit_rejects
from quantlab_assets.common.warehouse import connect, table_checksum
from quantlab_assets.data_curator.core.bars import read_bars
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import PRESET
from quantlab_assets.feature_store.core.features import compute_features
from quantlab_assets.feature_store.core.labels import MAX_FORWARD_SESSIONS, compute_labels
from quantlab_assets.feature_store.core.schema import LABELS, features_schema
from quantlab_assets.feature_store.core.store import lookback_start

START, END = "2024-04-01", "2024-04-05"
BAD_DAY = pd.Timestamp("2024-04-03")  # not a sampled date (04-01, 04-02, 04-04, 04-05): only the inf rule sees it
TARGETS = "momentum_topk/momentum_topk_targets"
FEATURES = features_schema(PRESET)


def _run(selection, start, end):
    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        tags=tags,
        asset_selection=[dg.AssetKey(k.split("/")) for k in selection],
        raise_on_error=False,
    )


def _state(db) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "features": table_checksum(con, "features", FEATURES.column_names),
            "labels": table_checksum(con, "labels", LABELS.column_names),
        }


def _checks(result) -> dict:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def published_week(lab_env, small_universe):
    """ohlcv with a year of history and every label's exit bar, then features and labels of the week."""
    history = str(shift_sessions(START, -260).date()), str(shift_sessions(END, MAX_FORWARD_SESSIONS).date())
    assert _run(["ohlcv"], *history).success
    result = _run(["features", "labels"], START, END)
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    failed = {k: c.description for k, c in _checks(result).items() if not c.passed}
    assert failed == {}, failed
    before = _state(lab_env["QUANTLAB_DB"])
    assert before["features"][0] == before["labels"][0] == 25  # 5 names x 5 sessions
    return {"db": lab_env["QUANTLAB_DB"], "artifacts": lab_env["QUANTLAB_ARTIFACTS"], "before": before}


def test_a_passing_run_publishes_exactly_the_kernels_rows(published_week):
    with connect(published_week["db"]) as con:
        stored = con.execute("SELECT * FROM features ORDER BY symbol, date").df()
        labels = con.execute("SELECT * FROM labels ORDER BY symbol, date").df()
        bars = read_bars(con, lookback_start(START, PRESET), shift_sessions(END, MAX_FORWARD_SESSIONS))
        rejects = read_audit_rejects(con)
    features = compute_features(bars[bars["date"] <= END], PRESET, START, END)
    pd.testing.assert_frame_equal(stored, features, check_exact=True, check_dtype=False)
    expected = compute_labels(bars[bars["date"] >= START], START, END)
    for col in ("date", "entry_date", *(c for c in LABELS.column_names if c.startswith("exit_date_"))):
        labels[col] = pd.to_datetime(labels[col])
    pd.testing.assert_frame_equal(labels, expected, check_exact=True, check_dtype=False)
    assert labels["fwd_ret_20"].notna().all()
    assert rejects.empty


def test_a_failed_audit_keeps_the_stored_rows_and_stops_downstream(published_week, monkeypatch):
    def poisoned_features(*args, **kwargs):
        frame = compute_features(*args, **kwargs)
        frame.loc[(frame["symbol"] == "CCC") & (frame["date"] == BAD_DAY), "ret_5"] = float("inf")
        return frame

    def doubled_labels(*args, **kwargs):
        frame = compute_labels(*args, **kwargs)
        return pd.concat([frame, frame[(frame["symbol"] == "DDD") & (frame["date"] == BAD_DAY)]], ignore_index=True)

    monkeypatch.setattr(partition, "compute_features", poisoned_features)
    monkeypatch.setattr(partition, "compute_labels", doubled_labels)
    result = _run(["features", "labels", TARGETS], START, END)
    assert not result.success

    # The stored rows: the same count and checksum as before the run.
    assert _state(published_week["db"]) == published_week["before"]

    # The blocking checks failed, naming symbol and date; the other rules passed on the candidate.
    checks = _checks(result)
    inf = checks[("features", "no_infinite_values")]
    assert not inf.passed and inf.severity == dg.AssetCheckSeverity.ERROR
    assert inf.description == "1 infinite values in ['ret_5'], e.g. ret_5 of CCC 2024-04-03"
    dupes = checks[("labels", "one_row_per_symbol_and_day")]
    assert not dupes.passed and dupes.description == "1 duplicate rows, e.g. DDD 2024-04-03"
    failed = {k for k, c in checks.items() if not c.passed}
    assert failed == {("features", "no_infinite_values"), ("labels", "one_row_per_symbol_and_day")}

    # The refusal, with the run, the rule and the offending rows.
    with connect(published_week["db"]) as con:
        rejects = read_audit_rejects(con, result.run_id)
    assert rejects[["contract", "rule", "candidate_rows"]].to_dict("records") == [
        {"contract": "features", "rule": "no_infinite_values", "candidate_rows": 25},
        {"contract": "labels", "rule": "one_row_per_symbol_and_day", "candidate_rows": 26},
    ]
    by_rule = {r.rule: r for r in rejects.itertuples()}
    assert json.loads(by_rule["no_infinite_values"].offending) == [
        {"date": "2024-04-03T00:00:00.000", "symbol": "CCC", "column": "ret_5", "value": "inf"}
    ]
    assert by_rule["no_infinite_values"].reason == inf.description
    offending = json.loads(by_rule["one_row_per_symbol_and_day"].offending)
    assert [(r["symbol"], r["date"][:10]) for r in offending] == [("DDD", "2024-04-03")] * 2
    assert {str(r.start_date.date()) for r in rejects.itertuples()} == {START}

    # Every partition of both steps says it was not written; downstream did not run.
    events = {
        (m.asset_key.to_user_string(), m.partition): m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert {key for key, _ in events} == {"features", "labels"}
    for day in trading_days(START, END):
        for asset in ("features", "labels"):
            meta = events[(asset, str(day.date()))]
            assert meta["dagster/row_count"].value == 0
            assert meta["session"].value.startswith("not written: the audit refused the new rows"), meta
    assert "no_infinite_values: 1 infinite values" in events[("features", START)]["not_written"].value
    succeeded = {e.step_key for e in result.get_step_success_events()}
    assert not any("targets" in step for step in succeeded)

    # The profile of the refused rows is kept for inspection and says so.
    report = (published_week["artifacts"] / "runs" / result.run_id / "reports" / "feature_profile.md").read_text()
    # The run's range ends on the Sunday: a Friday partition owns its weekend.
    title = f"# Feature profile: default {START}..2024-04-07 (refused by the audit: stored rows kept)"
    assert report.splitlines()[0] == title


def test_missing_upstream_goes_the_same_way_and_names_what_to_materialize(published_week):
    start, end = "2024-06-03", "2024-06-05"  # after the stored ohlcv
    result = _run(["features"], start, end)
    assert not result.success
    assert _state(published_week["db"]) == published_week["before"]
    checks = {name: c for (asset, name), c in _checks(result).items() if asset == "features"}
    assert "ohlcv missing for 3 of 3 sessions of 2024-06-03..2024-06-05" in checks["upstream_complete"].description
    assert checks["ohlcv_valid"].passed  # what was read is valid, there is just not enough of it
    # Every other rule has a result (Dagster needs one per declared check): a warning, never a pass.
    others = [c for name, c in checks.items() if name not in ("upstream_complete", "ohlcv_valid")]
    assert others and all(not c.passed and c.severity == dg.AssetCheckSeverity.WARN for c in others)
    with connect(published_week["db"]) as con:
        rejects = read_audit_rejects(con, result.run_id)
    assert rejects["rule"].tolist() == ["upstream_complete"]
    missing = json.loads(rejects["offending"].iat[0])
    assert [(r["input"], r["date"][:10], r["materialize"]) for r in missing] == [
        ("ohlcv", d, "ohlcv") for d in ("2024-06-03", "2024-06-04", "2024-06-05")
    ]
