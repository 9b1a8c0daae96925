"""``<s>/<s>_paper_book`` through the real Definitions: partitions with their figures in the UI,
``execution_summary.md``, the kill switch and a break resolved from the ``quantlab`` command line,
and the schedules."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import pandas as pd

from quantlab_assets.batch_orchestrator.cli import main as quantlab
from quantlab_assets.common.warehouse import connect
from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.broker import SimulatedBroker
from quantlab_assets.partitions import EXCHANGE_TIMEZONE
from quantlab_assets_tests.execution.support import random_bars, random_books, seed

S = "momentum_topk"
KEY = dg.AssetKey([S, f"{S}_paper_book"])


def _run(start, end=None):
    from quantlab_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end or start}
    return job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=[KEY], raise_on_error=False
    )


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _book(db) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * FROM paper_book ORDER BY date").df()


def test_paper_book_partitions_report_switch_and_break(lab_env, capsys):
    db = lab_env["QUANTLAB_DB"]
    with connect(db) as con:
        seed(con, random_bars("2024-04-01", "2024-04-19"), random_books("2024-04-01", "2024-04-19", S), S)

    first = _run("2024-04-01", "2024-04-05")
    assert first.success
    assert all(c.passed for c in _checks(first).values()), {n: c.description for n, c in _checks(first).items()}
    book = _book(db)
    assert len(book) == 5 and (book["orders"] > 0).all()
    summary = (lab_env["QUANTLAB_ARTIFACTS"] / "runs" / first.run_id / "reports" / "execution_summary.md").read_text()
    assert S in summary and "paper equity" in summary and "reference backtest" in summary
    records = dg.DagsterInstance.get().fetch_materializations(KEY, limit=100).records
    meta = {r.partition_key: r.asset_materialization.metadata for r in records}
    day = meta["2024-04-03"]
    assert day["paper_equity"].value == book.loc[2, "equity"] and day["backtest_equity"].value > 0
    assert day["kill_switch"].value == "ACTIVE" and "open_orders" in day and "fills" in day

    # The fills job after the open: with the simulated broker nothing new (its fills need the
    # session's open from ohlcv); run twice, it records nothing twice.
    from quantlab_assets.definitions import defs

    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*) FROM exec_ledger").fetchall()[0][0]
    for _ in range(2):
        assert (
            defs.resolve_job_def("collect_fills")
            .execute_in_process(instance=dg.DagsterInstance.get(), tags={"session": "2024-04-08"})
            .success
        )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM exec_ledger").fetchall()[0][0] == before

    # The kill switch from the command line: the next day sends nothing and says why.
    assert quantlab(["halt", "momentum_tpok", "--reason", "typo", "--by", "ops"]) == 2
    assert "momentum_tpok: no such strategy (strategies: " in capsys.readouterr().err
    assert quantlab(["halt", S, "--reason", "  ", "--by", "ops"]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert quantlab(["halt", S, "--reason", "desk review", "--by", "ops"]) == 0
    halted = _run("2024-04-08")
    assert halted.success
    row = _book(db).iloc[-1]
    assert row["switch"] == "HALTED" and row["orders"] == 0 and row["refused"] > 0
    assert quantlab(["resume", S, "--reason", "review done", "--by", "ops"]) == 0

    # A trade outside Quant Lab: the check fails naming it, nothing is published, orders halt.
    with connect(db) as con:
        SimulatedBroker(con, S).inject_trade("2024-04-08", "CCC", 5.0, 60.0)
    broken = _run("2024-04-09")
    check = _checks(broken)["reconciled"]
    assert not check.passed and "CCC: ledger" in check.description and "difference +5" in check.description
    assert len(_book(db)) == 6  # the stored rows were kept
    assert quantlab(["execution", "status", S]) == 0
    out = capsys.readouterr().out
    assert "CCC: ledger" in out and "(difference +5," in out and "new orders are halted" in out, out
    assert (
        quantlab(["execution", "resolve", S, "--decision", "accept_broker", "--reason", "desk trade", "--by", "ops"])
        == 0
    )
    fixed = _run("2024-04-09")
    assert fixed.success and all(c.passed for c in _checks(fixed).values())
    assert _book(db)["date"].iloc[-1] == pd.Timestamp("2024-04-09")
    with connect(db) as con:
        logs = con.execute("SELECT state, decided_by FROM exec_switch_log ORDER BY decided_at").fetchall()
        assert logs == [("HALTED", "ops"), ("ACTIVE", "ops")]
        assert con.execute("SELECT decision FROM exec_resolutions").fetchall() == [("accept_broker",)]
        assert store.open_breaks(con, S).empty


def test_schedules_skip_holidays_and_fire_once_a_day():
    from quantlab_assets.definitions import defs

    def tick(name, when):
        context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
        return defs.get_schedule_def(name).evaluate_tick(context)

    ny = __import__("zoneinfo").ZoneInfo(EXCHANGE_TIMEZONE)
    paper = tick("paper_trading_after_supervision", datetime(2026, 11, 25, 19, 5, tzinfo=ny))
    assert [r.partition_key for r in paper.run_requests] == ["2026-11-25"]
    assert paper.run_requests[0].run_key == "paper-2026-11-25"
    assert tick("paper_trading_after_supervision", datetime(2026, 11, 26, 19, 5, tzinfo=ny)).skip_message
    fills = tick("collect_fills_after_open", datetime(2026, 11, 27, 9, 45, tzinfo=ny))
    assert fills.run_requests[0].tags["session"] == "2026-11-27"
    daily = defs.resolve_job_def("daily_chain")
    assert (
        KEY not in daily.asset_layer.asset_keys_for_node if hasattr(daily.asset_layer, "asset_keys_for_node") else True
    )
