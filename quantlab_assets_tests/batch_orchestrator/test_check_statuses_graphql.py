"""Issue 22 point 1: the UI's check statuses equal the run's check results, partition by partition.

A run over a range used to report each check once, without a partition: Dagster had planned the
partitioned check for every partition of the range, received no evaluation for any of them and
showed each one as SKIPPED in ``partitionStatuses`` (the Checks tab and the lineage node's
"0 / 5 Passed"), whatever the gate decided. These tests launch the runs through the real
``dagster-webserver``'s GraphQL API and read the statuses back from it; a direct run checks the
attribution rule (a dated failure fails its own partitions only).
"""

from __future__ import annotations

import dagster as dg
import pytest

from quantlab_assets_tests.batch_orchestrator.test_ui_browser import Server, _launch_with, _range, _wait

WEEK = ("2024-04-01", "2024-04-05")
DAYS = ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04", "2024-04-05"]

CHECKS = """
query Checks($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks {
          checks {
            name
            partitionStatuses {
              __typename
              ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
            }
            executionForLatestMaterialization { status evaluation { partition severity description } }
          }
        }
      }
    }
  }
}"""


@pytest.fixture
def server(lab_env, dagster_storage, small_universe, tmp_path):
    srv = Server(tmp_path)
    try:
        srv.location = srv.start()
        yield srv
    finally:
        srv.stop()


def _statuses(server: Server, asset: str) -> dict[str, dict]:
    """Per check: {partition: status} expanded from the ranges, and its latest execution."""
    node = server.graphql(CHECKS, {"key": {"path": asset.split("/")}})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    checks = node["assetChecksOrError"]
    assert checks["__typename"] == "AssetChecks", checks
    out = {}
    for check in checks["checks"]:
        statuses = check["partitionStatuses"]
        assert statuses["__typename"] == "AssetCheckTimePartitionStatuses", (check["name"], statuses)
        per_day = {}
        for r in statuses["ranges"]:
            for day in DAYS:
                if r["startKey"] <= day <= r["endKey"]:
                    per_day[day] = r["status"]
        out[check["name"]] = {"days": per_day, "latest": check["executionForLatestMaterialization"]}
    return out


@pytest.mark.system  # the real dagster-webserver and dagster-daemon (the Server fixture's processes)
def test_a_green_range_shows_every_check_passed_on_every_partition(server):
    run = _wait(server, _launch_with(server, ["ohlcv"], _range(*WEEK)), timeout=300)
    assert run["status"] == "SUCCESS", f"{run}\n{server.logs()}"
    checks = _statuses(server, "ohlcv")
    # ingest_success_rate (the step's own check) and the five quality rules of the separate check step.
    assert set(checks) == {
        "ingest_success_rate",
        "coverage",
        "duplicates",
        "invalid_prices",
        "volume_non_negative",
        "suspicious_jumps",
    }
    for name, check in checks.items():
        assert check["days"] == dict.fromkeys(DAYS, "SUCCEEDED"), (name, check["days"])
        latest = check["latest"]
        assert latest["status"] == "SUCCEEDED", (name, latest)
        assert latest["evaluation"]["partition"] == WEEK[1], (name, latest)


@pytest.mark.system
def test_a_check_failed_on_some_days_shows_failed_there_and_passed_elsewhere(server):
    """features over a week whose last two days have no ohlcv: upstream_complete fails on exactly
    those two partitions; the rules that never ran are warnings (failed) on every partition."""
    run = _wait(server, _launch_with(server, ["ohlcv"], _range("2024-04-01", "2024-04-03")), timeout=300)
    assert run["status"] == "SUCCESS", f"{run}\n{server.logs()}"
    run = _wait(server, _launch_with(server, ["features"], _range(*WEEK)), timeout=300)
    assert run["status"] == "FAILURE", f"{run}\n{server.logs()}"
    checks = _statuses(server, "features")
    upstream = checks["upstream_complete"]
    assert upstream["days"] == {
        "2024-04-01": "SUCCEEDED",
        "2024-04-02": "SUCCEEDED",
        "2024-04-03": "SUCCEEDED",
        "2024-04-04": "FAILED",
        "2024-04-05": "FAILED",
    }, upstream
    latest = upstream["latest"]
    assert latest["status"] == "FAILED" and latest["evaluation"]["partition"] == "2024-04-05", latest
    assert "ohlcv missing for 2 of 5 sessions" in latest["evaluation"]["description"], latest
    never_ran = checks["no_infinite_values"]
    assert never_ran["days"] == dict.fromkeys(DAYS, "FAILED"), never_ran
    assert never_ran["latest"]["evaluation"]["severity"] == "WARN", never_ran
    assert "not evaluated" in never_ran["latest"]["evaluation"]["description"], never_ran
    assert not any(s == "SKIPPED" for c in checks.values() for s in c["days"].values()), checks


def test_a_range_run_reports_one_evaluation_per_partition(lab_env, small_universe):
    """In process: each partition of the range gets its own evaluation of each check, aimed at that
    partition's materialization; a single-partition run still reports one."""
    from quantlab_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.get()
    tags = {"dagster/asset_partition_range_start": WEEK[0], "dagster/asset_partition_range_end": WEEK[1]}
    result = job.execute_in_process(instance=instance, tags=tags, asset_selection=[dg.AssetKey("ohlcv")])
    evaluations = result.get_asset_check_evaluations()
    by_check: dict[str, list] = {}
    for e in evaluations:
        by_check.setdefault(e.check_name, []).append(e)
    assert len(by_check) == 6, sorted(by_check)
    materializations = {
        r.event_log_entry.dagster_event.partition: r.storage_id
        for r in instance.fetch_materializations(dg.AssetKey("ohlcv"), limit=10).records
    }
    for name, evs in by_check.items():
        assert [e.partition for e in evs] == DAYS, name
        assert all(e.passed for e in evs), name
        assert [e.target_materialization_data.storage_id for e in evs] == [materializations[d] for d in DAYS], name
    one = job.execute_in_process(instance=instance, partition_key="2024-04-08", asset_selection=[dg.AssetKey("ohlcv")])
    assert sorted({e.partition for e in one.get_asset_check_evaluations()}) == ["2024-04-08"]
