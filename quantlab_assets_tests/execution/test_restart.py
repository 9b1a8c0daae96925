"""Kill -9 between a submission and its fill, then run again: no duplicate order, the same end state
as a run that was never interrupted (a real subprocess, a real DuckDB file)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import duckdb
import pandas as pd

from quantlab_assets_tests.conftest import PROJECT_ROOT
from quantlab_assets_tests.execution.crash_run import STRATEGY, run
from quantlab_assets_tests.execution.support import random_bars, random_books, seed

START, END = "2024-01-02", "2024-01-12"


def _state(db) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "ledger": con.execute(
                "SELECT seq, date, entry_id, kind, symbol, qty, price, cash_delta FROM exec_ledger ORDER BY seq"
            ).df(),
            "broker_orders": con.execute("SELECT * FROM sim_broker_orders ORDER BY client_order_id").df(),
            "broker_ledger": con.execute(
                "SELECT seq, entry_id, kind, symbol, qty, price, cash_delta FROM sim_broker_ledger ORDER BY seq"
            ).df(),
            "last_events": con.execute(
                "SELECT client_order_id, arg_max(event, recorded_at) AS event FROM exec_order_events "
                "GROUP BY client_order_id ORDER BY client_order_id"
            ).df(),
        }


def test_kill_minus_9_between_submission_and_fill_then_rerun(tmp_path):
    seeded = tmp_path / "seed.duckdb"
    with duckdb.connect(str(seeded)) as con:
        seed(con, random_bars(START, END), random_books(START, END, STRATEGY), STRATEGY)
    clean, crashed = tmp_path / "clean.duckdb", tmp_path / "crashed.duckdb"
    shutil.copy(seeded, clean)
    shutil.copy(seeded, crashed)
    run(str(clean), START, END)

    # The 10th order of the range (third session): the broker has it, Quant Lab's ledger does not.
    victim = subprocess.run(
        [sys.executable, "-m", "quantlab_assets_tests.execution.crash_run", str(crashed), START, END, "10"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert victim.returncode == -signal.SIGKILL, victim.stderr[-2000:]
    with duckdb.connect(str(crashed), read_only=True) as con:
        at_broker = con.execute("SELECT count(*) FROM sim_broker_orders").fetchall()[0][0]
        recorded = con.execute("SELECT count(DISTINCT client_order_id) FROM exec_order_events").fetchall()[0][0]
    assert at_broker == 10 and recorded < at_broker  # the crash window really was hit

    again = run(str(crashed), START, END)
    assert all(g.passed for g in again.audit()), [(g.name, g.description) for g in again.audit()]
    after, expected = _state(crashed), _state(clean)
    with duckdb.connect(str(crashed), read_only=True) as con:
        dupes = con.execute(
            "SELECT client_order_id, count(*) FROM sim_broker_orders GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
    assert dupes == []
    for name in expected:
        pd.testing.assert_frame_equal(after[name], expected[name], check_exact=True, obj=name)
