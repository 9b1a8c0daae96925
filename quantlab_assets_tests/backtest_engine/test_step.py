"""One partition of the backtest and of its KPIs, without Dagster: candidate rows, the gate on
exactly those rows, the resume rule, and the readers of the backtest's own tables."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core import step
from quantlab_assets.backtest_engine.core.kpis import SINCE_START, kpis_of_range
from quantlab_assets.backtest_engine.core.schema import BACKTEST_EQUITY, BACKTEST_STATE
from quantlab_assets.backtest_engine.core.step import (
    BacktestInputs,
    backtest_partition,
    kpis_partition,
    with_candidate,
)
from quantlab_assets.backtest_engine.core.store import backtest_strategy, read_equity_history, read_resume_state
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.common.gates import UPSTREAM_CHECK
from quantlab_assets.common.warehouse import replace_strategy_slice
from quantlab_assets.strategy_lab.core.spec import StrategySpec

DAYS = trading_days("2024-03-01", "2024-04-30")
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
SPEC = StrategySpec(
    name="alpha",
    signal={"kind": "feature", "feature": "mom_12_1"},
    selection={"kind": "all"},
    costs={"fee_bps": 1.0, "slippage_bps": 5.0},
)


def _bars() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for s in SYMBOLS:
        close = 30 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, len(DAYS))))
        rows.append(
            pd.DataFrame(
                {
                    "date": DAYS,
                    "symbol": s,
                    "open": close * np.exp(rng.normal(0, 0.004, len(DAYS))),
                    "close": close,
                    "adj_close": close,
                    "volume": 1e6,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _targets() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    frames = [
        pd.DataFrame({"date": d, "symbol": SYMBOLS, "weight": rng.dirichlet(np.ones(4)), "rebalance": i % 5 == 0})
        for i, d in enumerate(DAYS)
    ]
    return pd.concat(frames, ignore_index=True)


BARS, TARGETS = _bars(), _targets()


def _inputs(start, end, state=None, last_state_date=None) -> BacktestInputs:
    lo = DAYS[DAYS.get_loc(pd.Timestamp(start)) - 1]
    bars = BARS[(BARS["date"] >= lo) & (BARS["date"] <= pd.Timestamp(end))]
    targets = TARGETS[(TARGETS["date"] >= pd.Timestamp(start)) & (TARGETS["date"] <= pd.Timestamp(end))]
    return BacktestInputs(bars, targets, state, last_state_date, "alpha/alpha_targets", "alpha/alpha_backtest")


def test_the_partition_is_the_one_backtest_and_passes_its_gate():
    start, end = DAYS[1], DAYS[-1]
    part = backtest_partition(_inputs(start, end), SPEC, start, end)
    assert [g.name for g in part.gate] == [UPSTREAM_CHECK, "accounting_identity", "no_trade_before_decision"]
    assert all(g.passed for g in part.gate), [g.description for g in part.gate]
    # The same kernel the research API calls, on the targets' rebalance rows only.
    inputs = _inputs(start, end)
    decisions = inputs.targets[inputs.targets["rebalance"]][["date", "symbol", "weight"]]
    out, equity = backtest_strategy(inputs.bars, decisions, start, end, SPEC.costs, SPEC.capital)
    pd.testing.assert_frame_equal(part.equity, equity, check_exact=True)
    pd.testing.assert_frame_equal(part.trades, out.trades, check_exact=True)
    assert len(part.trades) > 0 and (part.trades["date"] > part.trades["decision_date"]).all()
    # The tables go out together, scoped to the strategy, with the spec each session was built under.
    assert [(s.schema.name, s.strategy, len(s.frame)) for s in part.slices("alpha")] == [
        ("backtest_equity", "alpha", len(equity)),
        ("backtest_positions", "alpha", len(out.positions)),
        ("backtest_trades", "alpha", len(out.trades)),
        ("backtest_state", "alpha", len(out.states)),
        ("backtest_spec", "alpha", len(equity)),
    ]


def test_partitions_resumed_from_the_stored_state_equal_one_run():
    start, mid, end = DAYS[1], DAYS[20], DAYS[-1]
    whole = backtest_partition(_inputs(start, end), SPEC, start, end)
    first = backtest_partition(_inputs(start, DAYS[19]), SPEC, start, DAYS[19])
    state = first.states[first.states["date"] == DAYS[19]].reset_index(drop=True)
    second = backtest_partition(_inputs(mid, end, state, DAYS[19]), SPEC, mid, end)
    assert all(g.passed for g in second.gate)
    for table in ("equity", "positions", "trades", "states"):
        joined = pd.concat([getattr(first, table), getattr(second, table)], ignore_index=True)
        pd.testing.assert_frame_equal(joined, getattr(whole, table), check_exact=True)


def test_a_skipped_session_is_a_missing_input_and_nothing_is_simulated():
    start, end = DAYS[10], DAYS[12]
    part = backtest_partition(_inputs(start, end, state=None, last_state_date=DAYS[7]), SPEC, start, end)
    gate, *skipped = part.gate
    _assert_not_evaluated(skipped, ["accounting_identity", "no_trade_before_decision"])
    assert gate.name == UPSTREAM_CHECK and not gate.passed and gate.blocking
    assert gate.description == (
        f"backtest state missing for {DAYS[9].date()} (stored up to {DAYS[7].date()}): materialize "
        f"alpha/alpha_backtest from {DAYS[8].date()} first; nothing was written"
    )
    assert gate.offending["date"].tolist() == [DAYS[9]]
    assert all(len(s.frame) == 0 for s in part.slices("alpha"))
    # A strategy without history starts from cash: no gap.
    assert backtest_partition(_inputs(start, end), SPEC, start, end).gate[0].passed


def test_missing_targets_name_the_targets_asset():
    start, end = DAYS[10], DAYS[14]
    inputs = _inputs(start, end)
    inputs = dataclasses.replace(inputs, targets=inputs.targets[inputs.targets["date"] != DAYS[12]])
    gate, *skipped = backtest_partition(inputs, SPEC, start, end).gate
    _assert_not_evaluated(skipped, ["accounting_identity", "no_trade_before_decision"])
    assert not gate.passed
    assert "targets missing for 1 of 5 sessions" in gate.description
    assert f"materialize alpha/alpha_targets first (first missing {DAYS[12].date()})" in gate.description


@pytest.mark.parametrize("fault", ["equity", "early_fill"])
def test_the_gate_judges_exactly_the_candidate_rows(monkeypatch, fault):
    """A simulator that breaks the identity, or fills before its decision, fails its rule naming
    the candidate rows that break it."""
    real = step.backtest_strategy

    def broken(*args, **kwargs):
        out, equity = real(*args, **kwargs)
        if fault == "equity":
            return out, equity.assign(
                equity=equity["equity"].where(equity["date"] != DAYS[13], equity["equity"] + 100.0)
            )
        early = out.trades.assign(date=out.trades["decision_date"])
        return dataclasses.replace(out, trades=early), equity

    monkeypatch.setattr(step, "backtest_strategy", broken)
    start, end = DAYS[10], DAYS[14]
    gate = {g.name: g for g in backtest_partition(_inputs(start, end), SPEC, start, end).gate}
    assert gate[UPSTREAM_CHECK].passed
    if fault == "equity":
        assert not gate["accounting_identity"].passed and gate["no_trade_before_decision"].passed
        assert gate["accounting_identity"].description == f"1 sessions break it, first {DAYS[13].date()}"
        assert gate["accounting_identity"].offending["date"].tolist() == [DAYS[13]]
    else:
        assert gate["accounting_identity"].passed and not gate["no_trade_before_decision"].passed
        assert len(gate["no_trade_before_decision"].offending) == gate["no_trade_before_decision"].figures["fills"] > 0


def test_kpis_over_the_history_with_the_candidate_in_place():
    start, end = DAYS[1], DAYS[-1]
    equity = backtest_partition(_inputs(start, end), SPEC, start, end).equity
    lo, hi = DAYS[30], DAYS[34]
    # The stored rows before the range stay; a stale stored version of the range is replaced.
    stored = equity[equity["date"] <= hi].assign(ret=lambda f: f["ret"].where(f["date"] < lo, -1.0))
    candidate = equity[(equity["date"] >= lo) & (equity["date"] <= hi)]
    history = with_candidate(stored, candidate, lo)
    pd.testing.assert_frame_equal(history, equity[equity["date"] <= hi].reset_index(drop=True), check_exact=True)
    kpis = kpis_partition(equity[equity["date"] <= hi], lo, hi, "alpha/alpha_backtest")
    assert [g.name for g in kpis.gate] == [UPSTREAM_CHECK, "kpis_finite"] and all(g.passed for g in kpis.gate)
    pd.testing.assert_frame_equal(kpis.table, kpis_of_range(equity[equity["date"] <= hi], lo, hi), check_exact=True)
    assert set(kpis.table["scope"]) >= {SINCE_START} and len(kpis.table) == 2 * 5
    # A session of the range without a stored backtest: nothing computed, the backtest named.
    holed = equity[equity["date"] != DAYS[32]]
    gate, *skipped = kpis_partition(holed, lo, hi, "alpha/alpha_backtest").gate
    _assert_not_evaluated(skipped, ["kpis_finite"])
    assert (
        not gate.passed
        and f"materialize alpha/alpha_backtest first (first missing {DAYS[32].date()})" in gate.description
    )
    assert kpis_partition(holed, lo, hi).table.empty


def test_readers_of_the_stored_state_and_equity(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        assert read_resume_state(con, "alpha", DAYS[5]) == (None, None)  # a first run
        part = backtest_partition(_inputs(DAYS[1], DAYS[4]), SPEC, DAYS[1], DAYS[4])
        replace_strategy_slice(con, BACKTEST_STATE, part.states, "alpha", DAYS[1], DAYS[4])
        replace_strategy_slice(con, BACKTEST_EQUITY, part.equity, "alpha", DAYS[1], DAYS[4])
        state, as_of = read_resume_state(con, "alpha", DAYS[5])
        assert as_of == DAYS[4] and state is not None
        expected = part.states[part.states["date"] == DAYS[4]].sort_values("symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(state, expected, check_dtype=False, check_exact=True)
        assert read_resume_state(con, "alpha", DAYS[7]) == (None, DAYS[4])  # two sessions skipped
        assert read_resume_state(con, "beta", DAYS[5]) == (None, None)  # another strategy's rows
        history = read_equity_history(con, "alpha", DAYS[3])
        assert history["date"].tolist() == list(DAYS[1:4])
    finally:
        con.close()


def _assert_not_evaluated(results, names):
    """Rules that saw no rows are warnings saying so, never passed checks."""
    assert [r.name for r in results] == names
    assert all(not r.passed and not r.blocking and r.description.startswith("not evaluated: ") for r in results)


def test_since_start_by_date_equals_the_figures_of_each_date():
    from quantlab_assets.backtest_engine.core.kpis import kpi_table
    from quantlab_assets.backtest_engine.core.step import since_start_by_date, since_start_figures

    rng = np.random.default_rng(7)
    days = pd.bdate_range("2024-01-01", periods=300)
    daily = pd.DataFrame({"date": days, "ret": rng.normal(0, 0.01, len(days)), "turnover": rng.random(len(days))})
    table = kpi_table(daily)
    by_date = since_start_by_date(table)
    assert list(by_date) == list(days)
    assert by_date == {day: since_start_figures(rows) for day, rows in table.groupby("date")}
