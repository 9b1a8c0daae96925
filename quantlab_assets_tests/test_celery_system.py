"""System tier: the whole chain with the Celery executor on two workers (Redis broker, Dagster on
PostgreSQL) and the Delta warehouse in a bucket on a local S3 stand-in stores the same rows as the
in-process run on the DuckDB file, table for table; and independent steps ran at the same time on
different workers (the run's event log says which worker ran each step, and when). A worker
process killed mid-step (kill -9) does not fail or hang the run: its step is queued again and
re-run by another worker process, and the stored rows still equal the reference.

Needs PostgreSQL (scripts/test.sh starts one) and redis-server (scripts/redis.sh installs it);
without them the test skips, except in CI as root, where it fails."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

pytest.importorskip("dagster_celery", reason="steps on workers need the scale extra: pip install -e '.[scale]'")

from quantlab_assets.batch_orchestrator.worker_timeline import overlaps, render, step_timeline  # noqa: E402
from quantlab_assets.common.calendar import shift_sessions  # noqa: E402
from quantlab_assets_tests.test_delta_chain import END, HISTORY_SESSIONS, START, compare_warehouses, run_chain  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import celery_cluster  # noqa: E402  (bench/ is scripts, not a package)

pytestmark = pytest.mark.system
CHAIN = celery_cluster.chain_selection()
APPEND_ONLY = {"main.ohlcv_ingest_log", "main.approval_log"}  # one row per run: a re-run adds rows


def _rows_equal(line: str) -> bool:
    """``main.t: rows 12 vs 12; ...`` -> True."""
    counts = line.split("rows ", 1)[1].split(";", 1)[0].split(" vs ")
    return counts[0] == counts[1]


def _unavailable(reason: str):
    if os.getenv("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"CI must run the system test: {reason}", pytrace=False)
    pytest.skip(reason)


def _running_step(instance: dg.DagsterInstance, before: set[str]):
    """A STEP_START of the new run (not in ``before``) whose step has not ended yet, or None."""
    runs = [r for r in instance.get_runs() if r.run_id not in before]
    if not runs:
        return None
    logs = instance.all_logs(runs[0].run_id)
    ends = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
    ended = {e.step_key for e in logs if e.dagster_event and e.dagster_event.event_type in ends}
    started = [
        e
        for e in logs
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START and e.dagster_event.pid
    ]
    return next((e for e in started if e.step_key not in ended), None)


def _kill_a_step_midway(cluster, instance: dg.DagsterInstance) -> str:
    """Re-run the chain's last day; kill -9 the worker process of a step that started and has not
    ended; the run must still succeed. Returns the killed step's key."""
    before = {r.run_id for r in instance.get_runs()}
    proc = cluster.start_run(CHAIN, END, END)
    try:
        deadline = time.monotonic() + 300
        while (victim := _running_step(instance, before)) is None:
            assert time.monotonic() < deadline and proc.poll() is None, "the second run never started a step"
            time.sleep(0.1)
        os.kill(victim.dagster_event.pid, signal.SIGKILL)  # the step process of a worker this test started
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (stdout[-3000:], stderr[-3000:])
    return victim.step_key


def test_chain_on_two_celery_workers_and_delta_on_s3_equals_in_process_duckdb(
    lab_env, small_universe, postgres_db, tmp_path, monkeypatch, capsys
):
    run_chain(dg.DagsterInstance.get())  # the reference: in process, the DuckDB file
    symbols = Path(os.environ["QUANTLAB_SYMBOLS"])
    first = str(shift_sessions(START, -HISTORY_SESSIONS).date())
    try:
        cluster_cm = celery_cluster.local_cluster(tmp_path / "cluster", workers=2, symbols=symbols)
        cluster = cluster_cm.__enter__()
    except celery_cluster.RedisUnavailable as err:
        _unavailable(str(err))
    try:
        for select, lo in (("ohlcv", first), (CHAIN, START)):
            done = cluster.materialize(select, lo, END)
            assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
        for key, value in cluster.env.items():
            monkeypatch.setenv(key, value)
        assert compare_warehouses.compare(str(lab_env["QUANTLAB_DB"]), cluster.delta_url), capsys.readouterr().out
        compared = capsys.readouterr().out
        for table in ("ohlcv", "features", "labels", "targets", "backtest_equity", "approvals"):
            assert f"main.{table}: rows" in compared and f"main.{table}: rows 0 vs 0" not in compared

        home = tmp_path / "cluster" / "launcher" / "dagster_home"
        monkeypatch.setenv("DAGSTER_HOME", str(home))  # the launcher's instance: Dagster on PostgreSQL
        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            spans = step_timeline(instance, runs[0].run_id)  # newest first: the chain
            killed = _kill_a_step_midway(cluster, instance)
            rerun = instance.get_runs(limit=1)[0]
            assert rerun.status == dg.DagsterRunStatus.SUCCESS
            starts = [
                e.step_key
                for e in instance.all_logs(rerun.run_id, of_type=dg.DagsterEventType.STEP_START)
                if e.step_key == killed
            ]
            assert len(starts) == 2, f"{killed} should have started twice (killed, then re-run): {starts}"
        capsys.readouterr()
        compare_warehouses.compare(str(lab_env["QUANTLAB_DB"]), cluster.delta_url)
        again = capsys.readouterr().out
        # The contracts still equal the reference; the append-only logs gained the extra run's rows.
        for line in again.splitlines():
            if line.startswith("main.") and line.split(":")[0] not in APPEND_ONLY:
                assert line.endswith("only in one side: 0 / 0") and _rows_equal(line), again
            elif line.startswith("main."):
                assert ": 0 / " in line, again  # nothing of the reference's log is missing
    finally:
        cluster_cm.__exit__(None, None, None)
    print(render(spans))
    workers = {s.worker.split("@")[0] for s in spans}
    assert workers == {"worker1", "worker2"}, render(spans)  # every step on a worker, both used
    assert len(spans) >= 20 and all(s.succeeded for s in spans)
    together = overlaps(spans)
    assert together, f"no two steps ran at once on different workers:\n{render(spans)}"
    assert all(a.step != b.step and a.worker != b.worker for a, b in together)
