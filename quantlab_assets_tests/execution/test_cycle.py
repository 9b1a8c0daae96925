"""The order path on a real DuckDB file with the simulated broker: paper equals the reference
backtest, the drift's parts, corporate actions, restarts, breaks and the kill switch."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.backtest_engine.core.engine import BacktestState, simulate
from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.registry import load_registry
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.broker import SimulatedBroker
from quantlab_assets.execution.core.compare import DRIFT_PARTS
from quantlab_assets.execution.core.cycle import ACCEPT_BROKER, Cycle, cancel_open_orders, resolve_breaks
from quantlab_assets.execution.core.ledger import replay
from quantlab_assets.execution.core.orders import OrderPolicy
from quantlab_assets.execution.core.risk import TradeLimits
from quantlab_assets.execution.core.schema import HALTED, REDUCING
from quantlab_assets.execution.core.step import execution_partition
from quantlab_assets_tests.execution.support import SYMBOLS, random_bars, random_books, seed

S = "paper_s"
# The whole order path over one to three months of sessions: minutes on a loaded machine, so not in
# the fast (unit) tier though no Dagster run is involved.
SLOW = pytest.mark.e2e


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "lab.duckdb")) as c:
        yield c


def _run(con, start, end, broker=None, policy=None, limits=None, run_id="r1"):
    broker = broker or SimulatedBroker(con, S, capital=100_000.0)
    cycle = Cycle(S, policy or OrderPolicy(), limits or TradeLimits(), run_id)
    return execution_partition(con, broker, cycle, start, end)


def _passed(ex) -> dict:
    return {g.name: g.passed for g in ex.audit()}


@SLOW
def test_three_months_of_the_demo_universe_at_zero_slippage_equal_the_reference(con):
    """The packaged 50-name universe's synthetic bars, 61 sessions, a top-10 book rotating daily:
    equal to 1e-12 of equity (the reference sums the same products in another order)."""
    registry = load_registry()
    bars = SyntheticProvider(sectors=registry.sector_of()).fetch(registry.tickers, date(2024, 1, 2), date(2024, 3, 28))
    bars = bars.bars.assign(source="synthetic", ingested_at=pd.Timestamp("2026-01-01"), run_id="test")
    rng = np.random.default_rng(3)
    books = pd.concat(
        pd.DataFrame({"date": day, "symbol": rng.choice(registry.tickers, 10, replace=False), "weight": 0.1})
        for day in trading_days("2024-01-02", "2024-03-28")
    ).assign(strategy=S, source="targets")
    seed(con, bars, books, S)
    ex = _run(con, "2024-01-02", "2024-03-28")
    assert all(_passed(ex).values()), _passed(ex)
    book = ex.paper_book
    assert len(book) == 61 and book["orders"].sum() > 500 and book["fills"].sum() > 500
    np.testing.assert_allclose(book["equity"], book["reference_equity"], rtol=1e-12, atol=0)
    assert (book["cash"] >= -1e-6).all()
    assert book["equity"].iloc[-1] != 100_000.0  # it traded


@SLOW
def test_equal_to_the_backtest_engine_when_each_open_is_the_previous_close(con):
    """With no overnight gap, sizing at the close is sizing at the open: the paper book equals
    ``backtest_engine.core.engine.simulate`` of the approved targets (zero costs) to 1e-9."""
    bars = random_bars("2024-01-02", "2024-02-29").sort_values(["symbol", "date"])
    bars["open"] = bars.groupby("symbol")["close"].shift(1).fillna(bars["open"])
    books = random_books("2024-01-02", "2024-02-29", S, gross=0.98)
    seed(con, bars, books, S)
    book = _run(con, "2024-01-02", "2024-02-29").paper_book
    days = trading_days("2024-01-02", "2024-02-29")
    wide = {c: bars.pivot(index="date", columns="symbol", values=c).reindex(days)[SYMBOLS] for c in ("open", "close")}
    decisions = books.pivot(index="date", columns="symbol", values="weight").reindex(days)[SYMBOLS]
    # The engine starts holding cash at the first close, as the paper account (funded on its first session).
    state = BacktestState.initial(len(SYMBOLS), 100_000.0)
    _, result = simulate(state, wide["open"].to_numpy(), wide["close"].to_numpy(), decisions.to_numpy())
    np.testing.assert_allclose(book["equity"].to_numpy(), result.equity, rtol=1e-9)


@SLOW
def test_slippage_partial_fills_and_rejects_show_in_the_drift_and_its_parts_sum(con):
    seed(con, random_bars("2024-01-02", "2024-01-31"), random_books("2024-01-02", "2024-01-31", S), S)
    broker = SimulatedBroker(con, S, 100_000.0, slippage_bps=10, partial_fills={"AAA": 0.5}, rejects=frozenset({"BBB"}))
    ex = _run(con, "2024-01-02", "2024-01-31", broker, OrderPolicy(fractional=False))
    assert all(_passed(ex).values()), _passed(ex)
    book = ex.paper_book
    parts = book[[f"drift_{p}" for p in DRIFT_PARTS]]
    np.testing.assert_allclose(parts.sum(axis=1), book["drift"], atol=1e-6)
    assert (book["drift_fill_price"].iloc[1:] < 0).all()  # buying above and selling below the open costs
    assert book["drift_missed"].abs().sum() > 0 and book["drift_sizing"].abs().sum() > 0
    assert abs(book["drift_other"]).max() < 1e-6
    # The gap over the range is the sum of the daily drifts.
    gap = (book["equity"] - book["reference_equity"]).iloc[-1]
    assert gap == pytest.approx(book["drift"].sum(), abs=1e-6)
    events = store.read_events(con, S)
    assert {"rejected", "partially_filled", "expired", "filled"} <= set(events["event"])


@SLOW
def test_dividends_and_splits_are_applied_to_paper_positions(con):
    bars = random_bars(
        "2024-01-02", "2024-01-31", dividends={("2024-01-10", "AAA"): 1.25}, splits={("2024-01-17", "CCC"): 2.0}
    )
    seed(con, bars, random_books("2024-01-02", "2024-01-31", S), S)
    ex = _run(con, "2024-01-02", "2024-01-31")
    assert all(_passed(ex).values()), _passed(ex)
    ledger = store.read_ledger(con, S)
    div = ledger[ledger["kind"] == "dividend"]
    held = replay(ledger, upto="2024-01-09").shares["AAA"]
    assert len(div) == 1 and div["cash_delta"].iloc[0] == pytest.approx(1.25 * held, rel=1e-15)
    split = ledger[ledger["kind"] == "split"]
    assert list(split["symbol"]) == ["CCC"] and split["qty"].iloc[0] == 2.0
    before = replay(ledger[ledger["seq"] < split["seq"].iloc[0]]).shares["CCC"]
    after = replay(ledger[ledger["seq"] <= split["seq"].iloc[0]]).shares["CCC"]
    assert after == 2 * before
    np.testing.assert_allclose(ex.paper_book["equity"], ex.paper_book["reference_equity"], rtol=1e-12)


def test_rerunning_days_submits_nothing_new_and_keeps_the_state(con):
    seed(con, random_bars("2024-01-02", "2024-01-19"), random_books("2024-01-02", "2024-01-19", S), S)
    first = _run(con, "2024-01-02", "2024-01-10")
    store_rows = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("exec_ledger", "sim_broker_orders")
    }
    events = len(store.read_events(con, S))
    # Same partition again (its cycles are not published yet: they run again, idempotently).
    again = _run(con, "2024-01-02", "2024-01-10", run_id="r2")
    assert len(store.read_events(con, S)) == events
    assert {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in store_rows} == store_rows
    pd.testing.assert_frame_equal(first.paper_book, again.paper_book)
    assert sum(c.submitted for c in again.cycles) == 0


def test_a_break_halts_new_orders_until_a_person_resolves_it(con):
    seed(con, random_bars("2024-01-02", "2024-01-19"), random_books("2024-01-02", "2024-01-19", S), S)
    broker = SimulatedBroker(con, S, capital=100_000.0)
    _run(con, "2024-01-02", "2024-01-05", broker)
    broker.inject_trade("2024-01-05", "DDD", 7.0, 10.0)  # a trade made outside Quant Lab
    ex = _run(con, "2024-01-08", "2024-01-10", broker)
    gate = {g.name: g for g in ex.audit()}
    assert not gate["reconciled"].passed
    assert "DDD: ledger" in gate["reconciled"].description and "difference +7" in gate["reconciled"].description
    assert "$CASH" in gate["reconciled"].description
    assert len(ex.cycles) == 1 and ex.cycles[0].submitted == 0  # stopped at the first cycle, nothing sent
    assert len(store.open_breaks(con, S)) == 2
    # Still broken on a re-run: nothing is sent.
    again = _run(con, "2024-01-08", "2024-01-10", broker)
    assert not _passed(again)["reconciled"] and again.cycles[0].submitted == 0
    resolve_breaks(con, broker, S, ACCEPT_BROKER, "outside trade confirmed by the desk", "ops", "2024-01-08")
    assert store.open_breaks(con, S).empty
    resumed = _run(con, "2024-01-08", "2024-01-10", broker)
    assert all(_passed(resumed).values()), _passed(resumed)
    assert sum(c.submitted for c in resumed.cycles) > 0
    assert replay(store.read_ledger(con, S)).shares == pytest.approx(broker.positions())


def test_kill_switch_halted_refuses_and_reducing_only_reduces(con):
    seed(con, random_bars("2024-01-02", "2024-01-19"), random_books("2024-01-02", "2024-01-19", S), S)
    _run(con, "2024-01-02", "2024-01-03")
    store.record_switch(con, S, HALTED, "desk says stop", "ops")
    halted = _run(con, "2024-01-04", "2024-01-04")
    assert halted.cycles[0].submitted == 0 and halted.cycles[0].refused
    assert all("HALTED (desk says stop (by ops))" in r for r in halted.cycles[0].refused)
    assert halted.paper_book["switch"].tolist() == [HALTED]
    store.record_switch(con, S, REDUCING, "wind down", "ops")
    reducing = _run(con, "2024-01-05", "2024-01-05")
    events = store.read_events(con, S)
    sent = events[(events["date"] == "2024-01-05") & (events["event"] == "submitted")]
    assert (sent["side"] == "sell").all()
    assert all("REDUCING" in r for r in reducing.cycles[0].refused)
    with pytest.raises(ValueError, match="needs a reason"):
        store.record_switch(con, S, HALTED, " ", "ops")


def test_sessions_trade_in_order(con):
    seed(con, random_bars("2024-01-02", "2024-01-19"), random_books("2024-01-02", "2024-01-19", S), S)
    from quantlab_assets.common.publish import Slice, audit_and_publish
    from quantlab_assets.execution.core.schema import PAPER_BOOK

    ex = _run(con, "2024-01-02", "2024-01-03")
    audit_and_publish(
        con, [Slice(PAPER_BOOK, ex.paper_book, S)], ex.audit(), "2024-01-02", "2024-01-03", contract="p", run_id="r"
    )
    skipped = _run(con, "2024-01-08", "2024-01-08")
    assert not skipped.upstream.passed
    assert "last traded on 2024-01-03: run the paper book from 2024-01-04 first" in skipped.upstream.description


def test_cancels_pass_when_halted_and_the_canceled_orders_never_fill(con):
    seed(con, random_bars("2024-01-02", "2024-01-10"), random_books("2024-01-02", "2024-01-10", S), S)
    broker = SimulatedBroker(con, S, capital=100_000.0)
    first = _run(con, "2024-01-02", "2024-01-02", broker)
    store.record_switch(con, S, HALTED, "stop everything", "ops")
    cycle = Cycle(S, OrderPolicy(), TradeLimits(), "cancel")
    assert cancel_open_orders(con, broker, cycle, "desk asked") == first.cycles[0].submitted > 0
    last = store.latest_events(store.read_events(con, S))
    assert (last["event"] == "canceled").all() and last["reason"].str.contains("desk asked").all()
    _run(con, "2024-01-03", "2024-01-03", broker)
    assert store.read_ledger(con, S)["kind"].tolist() == ["deposit"]  # nothing filled at the open
    assert broker.positions() == {}
