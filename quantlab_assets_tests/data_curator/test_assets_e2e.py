"""End to end: the real Definitions, real DuckDB files, real Dagster run storage."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import table_checksum
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.definitions import defs

RANGE_TAGS = {"dagster/asset_partition_range_start": "2024-03-25", "dagster/asset_partition_range_end": "2024-04-05"}
CONTENT = [c for c in OHLCV.column_names if c not in ("ingested_at", "run_id")]


def _run_chain(instance, tags=None, partition_key=None, raise_on_error=True):
    """ohlcv and its checks through the real Definitions (downstream teams have their own tests)."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        tags=tags,
        partition_key=partition_key,
        asset_selection=[dg.AssetKey("ohlcv")],
        raise_on_error=raise_on_error,
    )


def _ohlcv(db) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * FROM ohlcv ORDER BY symbol, date").df()


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_range_then_next_partition_then_rerun_is_idempotent(lab_env, small_universe):
    instance = dg.DagsterInstance.get()  # the temporary DAGSTER_HOME: real SQLite storage
    result = _run_chain(instance, tags=RANGE_TAGS)
    assert result.success
    # 2024-03-25..04-05 has 9 sessions (Good Friday 2024-03-29 is a holiday, not a gap).
    rows = _ohlcv(lab_env["QUANTLAB_DB"])
    assert len(rows) == 5 * 9
    assert pd.Timestamp("2024-03-29") not in set(rows["date"])
    checks = _checks(result)
    assert set(checks) == {
        "ingest_success_rate",
        "coverage",
        "duplicates",
        "invalid_prices",
        "volume_non_negative",
        "suspicious_jumps",
    }
    assert all(checks.values())

    # The next partition alone appends exactly one session.
    assert _run_chain(instance, partition_key="2024-04-08").success
    rows = _ohlcv(lab_env["QUANTLAB_DB"])
    assert len(rows) == 5 * 10
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        before = table_checksum(con, "ohlcv", CONTENT)

    # Re-running a partition inside the range replaces it: same count, same content.
    assert _run_chain(instance, partition_key="2024-03-27").success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        after = table_checksum(con, "ohlcv", CONTENT)
        rerun_rows = con.execute("SELECT count(*) FROM ohlcv WHERE date = '2024-03-27'").fetchone()[0]
    assert after == before
    assert rerun_rows == 5

    # Run history lives in Dagster's own storage under DAGSTER_HOME.
    runs = instance.get_runs()
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert (lab_env["DAGSTER_HOME"] / "history" / "runs.db").exists()
    # Each run wrote its quality report.
    for run in runs:
        report = lab_env["QUANTLAB_ARTIFACTS"] / "runs" / run.run_id / "reports" / "quality_report.md"
        assert "Gate verdict: **PASSED**" in report.read_text()


def test_holiday_partition_is_empty_and_passes(lab_env, small_universe):
    result = _run_chain(dg.DagsterInstance.get(), partition_key="2024-07-04")
    assert result.success and all(_checks(result).values())
    assert len(_ohlcv(lab_env["QUANTLAB_DB"])) == 0


@dg.asset(partitions_def=ohlcv.partitions_def, deps=[ohlcv], backfill_policy=dg.BackfillPolicy.single_run())
def probe_downstream(context) -> None:
    """Stands in for features: must never run on a failed gate."""


def _write_csvs(directory, bars: pd.DataFrame) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for symbol, frame in bars.groupby("symbol"):
        frame.drop(columns=["symbol"]).to_csv(directory / f"{symbol}.csv", index=False)


def test_corrupt_source_row_fails_gate_and_blocks_downstream(lab_env, small_universe, tmp_path, monkeypatch):
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    bars = SyntheticProvider().fetch(small_universe, "2024-03-25", "2024-04-05").bars
    bad = (bars["symbol"] == "CCC") & (bars["date"] == pd.Timestamp("2024-04-02"))
    bars.loc[bad, "high"] = bars.loc[bad, "low"] * 0.9  # high < low
    _write_csvs(tmp_path / "csv", bars)
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(tmp_path / "csv"))

    result = dg.materialize(
        [symbols, ohlcv, ohlcv_quality_gate, probe_downstream],
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
        tags=RANGE_TAGS,
        raise_on_error=False,
    )
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["invalid_prices"].passed
    description = evaluations["invalid_prices"].description
    assert f"CCC: {tmp_path / 'csv' / 'CCC.csv'}, 2024-04-02, column high, low" in description
    assert "high < low" in description and "CCC kept the stored rows" in description
    # CCC was never published: it had nothing stored, so coverage names its missing sessions.
    assert not evaluations["coverage"].passed and "CCC (9 missing)" in evaluations["coverage"].description
    assert evaluations["ingest_success_rate"].passed  # the file was readable; the audit refused it
    stored = _ohlcv(lab_env["QUANTLAB_DB"])
    assert sorted(set(stored["symbol"])) == ["AAA", "BBB", "DDD", "EEE"] and len(stored) == 4 * 9
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        rejects = con.execute('SELECT symbol, date, source, "column", check_name FROM ohlcv_rejects').fetchall()
    assert rejects == [
        (
            "CCC",
            pd.Timestamp("2024-04-02").date(),
            str(tmp_path / "csv" / "CCC.csv"),
            "high, low, open, close",
            "invalid_prices",
        )
    ]
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("ohlcv")}  # the good symbols are published, but ...
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "ohlcv" in started and "probe_downstream" not in started  # ... never consumed
    gate_failure = result.failure_data_for_node("ohlcv_quality_gate")
    assert "invalid_prices" in gate_failure.error.message


def test_corrupting_a_stored_row_fails_the_checks(lab_env, small_universe):
    instance = dg.DagsterInstance.get()
    assert _run_chain(instance, tags=RANGE_TAGS).success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"])) as con:
        con.execute("UPDATE ohlcv SET close = -1 WHERE symbol = 'BBB' AND date = '2024-03-26'")
        con.execute("DELETE FROM ohlcv WHERE symbol = 'EEE' AND date = '2024-04-03'")
    result = dg.materialize(
        [symbols, ohlcv, ohlcv_quality_gate],
        instance=instance,
        resources=defs.resources,
        tags=RANGE_TAGS,
        selection=dg.AssetSelection.checks(ohlcv_quality_gate),
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not result.success
    assert "BBB 2024-03-26" in evaluations["invalid_prices"].description
    assert "non-positive price" in evaluations["invalid_prices"].description
    assert not evaluations["coverage"].passed
    assert "EEE 2024-04-03" in evaluations["coverage"].description


def test_cli_materialize_uses_dagster_home(lab_env, small_universe):
    """The README's path: `dagster asset materialize` with a partition range, history kept."""
    env = {**os.environ}
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "dagster"),
        "asset",
        "materialize",
        "-m",
        "quantlab_assets.definitions",
        "--select",
        "ohlcv",
        "--partition-range",
        "2024-03-25...2024-04-05",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_ohlcv(lab_env["QUANTLAB_DB"])) == 45
    runs = dg.DagsterInstance.get().get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert runs[0].tags["dagster/asset_partition_range_start"] == "2024-03-25"
