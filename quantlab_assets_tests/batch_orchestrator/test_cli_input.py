"""``quantlab`` refuses bad input with one line before doing anything: an override never lands in
the append-only log unless its strategy and day are real, and ``plan`` refuses what
``dagster asset materialize`` would refuse."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from quantlab_assets.batch_orchestrator import cli
from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets.partitions import trading_day_partitions

LAST = trading_day_partitions.get_last_partition_key()


def _overrides(db: Path) -> int | None:
    """Rows in the override log; None while the table does not exist."""
    if not db.exists():
        return None
    with duckdb.connect(str(db), read_only=True) as con:
        if not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", ["approval_overrides"]
        ).fetchone()[0]:
            return None
        return con.execute("SELECT count(*) FROM approval_overrides").fetchone()[0]


def _run(capsys, *argv) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.err.strip().splitlines(), out.out


@pytest.mark.parametrize(
    "strategy,day,message",
    [
        (
            "momentum_top_k",
            "2024-03-28",
            "--strategy momentum_top_k: no such strategy (strategies: low_volatility, "
            "momentum_topk, short_term_reversal, sma_cross_10_20, trend_sma50)",
        ),
        ("momentum_topk", "2024-03-30", "--date 2024-03-30: a Saturday, not a trading-day partition"),
        ("momentum_topk", "2024-03-29", "--date 2024-03-29: not a trading session (exchange holiday)"),  # Good Friday
        ("momentum_topk", "2099-01-05", f"--date 2099-01-05: in the future (the latest partition is {LAST})"),
        ("momentum_topk", "2024-13-45", "--date '2024-13-45': not a date (YYYY-MM-DD)"),
        (
            "momentum_topk",
            "1980-01-02",
            "--date 1980-01-02: before the first partition 2015-01-02 (QUANTLAB_START_DATE)",
        ),
    ],
)
def test_a_bad_override_is_refused_in_one_line_and_nothing_is_recorded(lab_env, capsys, strategy, day, message):
    duckdb.connect(str(lab_env["QUANTLAB_DB"])).close()  # a warehouse (only an ingest creates one)
    main(["overrides"])  # creates the (empty) log, so "nothing recorded" is a count, not a missing table
    capsys.readouterr()
    assert _overrides(lab_env["QUANTLAB_DB"]) == 0
    code, err, out = _run(
        capsys, "override", "--strategy", strategy, "--date", day, "--status", "rejected", "--reason", "test", "--apply"
    )
    assert (code, err, out) == (2, [f"quantlab override: {message}"], "")
    assert _overrides(lab_env["QUANTLAB_DB"]) == 0


def test_an_override_needs_a_reason_that_is_not_blank(lab_env, capsys):
    code, err, _ = _run(
        capsys,
        "override",
        "--strategy",
        "momentum_topk",
        "--date",
        "2024-03-28",
        "--status",
        "approved",
        "--reason",
        "   ",
    )
    assert (code, err) == (2, ["quantlab override: --reason: an override needs a reason"])
    assert _overrides(lab_env["QUANTLAB_DB"]) is None


def _seed_supervision_inputs(db, day: str) -> None:
    """The day's targets and KPIs, as the strategy's targets and backtest steps store them: the
    supervision refuses to run on missing inputs (its upstream gate)."""
    import numpy as np
    import pandas as pd

    from quantlab_assets.backtest_engine.core.schema import BACKTEST_KPIS
    from quantlab_assets.common.warehouse import connect, ensure_table, replace_strategy_slice
    from quantlab_assets.strategy_lab.core.schema import TARGETS

    when = pd.Timestamp(day)
    names = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    targets = pd.DataFrame(
        {
            "date": when,
            "strategy": "momentum_topk",
            "symbol": names,
            "score": np.arange(5.0),
            "weight": 0.0,
            "rebalance": True,
        }
    )
    kpis = pd.DataFrame({c: [np.nan] for c in BACKTEST_KPIS.column_names})
    kpis = kpis.assign(date=when, strategy="momentum_topk", scope="since_start", sessions=1)
    with connect(db) as con:
        for schema in (TARGETS, BACKTEST_KPIS):
            ensure_table(con, schema)
        replace_strategy_slice(con, TARGETS, targets, "momentum_topk", day, day)
        replace_strategy_slice(con, BACKTEST_KPIS, kpis, "momentum_topk", day, day)


@pytest.mark.e2e  # `quantlab apply` launches a Dagster run in this process
def test_apply_reruns_the_supervision_and_reports_success(lab_env, small_universe, capsys):
    _seed_supervision_inputs(lab_env["QUANTLAB_DB"], "2024-03-28")
    code, err, out = _run(
        capsys,
        "override",
        "--strategy",
        "momentum_topk",
        "--date",
        "2024-03-28",
        "--status",
        "approved",
        "--reason",
        "checked by hand",
        "--by",
        "tester",
        "--apply",
    )
    lines = out.strip().splitlines()
    assert lines[0] == "override recorded: momentum_topk 2024-03-28 -> approved by tester: checked by hand"
    assert code == 0 and "Traceback" not in "\n".join(err)  # stderr carries Dagster's run log
    assert lines[-1].startswith("supervision of momentum_topk 2024-03-28 re-run ")
    assert lines[-1].endswith(": SUCCESS") and _overrides(lab_env["QUANTLAB_DB"]) == 1


@pytest.mark.e2e  # `quantlab apply` launches a Dagster run in this process
def test_apply_whose_run_fails_reports_the_step_and_error_in_one_line(
    lab_env, small_universe, capsys, tmp_path, monkeypatch
):
    rules = tmp_path / "rules.yaml"
    rules.write_text("strategies: {momentum_top_k: {max_turnover: 0.5}}\n")
    monkeypatch.setenv("QUANTLAB_RISK_RULES", str(rules))
    duckdb.connect(str(lab_env["QUANTLAB_DB"])).close()  # a warehouse (only an ingest creates one)
    code, err, out = _run(
        capsys,
        "override",
        "--strategy",
        "momentum_topk",
        "--date",
        "2024-03-28",
        "--status",
        "approved",
        "--reason",
        "checked by hand",
        "--by",
        "tester",
        "--apply",
    )
    last = out.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in out + "\n".join(err)
    assert (
        f": FAILURE in momentum_topk__supervision: RulesError: {rules}: field 'strategies': "
        "no strategy named 'momentum_top_k'"
    ) in last, last


def test_apply_without_a_dagster_home_records_nothing(lab_env, capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME")
    code, err, out = _run(
        capsys,
        "override",
        "--strategy",
        "momentum_topk",
        "--date",
        "2024-03-28",
        "--status",
        "approved",
        "--reason",
        "checked",
        "--apply",
    )
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith("quantlab override: --apply: nothing recorded, Dagster's instance is not available: ")
    assert _overrides(lab_env["QUANTLAB_DB"]) is None


@pytest.mark.parametrize(
    "flag,value,message",
    [
        (
            "--partition-range",
            "2024-04-30...2024-03-01",
            "--partition-range 2024-04-30...2024-03-01: the start is after the end",
        ),
        ("--partition-range", "2024-03-01", "--partition-range takes START...END"),
        (
            "--partition-range",
            "2024-03-01...2024-03-02",
            "--partition-range end 2024-03-02: a Saturday, not a trading-day partition",
        ),
        (
            "--partition-range",
            "2024-03-01...2099-01-05",
            f"--partition-range end 2099-01-05: in the future (the latest partition is {LAST})",
        ),
        ("--partition", "2024-03-31", "--partition 2024-03-31: a Sunday, not a trading-day partition"),
        ("--partition", "2024-02-30", "--partition '2024-02-30': not a date (YYYY-MM-DD)"),
        ("--partition", "2099-01-05", f"--partition 2099-01-05: in the future (the latest partition is {LAST})"),
    ],
)
def test_plan_refuses_what_dagster_would_refuse(lab_env, capsys, flag, value, message):
    code, err, out = _run(capsys, "plan", "--select", "ohlcv", flag, value)
    assert (code, err, out) == (2, [f"quantlab plan: {message}"], "")


def test_plan_accepts_a_holiday_partition_and_counts_it(lab_env, capsys):
    # Dagster's weekday partitions include exchange holidays (they materialize with zero rows).
    code, _, out = _run(capsys, "plan", "--select", "ohlcv", "--partition", "2024-03-29")
    assert code == 0 and "1 weekday partitions (0 sessions, 1 holidays)" in out


@pytest.mark.parametrize("module", ["cli", "cli_input", "runs_cli", "approvals_cli"])
def test_cli_imports_no_private_dagster_module(module):
    tree = ast.parse((Path(cli.__file__).parent / f"{module}.py").read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.startswith("dagster._")], modules


def test_the_parser_is_extensible_through_its_subparsers(capsys):
    parser, sub = cli.build_parser()
    extra = sub.add_parser("hello")
    extra.set_defaults(handler=lambda args: print("hi") or 0)
    args = parser.parse_args(["hello"])
    assert args.handler(args) == 0 and capsys.readouterr().out == "hi\n"


def test_a_reversed_range_run_fails_naming_the_range_and_writes_nothing(lab_env, small_universe):
    import dagster as dg

    from quantlab_assets.definitions import defs

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=dg.DagsterInstance.get(),
        asset_selection=[dg.AssetKey("ohlcv")],
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2024-04-30", "dagster/asset_partition_range_end": "2024-03-01"},
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "partition range 2024-04-30...2024-03-01 is reversed: the start is after the end" in error.message
    if lab_env["QUANTLAB_DB"].exists():
        with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
            tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            assert "ohlcv" not in tables or con.execute("SELECT count(*) FROM ohlcv").fetchone()[0] == 0
