"""``quantlab`` ends each refused input in one line with exit code 2, before doing anything, and
never prints a traceback (issue 24): an equity CSV into a missing folder, a reversed or weekend-only
range, a start date in the future, a closed pipe, control characters in an override, a DAGSTER_HOME
that cannot hold Dagster's storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from quantlab_assets.batch_orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = str(ROOT / "strategies" / "low_volatility.yaml")


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.err.strip().splitlines(), out.out


@pytest.mark.parametrize(
    ("start", "end", "extra", "message"),
    [
        (
            "2024-03-01",
            "2024-03-28",
            ["--equity-csv", "{tmp}/no/such/folder/eq.csv"],
            "the folder {tmp}/no/such/folder does not exist",
        ),
        ("2024-03-01", "2024-03-28", ["--equity-csv", "{tmp}"], "is a folder; give a file name"),
        ("2024-04-30", "2024-03-01", [], "--start 2024-04-30 is after --end 2024-03-01: the range is reversed"),
        ("2024-03-30", "2024-03-31", [], "2024-03-30..2024-03-31 holds no trading session"),
    ],
)
def test_backtest_refuses_bad_ranges_and_paths_before_running(lab_env, capsys, tmp_path, start, end, extra, message):
    argv = ["backtest", STRATEGY, "--start", start, "--end", end, *[a.format(tmp=tmp_path) for a in extra]]
    code, err, out = _run(capsys, *argv)
    assert code == 2 and out == "" and len(err) == 1, (code, err, out)
    assert message.format(tmp=tmp_path) in err[0]


def _cli(*argv, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "quantlab_assets.batch_orchestrator.cli", *argv],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_a_start_date_in_the_future_is_one_line_naming_the_variable(lab_env):
    proc = _cli("plan", "--select", "ohlcv", "--partition", "2024-03-05", env={"QUANTLAB_START_DATE": "2099-01-01"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "quantlab plan: QUANTLAB_START_DATE='2099-01-01' is in the future: no trading-day partition exists yet; "
        "give a date up to today"
    ]


def test_a_closed_pipe_ends_quietly(lab_env):
    script = (
        "import sys\n"
        "from quantlab_assets.batch_orchestrator import cli\n"
        "def flood(instance, limit):\n"
        "    for i in range(200000):\n"
        "        print(f'line {i}')\n"
        "    return 0\n"
        "cli.cmd_runs = flood\n"
        "sys.exit(cli.main(['runs']))\n"
    )
    proc = subprocess.run(
        f'{sys.executable} -c "$SCRIPT" | head -1',
        shell=True,
        env={**os.environ, "SCRIPT": script},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout == "line 0\n"
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("--reason", "fine\n2024-03-28 12:00:00  momentum_topk  2024-03-28  -> approved  by boss: forged", "'\\n'"),
        ("--by", "\x1b[31mroot\x1b[0m", "'\\x1b'"),
        ("--reason", "ok\u202eevil", "'\\u202e'"),
    ],
)
def test_control_characters_in_an_override_are_refused(lab_env, capsys, flag, value, shown):
    db = lab_env["QUANTLAB_DB"]
    duckdb.connect(str(db)).close()
    args = {"--reason": "checked", "--by": "tester", flag: value}
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
        args["--reason"],
        "--by",
        args["--by"],
    )
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith(f"quantlab override: {flag}: contains the control character {shown}")
    assert err[0].endswith("nothing recorded")
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert (
            "approval_overrides" not in tables
            or not con.execute("SELECT count(*) FROM approval_overrides").fetchall()[0][0]
        )


def test_stored_control_characters_are_printed_escaped(lab_env, capsys):
    import pandas as pd

    from quantlab_assets.common.warehouse import append_rows
    from quantlab_assets.portfolio_supervisor.core.schema import OVERRIDES

    db = lab_env["QUANTLAB_DB"]
    with duckdb.connect(str(db)) as con:  # a row stored before the refusal existed
        append_rows(
            con,
            OVERRIDES,
            pd.DataFrame(
                [
                    {
                        "date": pd.Timestamp("2024-03-28"),
                        "strategy": "momentum_topk",
                        "status": "approved",
                        "reason": "a\nforged line",
                        "decided_by": "\x1b[31mx",
                        "decided_at": pd.Timestamp("2024-03-28 12:00"),
                    }
                ]
            ),
        )
    code, err, out = _run(capsys, "overrides")
    assert code == 0 and len(out.strip().splitlines()) == 1
    assert "by \\x1b[31mx: a\\nforged line" in out and "\x1b" not in out


def test_a_dagster_home_that_cannot_hold_storage_is_one_line(lab_env, capsys, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(not_a_folder))
    code, err, _ = _run(capsys, "runs")
    assert code == 2 and err == [
        f"quantlab runs: DAGSTER_HOME={not_a_folder} is a file, not a folder; point it at Dagster's folder"
    ]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    code, err, _ = _run(capsys, "last-run")
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]


def test_commands_on_a_damaged_warehouse_are_one_line(lab_env, capsys):
    db = lab_env["QUANTLAB_DB"]
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE ohlcv AS SELECT range AS i, random() AS v FROM range(2000000)")
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    for argv in (["overrides"], ["backtest", STRATEGY, "--start", "2024-03-01", "--end", "2024-03-28"]):
        code, err, out = _run(capsys, *argv)
        assert code in (1, 2) and len(err) == 1 and str(db) in err[0], (argv, code, err)
        assert "Traceback" not in out
