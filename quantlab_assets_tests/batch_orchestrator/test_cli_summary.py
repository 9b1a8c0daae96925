"""Issue 22 point 8: the terminal shows the result, not a hundred ``check ... pass`` lines: checks
are summarised over the run's partitions, and ``quantlab leaderboard`` prints the ranking."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from quantlab_assets.analytics.core.leaderboard import leaderboard, leaderboard_text
from quantlab_assets.backtest_engine.core.kpis import kpi_table
from quantlab_assets.batch_orchestrator.cli import check_lines
from quantlab_assets.common.calendar import trading_days


def _ev(name, partition, passed, severity=dg.AssetCheckSeverity.ERROR, description="ok"):
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("ohlcv"),
        check_name=name,
        passed=passed,
        severity=severity,
        description=description,
        partition=partition,
    )


def test_checks_are_summarised_over_partitions():
    days = ["2026-06-01", "2026-06-02", "2026-06-03"]
    checks = {
        "ohlcv.coverage": [_ev("coverage", d, True) for d in days],
        "ohlcv.duplicates": [_ev("duplicates", d, True) for d in days],
        "ohlcv.suspicious_jumps": [
            _ev("suspicious_jumps", d, d != "2026-06-02", dg.AssetCheckSeverity.WARN, "1 jump") for d in days
        ],
    }
    assert check_lines(checks) == [
        "  checks: 2 of 3 passed on every partition",
        "  check ohlcv.suspicious_jumps: warn on 1 of 3 partitions (first 2026-06-02)  1 jump",
    ]
    one = {"ohlcv.coverage": [_ev("coverage", "2026-06-01", False, description="2 symbols missing")]}
    assert check_lines(one) == [
        "  checks: 0 of 1 passed on every partition",
        "  check ohlcv.coverage: FAIL  2 symbols missing",
    ]


def test_leaderboard_text_shows_sharpe_return_drawdown_approval_and_flag():
    days = trading_days("2026-06-01", "2026-08-31")
    rng = np.random.default_rng(1)
    equity, kpis, approvals = [], [], []
    for name, gross, status in (("momentum_topk", 1.0, "approved"), ("levered", 2.0, "rejected")):
        frame = pd.DataFrame({"date": days, "ret": rng.normal(0.001, 0.01, len(days)), "gross_exposure": gross})
        equity.append(frame.assign(strategy=name))
        kpis.append(kpi_table(frame[["date", "ret"]]).assign(strategy=name))
        approvals.append(pd.DataFrame({"date": days, "strategy": name, "status": status}))
    board = leaderboard(pd.concat(kpis), pd.concat(equity), pd.concat(approvals), days[-1])
    text = leaderboard_text(board).splitlines()
    assert text[0].startswith("Strategy leaderboard as of 2026-08-31")
    assert text[1].split() == ["strategy", "Sharpe", "return", "max", "DD", "approved", "since", "flag"]
    rows = {line.split()[0]: line for line in text[2:]}
    row = board.table.set_index("strategy").loc["momentum_topk"]
    assert (
        f"{row['sharpe_ratio']:.2f}" in rows["momentum_topk"] and f"{row['total_return']:.2%}" in rows["momentum_topk"]
    )
    assert "100.00%" in rows["momentum_topk"] and "2026-06-01" in rows["momentum_topk"]
    assert rows["levered"].rstrip().endswith("REJECTED: every session") and "0.00%" in rows["levered"]
