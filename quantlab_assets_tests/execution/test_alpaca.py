"""The Alpaca adapter against a local 127.0.0.1 stand-in that answers like Alpaca's paper API:
submission, a duplicate client order id, a partial fill, a reject, throttling, 5xx, timeouts, the
market-on-open window, a reconciliation break, and keys that never leak."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.alpaca import NEW_YORK, AlpacaBroker, in_opg_window
from quantlab_assets.execution.core.broker import BrokerError, DuplicateClientOrderId, OrderWindowError
from quantlab_assets.execution.core.cycle import Cycle, run_cycle
from quantlab_assets.execution.core.ledger import replay
from quantlab_assets.execution.core.orders import Order, OrderPolicy
from quantlab_assets.execution.core.risk import TradeLimits
from quantlab_assets_tests.execution.support import random_bars, random_books, seed
from quantlab_assets_tests.support.alpaca_server import KEY_ID, SECRET, AlpacaStandIn

S = "alpaca_s"
EVENING = datetime(2024, 1, 2, 20, 0, tzinfo=NEW_YORK)


@pytest.fixture
def venue():
    with AlpacaStandIn(cash=100_000.0) as server:
        yield server


def _broker(server, clock=EVENING, **kw) -> tuple[AlpacaBroker, list[float]]:
    waits: list[float] = []
    broker = AlpacaBroker(
        server.url, KEY_ID, SECRET, clock=lambda: clock, sleep=waits.append, **{"timeout_s": 2.0, **kw}
    )
    return broker, waits


def _order(symbol="AAA", qty=10.0, side="buy", coid="ql-test-1") -> Order:
    return Order(coid, symbol, side, qty, 50.0)


def test_submission_lookup_positions_and_cash(venue):
    broker, _ = _broker(venue)
    placed = broker.submit(_order(), "2024-01-02")
    assert placed.status == "accepted" and placed.broker_order_id and placed.qty == 10
    assert broker.get_order("ql-test-1") == placed
    assert broker.get_order("nope") is None
    venue.fill("ql-test-1", 10, 50.5)
    got = broker.get_order("ql-test-1")
    assert (got.status, got.filled_qty, got.filled_avg_price) == ("filled", 10.0, 50.5)
    assert broker.positions() == {"AAA": 10.0} and broker.cash() == pytest.approx(100_000 - 505.0)
    # Whole shares go market-on-open, fractional ones market/day (Alpaca's rule).
    broker.submit(_order(qty=0.5, coid="frac"), "2024-01-02")
    assert venue.orders["ql-test-1"]["time_in_force"] == "opg" and venue.orders["frac"]["time_in_force"] == "day"


def test_duplicate_client_order_id(venue):
    broker, _ = _broker(venue)
    broker.submit(_order(), "2024-01-02")
    with pytest.raises(DuplicateClientOrderId, match="client_order_id must be unique"):
        broker.submit(_order(), "2024-01-02")


def test_reject_is_an_order_state_not_an_exception():
    with AlpacaStandIn(refuse=frozenset({"BAD"})) as server:
        broker, _ = _broker(server)
        answer = broker.submit(_order("BAD"), "2024-01-02")
        assert answer.status == "rejected" and "insufficient buying power" in answer.reason


def test_throttling_is_retried_with_retry_after_and_bounded(venue):
    broker, waits = _broker(venue, max_retries=3, max_wait_s=5.0)
    venue.faults.extend(
        [("GET", "/v2/account", 429, 2), ("GET", "/v2/account", 429, 30), ("GET", "/v2/account", 503, None)]
    )
    assert broker.cash() == 100_000.0
    assert waits == [2.0, 5.0, 2.0]  # Retry-After, capped at max_wait_s, then backoff 0.5 * 2**2
    venue.faults.extend([("GET", "/v2/account", 429, 0)] * 4)
    with pytest.raises(BrokerError, match=r"GET /v2/account: HTTP 429 after 4 attempts"):
        broker.cash()


def test_a_reply_slower_than_the_timeout_is_retried(venue):
    broker, waits = _broker(venue, timeout_s=0.3, max_retries=1)
    venue.faults.append(("GET", "/v2/positions", "slow", 1.0))
    assert broker.positions() == {}
    assert len(waits) == 1
    venue.faults.extend([("GET", "/v2/positions", "slow", 1.0)] * 2)
    with pytest.raises(BrokerError, match="ReadTimeout after 2 attempts"):
        broker.positions()


def test_market_on_open_only_inside_its_window(venue):
    afternoon = datetime(2024, 1, 2, 14, 5, tzinfo=NEW_YORK)
    broker, _ = _broker(venue, clock=afternoon)
    with pytest.raises(OrderWindowError, match="from 19:00 to 09:28 New York time; it is 14:05 there"):
        broker.submit(_order(), "2024-01-02")
    assert venue.posts() == 0
    assert broker.submit(_order(qty=1.5, coid="f"), "2024-01-02").status == "accepted"  # a day order
    assert in_opg_window(datetime(2024, 1, 3, 9, 28, tzinfo=NEW_YORK))
    assert not in_opg_window(datetime(2024, 1, 3, 9, 29, tzinfo=NEW_YORK))
    assert in_opg_window(datetime(2024, 1, 2, 19, 0, tzinfo=NEW_YORK))


def test_missing_keys_are_refused_naming_the_variables():
    with pytest.raises(BrokerError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        AlpacaBroker("http://127.0.0.1:1", "", "")


# ----------------------------------------------------------------------------- the cycle on Alpaca


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "lab.duckdb")) as c:
        seed(c, random_bars("2024-01-02", "2024-01-10"), random_books("2024-01-02", "2024-01-10", S), S)
        store.ensure_all(c)
        yield c


def _cycle(con, broker, day, run_id="r1"):
    book = con.execute("SELECT symbol, weight FROM approved_targets WHERE date = ?", [day]).df()
    policy = OrderPolicy(fractional=False)
    return run_cycle(con, broker, Cycle(S, policy, TradeLimits(), run_id), day, book.set_index("symbol")["weight"])


def _fill_all(venue, share=1.0, price=None):
    for coid, order in list(venue.orders.items()):
        if order["status"] == "accepted":
            venue.fill(coid, float(order["qty"]) * share, price or 50.0)


def test_cycle_submits_collects_partial_fills_and_reconciles(con, venue):
    broker, _ = _broker(venue)
    first = _cycle(con, broker, "2024-01-02")
    assert first.submitted == 4 and first.breaks.empty and venue.posts() == 4
    _fill_all(venue, share=0.5)  # the open: half of each order
    second = _cycle(con, broker, "2024-01-03")
    assert second.fills == 4 and second.breaks.empty
    events = store.read_events(con, S)
    assert (events["event"] == "partially_filled").sum() == 4
    for coid, order in venue.orders.items():  # the rest fills
        if order["status"] == "partially_filled":
            venue.fill(coid, float(order["qty"]) - float(order["filled_qty"]), 52.0)
    third = _cycle(con, broker, "2024-01-04")
    assert third.breaks.empty
    account = replay(store.read_ledger(con, S))
    assert account.shares == pytest.approx(broker.positions()) and account.cash == pytest.approx(broker.cash())


def test_rerun_after_a_crash_between_submission_and_record_sends_nothing_twice(con, venue):
    broker, _ = _broker(venue)
    _cycle(con, broker, "2024-01-02")
    before = venue.posts()
    con.execute("DELETE FROM exec_order_events")  # as if the process died before recording them
    again = _cycle(con, broker, "2024-01-02", run_id="r2")
    assert venue.posts() == before and again.submitted == 0
    assert (store.read_events(con, S)["event"] == "submitted").sum() == before


def test_throttled_submission_is_recorded_unknown_and_resolved_by_id_later(con, venue):
    broker, _ = _broker(venue, max_retries=1)
    venue.faults.extend([("POST", "/v2/orders", 429, 0)] * 2)  # the first order: throttled past the retries
    result = _cycle(con, broker, "2024-01-02")
    events = store.read_events(con, S)
    assert result.submitted == 3 and (events["event"] == "unknown").sum() == 1
    unknown = events[events["event"] == "unknown"]
    assert "HTTP 429 after 2 attempts" in unknown["reason"].iloc[0]
    # The next cycle asks for it by id: the broker never had it, so it is final (never sent again).
    _cycle(con, broker, "2024-01-03")
    last = store.latest_events(store.read_events(con, S)).loc[unknown["client_order_id"].iloc[0]]
    assert last["event"] == "rejected" and "never placed" in last["reason"]
    assert unknown["client_order_id"].iloc[0] not in venue.orders


def test_trade_outside_quant_lab_is_a_break(con, venue):
    broker, _ = _broker(venue)
    _cycle(con, broker, "2024-01-02")
    venue.positions["ZZZ"] = 3.0  # someone traded in the account
    result = _cycle(con, broker, "2024-01-03")
    assert list(result.breaks["symbol"]) == ["ZZZ"] and result.submitted == 0
    assert len(store.open_breaks(con, S)) == 1


def test_keys_never_reach_the_warehouse_or_a_message(con, venue):
    broker, _ = _broker(venue, max_retries=0)
    venue.faults.append(("GET", "/v2/account", 500, None))
    with pytest.raises(BrokerError) as err:
        broker.cash()
    assert SECRET not in str(err.value) and KEY_ID not in str(err.value) and SECRET not in repr(broker)
    _cycle(con, broker, "2024-01-02")
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
        text = con.execute(f'SELECT * FROM "{table}"').df().to_string()
        assert SECRET not in text and KEY_ID not in text, table
