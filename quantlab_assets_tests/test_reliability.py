"""The fault suite's index. Faults must lose nothing and end in a bounded, clear error.

Here: kill -9 mid-write, re-runs, two runs on one DuckDB file, a warehouse path that is not a
DuckDB file, a warehouse locked by another process (the wait is bounded, logged, and taken
before any API call). Elsewhere, by the package they exercise:

- ``data_curator/test_write_audit_publish.py``: re-ingesting a stored week from a bad source
  (header-only, truncated, "1,234.5", N/A, "-", empty price, duplicate date, a Saturday row,
  ragged, not UTF-8, empty, two adjusted-close columns, high < low; an Alpha Vantage reply
  that is empty, for another ticker, or with duplicate JSON keys) keeps every stored price bit
  for bit and names file, row, column and value; every symbol failing writes the log first.
- ``data_curator/test_alphavantage_faults.py``: a byte-a-second drip ends at the request
  deadline, endless throttling at the shared give-up time, a slow service at the ingest budget.
- ``data_curator/test_csv_source.py`` and ``test_alphavantage.py``: the same refusals, unit level.
- ``batch_orchestrator/test_dead_runs.py``: runs killed with kill -9 (UI and CLI, four filling
  the queue) are marked failed by the daemon's health check, the queued fifth run then
  succeeds; ``quantlab rerun <prefix>`` re-executes a dead CLI run.
- ``batch_orchestrator/test_cli_input.py``: overrides, plans and ranges that are refused in one
  line with nothing recorded (unknown strategy, weekend, holiday, future, impossible date).
- ``common/test_yaml_io.py``: config files with duplicate keys, too deep, a directory, not UTF-8.
- ``batch_orchestrator/test_partition_truth_e2e.py``: missing upstream data fails the step's
  gate naming what is missing, with nothing written; holidays alone and in a range.

Issue 24 (docs/operations.md): ``common/test_warehouse_guard.py`` (64 KB zeroed, cut in half,
deleted or copied over mid-run, only the ingest creates the file), ``common/test_warehouse_backup.py``
(backup / verify / restore, retention), ``common/test_artifacts_unwritable.py``,
``batch_orchestrator/test_cli_reliability.py`` (one-line refusals, closed pipe, control characters),
``data_curator/test_csv_bounds.py``, ``test_source_bounds.py``, ``test_registry_drift.py``,
``test_write_audit_publish.py`` (values the feature store cannot represent),
``feature_store/test_overflow_and_names.py`` (overflow names symbol/date/value, reserved names, splits),
``research/test_sweep_bounds.py``, ``backtest_engine/test_spec_change.py`` (spec drift, names held
outside the registry), ``common/test_one_place.py`` (finite bounds).

"Nothing lost" is checked by content: row counts plus an order-independent checksum per table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from quantlab_assets.common.warehouse import table_checksum
from quantlab_assets.data_curator.core.schema import OHLCV

CONTENT = {"ohlcv": [c for c in OHLCV.column_names if c not in ("ingested_at", "run_id")]}
DAGSTER = os.path.join(os.path.dirname(sys.executable), "dagster")


class Run:
    """A ``dagster asset materialize`` subprocess whose output goes to a file (a pipe nobody
    reads would fill up and block the run)."""

    def __init__(self, select: str, partitions: str, log, env=None, **kw):
        flag = "--partition-range" if "..." in partitions else "--partition"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    DAGSTER,
                    "asset",
                    "materialize",
                    "-m",
                    "quantlab_assets.definitions",
                    "--select",
                    select,
                    flag,
                    partitions,
                ],
                env=env or dict(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                **kw,
            )

    def wait(self, timeout=600) -> int:
        return self.proc.wait(timeout=timeout)

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


def _checksums(db, tables=("ohlcv", "features")):
    with duckdb.connect(str(db), read_only=True) as con:
        out = {}
        for t in tables:
            cols = CONTENT.get(t) or [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [t]
                ).fetchall()
            ]
            out[t] = table_checksum(con, t, cols)
        return out


KILL_AFTER_DELETE = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from quantlab_assets.common.warehouse import connect
    from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
    from quantlab_assets.data_curator.core.store import ohlcv_rows
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    con = connect(sys.argv[1])
    bars = SyntheticProvider(seed=99).fetch(["AAA", "BBB"], "2024-03-01", "2024-03-29")
    rows = ohlcv_rows(bars, "synthetic", "crash", pd.Timestamp("2024-04-01"))

    class Killer:
        # Passes statements through, and dies with SIGKILL right after the DELETE ran inside
        # the open transaction: the worst moment for a delete-then-insert.
        def __init__(self, con): self.con = con
        def execute(self, sql, *args):
            result = self.con.execute(sql, *args)
            if sql.lstrip().startswith("DELETE"):
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        def __getattr__(self, name): return getattr(self.con, name)

    now = pd.Timestamp("2024-04-01")
    names, start, end = ["AAA", "BBB"], "2024-03-01", "2024-03-29"
    audit_and_publish_ohlcv(Killer(con), rows, bars, names, start, end, "synthetic", "crash", now)
    sys.exit("the publish finished without a DELETE: nothing was killed")
""")


def test_kill_9_between_delete_and_insert_keeps_the_previous_state(tmp_path):
    from datetime import datetime

    from quantlab_assets.common.warehouse import connect
    from quantlab_assets.data_curator.core.step import audit_and_publish_ohlcv
    from quantlab_assets.data_curator.core.store import ohlcv_rows
    from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

    db = tmp_path / "lab.duckdb"
    con = connect(db)
    clean = SyntheticProvider().fetch(["AAA", "BBB"], "2024-03-01", "2024-03-29")
    now = datetime(2024, 4, 1)
    rows = ohlcv_rows(clean, "synthetic", "clean", now)
    outcome = audit_and_publish_ohlcv(
        con, rows, clean, ["AAA", "BBB"], "2024-03-01", "2024-03-29", "synthetic", "clean", now
    )
    assert outcome.published == ["AAA", "BBB"]
    con.close()
    before = _checksums(db, ("ohlcv",))
    script = tmp_path / "kill.py"
    script.write_text(KILL_AFTER_DELETE)
    proc = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    after = _checksums(db, ("ohlcv",))  # DuckDB replays its WAL: the open transaction never happened
    assert after == before and after["ohlcv"][0] == 2 * 20


@pytest.mark.parametrize("delay", [1.5, 3.5])
def test_kill_9_of_a_real_run_then_rerun_equals_a_clean_run(lab_env, small_universe, tmp_path, delay):
    env = dict(os.environ)
    rng = "2023-06-01...2024-03-28"
    clean_env = {
        **env,
        "QUANTLAB_DB": str(tmp_path / "clean.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp_path / "clean_artifacts"),
    }
    clean = Run("ohlcv,features", rng, tmp_path / "clean.log", env=clean_env)
    assert clean.wait() == 0, clean.tail()
    victim = Run("ohlcv,features", rng, tmp_path / "victim.log", env=env, start_new_session=True)
    time.sleep(delay)  # somewhere in ingest, write or features
    os.killpg(victim.proc.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    rerun = Run("ohlcv,features", rng, tmp_path / "rerun.log", env=env)
    assert rerun.wait() == 0, rerun.tail()
    again = Run("ohlcv,features", rng, tmp_path / "again.log", env=env)
    assert again.wait() == 0, again.tail()
    assert _checksums(lab_env["QUANTLAB_DB"]) == _checksums(tmp_path / "clean.duckdb")


def test_two_runs_on_one_duckdb_file_both_succeed(lab_env, small_universe, tmp_path):
    import dagster as dg

    # Create the instance's SQLite storage once: two processes migrating an empty
    # DAGSTER_HOME at the same moment race in alembic (a Dagster matter, not the warehouse's).
    dg.DagsterInstance.get().get_runs(limit=1)
    # Both runs then re-ingest what is already there (same bars) and compute features whose
    # lookback reaches into the other run's range: the runs share rows but never see them change.
    # (Without this, run two's features could be computed before run one writes January and
    # re-derived after it by the leakage check, which then rightly fails the gate.)
    assert Run("ohlcv", "2024-01-02...2024-04-30", tmp_path / "history.log").wait() == 0
    first = Run("ohlcv,features", "2024-01-02...2024-02-29", tmp_path / "first.log")
    second = Run("ohlcv,features", "2024-03-01...2024-04-30", tmp_path / "second.log")
    assert first.wait() == 0, first.tail()
    assert second.wait() == 0, second.tail()
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        per_month = con.execute("SELECT month(date) AS m, count(*) FROM ohlcv GROUP BY m ORDER BY m").fetchall()
        dupes = con.execute(
            "SELECT count(*) FROM (SELECT symbol, date FROM ohlcv GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        features = con.execute("SELECT count(*) FROM features").fetchone()[0]
    assert [m for m, _ in per_month] == [1, 2, 3, 4] and dupes == 0
    assert features == sum(n for _, n in per_month)


# -- the warehouse itself: wrong path, held lock -----------------------------------------------

HOLD = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
    "print('held', flush=True); time.sleep(float(sys.argv[3]))"
)


class Holder:
    """Another process (a researcher's notebook) holding the warehouse open."""

    def __init__(self, db, mode: str, seconds: float):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db), mode, str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "held"

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def av_server(monkeypatch):
    from quantlab_assets_tests.support.alphavantage_server import ScriptedServer, one_day, reply_json

    server = ScriptedServer()
    for symbol in ("AAA", "BBB", "CCC", "DDD", "EEE"):
        server.script(symbol, reply_json(one_day(symbol)))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "alphavantage")
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", server.url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", "TESTKEY0SECRET42")
    yield server
    server.close()


def _materialize_ohlcv():
    import dagster as dg

    from quantlab_assets.data_curator.assets import ohlcv, symbols
    from quantlab_assets.definitions import defs

    return dg.materialize(
        [symbols, ohlcv],
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
        partition_key="2024-06-14",
        raise_on_error=False,
    )


def _not_duckdb(kind, path):
    if kind == "csv":
        path.write_text("date,close\n2024-06-14,1.0\n")
    elif kind == "parquet":
        duckdb.connect().execute(f"COPY (SELECT 1 AS a) TO '{path}' (FORMAT parquet)")
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("kind", ["csv", "parquet", "directory", "empty"])
def test_a_warehouse_path_that_is_not_duckdb_is_refused_before_any_fetch(
    lab_env, small_universe, av_server, tmp_path, monkeypatch, kind
):
    path = tmp_path / {"csv": "prices.csv", "parquet": "prices.parquet"}.get(kind, f"{kind}.duckdb")
    _not_duckdb(kind, path)
    before = path.read_bytes() if path.is_file() else None
    monkeypatch.setenv("QUANTLAB_DB", str(path))

    result = _materialize_ohlcv()

    assert not result.success and av_server.requests == []  # no API call spent
    message = result.failure_data_for_node("ohlcv").error.message
    assert f"the warehouse path {path} is" in message
    assert {
        "csv": "not a DuckDB database",
        "parquet": "a Parquet file",
        "directory": "a directory",
        "empty": "an empty file",
    }[kind] in message
    assert (path.read_bytes() if path.is_file() else None) == before
    assert not result.get_asset_materialization_events()


@pytest.mark.parametrize("mode", ["ro", "rw"])
def test_a_locked_warehouse_fails_in_bounded_time_before_any_fetch(
    lab_env, small_universe, av_server, monkeypatch, mode
):
    import dagster as dg

    from quantlab_assets.common.warehouse import connect

    connect(lab_env["QUANTLAB_DB"]).close()
    before = lab_env["QUANTLAB_DB"].read_bytes()
    monkeypatch.setenv("QUANTLAB_DB_LOCK_WAIT_S", "3")
    holder = Holder(lab_env["QUANTLAB_DB"], mode, 120)
    try:
        t0 = time.monotonic()
        result = _materialize_ohlcv()
        elapsed = time.monotonic() - t0
    finally:
        holder.close()
    assert not result.success and av_server.requests == []
    assert elapsed < 30  # 3 s of waiting, plus Dagster's own start-up
    message = result.failure_data_for_node("ohlcv").error.message
    assert f"stayed locked by PID {holder.proc.pid}" in message
    assert "close that process's DuckDB connection" in message and "QUANTLAB_DB_LOCK_WAIT_S" in message
    logs = [r.user_message for r in dg.DagsterInstance.get().all_logs(result.run_id)]
    assert any(f"waiting for the DuckDB lock held by PID {holder.proc.pid}" in m and "s of 3" in m for m in logs)
    assert lab_env["QUANTLAB_DB"].read_bytes() == before


def test_a_lock_released_while_waiting_lets_the_run_complete(lab_env, small_universe, av_server, monkeypatch):
    from quantlab_assets.common.warehouse import connect

    connect(lab_env["QUANTLAB_DB"]).close()
    monkeypatch.setenv("QUANTLAB_DB_LOCK_WAIT_S", "60")
    holder = Holder(lab_env["QUANTLAB_DB"], "rw", 2)  # the notebook closes after 2 s
    try:
        result = _materialize_ohlcv()
    finally:
        holder.close()
    assert result.success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ohlcv").fetchall()[0][0] == 5


def test_connect_waits_at_most_the_given_time_and_reports_while_waiting(tmp_path):
    from quantlab_assets.common.warehouse import WarehouseLocked, connect

    db = tmp_path / "lab.duckdb"
    connect(db).close()
    holder = Holder(db, "rw", 120)
    said: list[str] = []
    try:
        t0 = time.monotonic()
        with pytest.raises(WarehouseLocked) as info:
            connect(db, wait_s=2, on_wait=said.append, log_every_s=0.5)
        elapsed = time.monotonic() - t0
    finally:
        holder.close()
    assert 2 <= elapsed < 10
    assert said[0].startswith(f"waiting for the DuckDB lock held by PID {holder.proc.pid} (")
    assert said[0].endswith(f"on {db}, 0 s of 2")
    assert len(said) >= 3 and said[-1].endswith("s of 2")
    assert f"stayed locked by PID {holder.proc.pid}" in str(info.value)
