"""Orchestration through Dagster's own storage: run artifacts, the runs and plan commands,
re-execution from a failure, schedules, and a person's override of the supervisor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.definitions import defs

CLI = [sys.executable, "-m", "quantlab_assets.batch_orchestrator.cli"]


def _cli(*args, timeout=300):
    return subprocess.run([*CLI, *args], env=dict(os.environ), capture_output=True, text=True, timeout=timeout)


def _job():
    return defs.resolve_implicit_global_asset_job_def()


def test_run_writes_summary_pipeline_log_and_walkthrough(lab_env, small_universe):
    result = _job().execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key="2024-04-02", asset_selection=[dg.AssetKey("ohlcv")]
    )
    folder = lab_env["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "SUCCESS" and summary["partitions"] == "2024-04-02"
    assert [s["step"] for s in summary["stages"]] == ["ohlcv", "ohlcv_quality_gate"]
    assert all(s["status"] == "SUCCESS" and s["seconds"] >= 0 for s in summary["stages"])
    assert {c["check"] for c in summary["checks"]} >= {"coverage", "invalid_prices", "ingest_success_rate"}
    assert summary["headline"]["ohlcv"]["dagster/row_count"] == 5
    assert "STEP_SUCCESS" in (folder / "pipeline.log").read_text()
    walkthrough = (folder / "reports" / "walkthrough.md").read_text()
    assert "**SUCCESS**" in walkthrough and "reports/quality_report.md" in walkthrough


def test_a_backfill_walkthrough_counts_the_rows_of_every_partition(lab_env, small_universe):
    tags = {"dagster/asset_partition_range_start": "2024-04-01", "dagster/asset_partition_range_end": "2024-04-03"}
    result = _job().execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=[dg.AssetKey("ohlcv")]
    )
    folder = lab_env["QUANTLAB_ARTIFACTS"] / "runs" / result.run_id
    summary = json.loads((folder / "summary.json").read_text())
    # 5 symbols x 3 sessions; the headline keeps the last partition's own figures.
    assert summary["rows_written"]["ohlcv"] == 15 and summary["headline"]["ohlcv"]["dagster/row_count"] == 5
    walkthrough = (folder / "reports" / "walkthrough.md").read_text()
    assert "- `ohlcv`: 15 rows written in DuckDB `ohlcv, ohlcv_ingest_log, ohlcv_rejects, symbols`" in walkthrough


def test_plan_lists_steps_in_order_and_runs_nothing(lab_env, small_universe):
    out = _cli("plan", "--select", "ohlcv*", "--partition-range", "2024-03-25...2024-03-29")  # Good Friday 03-29
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "DRY RUN" in text and "5 weekday partitions (4 sessions, 1 holidays)" in text
    order = [
        text.index(s)
        for s in (
            "1. ohlcv:",
            "ohlcv_quality_gate",
            "check features.no_lookahead_leakage (blocking)",
            "momentum_topk__momentum_topk_targets",
            "momentum_topk__backtest",
            "momentum_topk__supervision",
        )
    ]
    assert order == sorted(order)
    assert "check ohlcv.invalid_prices (blocking)" in text and "check ohlcv.suspicious_jumps (warn)" in text
    assert dg.DagsterInstance.get().get_runs() == []
    assert not lab_env["QUANTLAB_DB"].exists()


def test_failed_run_is_listed_and_rerun_from_failure_succeeds(lab_env, small_universe, tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(tmp_path / "csv"))  # not there yet: the ingest fails
    instance = dg.DagsterInstance.get()
    failed = _job().execute_in_process(
        instance=instance, partition_key="2024-04-02", asset_selection=[dg.AssetKey("ohlcv")], raise_on_error=False
    )
    assert not failed.success
    runs = _cli("runs")
    assert runs.returncode == 0 and "FAILURE" in runs.stdout and "ohlcv" in runs.stdout
    assert "does not exist" in runs.stdout  # the error text, not just a status
    assert "0/1 succeeded" in runs.stdout

    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    (tmp_path / "csv").mkdir()
    bars = SyntheticProvider().fetch(small_universe, "2024-04-01", "2024-04-03").bars
    for symbol, frame in bars.groupby("symbol"):
        frame.drop(columns=["symbol"]).to_csv(tmp_path / "csv" / f"{symbol}.csv", index=False)
    rerun = _cli("rerun", failed.run_id)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-2000:]
    assert "assets ohlcv;" in rerun.stdout, rerun.stdout
    child = [r for r in instance.get_runs() if r.run_id != failed.run_id][0]
    assert child.status == dg.DagsterRunStatus.SUCCESS and child.tags["dagster/parent_run_id"] == failed.run_id
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ohlcv").fetchone()[0] == 5


def _tick(name, when):
    schedule = defs.get_schedule_def(name)
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return schedule.evaluate_tick(context)


def test_schedules_after_the_close():
    ny = ZoneInfo("America/New_York")
    holiday = _tick("daily_chain_after_close", datetime(2026, 11, 26, 18, 30, tzinfo=ny))
    assert not holiday.run_requests and "holiday" in holiday.skip_message
    day = _tick("daily_chain_after_close", datetime(2026, 11, 25, 18, 30, tzinfo=ny))
    assert [r.partition_key for r in day.run_requests] == ["2026-11-25"]
    labels = _tick("labels_refresh_after_close", datetime(2026, 11, 25, 19, 0, tzinfo=ny)).run_requests[0]
    assert labels.tags["dagster/asset_partition_range_end"] == "2026-11-25"
    assert labels.tags["dagster/asset_partition_range_start"] == str(shift_sessions("2026-11-25", -30).date())
    assert defs.get_schedule_def("daily_chain_after_close").default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.fixture(scope="module")
def chain_lab(tmp_path_factory):
    """One year of history and a week of the whole chain for 30 names, shared by the tests below."""
    root = tmp_path_factory.mktemp("chain_lab")
    (root / "home").mkdir()
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "dagster.yaml"), root / "home" / "dagster.yaml")
    (root / "symbols.yaml").write_text(
        "universe: t30\nsymbols:\n" + "".join(f"  - {{symbol: T{i:02d}, sector: S{i % 4}}}\n" for i in range(30))
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "QUANTLAB_DB": root / "lab.duckdb",
            "QUANTLAB_ARTIFACTS": root / "artifacts",
            "DAGSTER_HOME": root / "home",
            "QUANTLAB_SYMBOLS": root / "symbols.yaml",
            "QUANTLAB_DATA_PROVIDER": "synthetic",
        }.items():
            mp.setenv(key, str(value))
        instance = dg.DagsterInstance.get()
        start, end = "2024-04-01", "2024-04-08"
        history = {
            "dagster/asset_partition_range_start": str(shift_sessions(start, -260).date()),
            "dagster/asset_partition_range_end": str(shift_sessions(start, -1).date()),
        }
        assert (
            _job().execute_in_process(instance=instance, tags=history, asset_selection=[dg.AssetKey("ohlcv")]).success
        )
        chain = dg.AssetSelection.assets("ohlcv").downstream().resolve(defs.resolve_asset_graph())
        result = _job().execute_in_process(
            instance=instance,
            asset_selection=list(chain),
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        )
        assert result.success
        yield {"root": root, "run": result, "mp": mp}


def test_chain_run_writes_every_report(chain_lab):
    folder = chain_lab["root"] / "artifacts" / "runs" / chain_lab["run"].run_id
    reports = {p.name for p in (folder / "reports").iterdir()}
    assert {
        "quality_report.md",
        "feature_profile.md",
        "strategy_summary.md",
        "backtest_summary.md",
        "approval_summary.md",
        "walkthrough.md",
    } <= reports
    assert (folder / "trades.csv").exists() and (folder / "summary.json").exists()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "SUCCESS" and "momentum_topk/momentum_topk_backtest_kpis" in summary["headline"]


def test_override_is_logged_applied_and_reported(chain_lab):
    day = "2024-04-03"
    out = _cli(
        "override",
        "--strategy",
        "momentum_topk",
        "--date",
        day,
        "--status",
        "rejected",
        "--reason",
        "earnings blackout on two holdings",
        "--by",
        "risk.officer",
        "--apply",
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    db = chain_lab["root"] / "lab.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT status, rule_status, override_by, override_reason FROM approvals "
            "WHERE strategy = 'momentum_topk' AND date = ?",
            [day],
        ).fetchone()
        held = con.execute(
            "SELECT a.symbol, a.weight, b.weight FROM approved_targets a JOIN approved_targets b "
            "ON a.symbol = b.symbol AND a.strategy = b.strategy WHERE a.strategy = 'momentum_topk' "
            "AND a.date = ? AND b.date = ?",
            [day, str(shift_sessions(day, -1).date())],
        ).df()
        log = con.execute(
            "SELECT source, status FROM approval_log WHERE strategy = 'momentum_topk' AND date = ? ORDER BY logged_at",
            [day],
        ).fetchall()
        overrides = con.execute("SELECT count(*) FROM approval_overrides").fetchone()[0]
    assert row == ("rejected", "approved", "risk.officer", "earnings blackout on two holdings")
    # Rejected: the tradable book is the previous session's approved book.
    assert (held.iloc[:, 1] == held.iloc[:, 2]).all()
    assert log[0] == ("rules", "approved") and log[-1] == ("override", "rejected")
    assert overrides == 1
    listing = _cli("overrides")
    assert "risk.officer: earnings blackout" in listing.stdout
    runs = dg.DagsterInstance.get().get_runs(limit=1)
    summary_md = (
        chain_lab["root"] / "artifacts" / "runs" / runs[0].run_id / "reports" / "approval_summary.md"
    ).read_text()
    assert "Overrides" in summary_md and "risk.officer" in summary_md
