"""The broker interface and the simulated paper broker (the default; no network).

A broker takes orders with a client order id, answers for an id what became of it (cumulative
filled quantity and average price), and reports its positions and cash. The cycle talks to this
interface only; the Alpaca adapter (``core.alpaca``) is the other implementation.

The simulated broker is a venue with its own state in the warehouse (``sim_broker_orders``,
``sim_broker_ledger``), apart from Quant Lab's ledger, so reconciling the two means something.
``sync(session)`` advances it to a session: first that session's dividends and splits on what it
holds (from ``ohlcv``), then the market-on-open fills of the orders decided at an earlier close,
sells before buys, each buy trimmed to the cash there is (whole shares rounded down when the
account is not fractional). Fill price: the session's raw open times ``1 + slippage_bps / 1e4``
for a buy and ``1 - slippage_bps / 1e4`` for a sell. For tests: ``partial_fills`` (symbol ->
filled share of the order, the rest expires at the open like an unfilled OPG remainder) and
``rejects`` (symbols refused at submission).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.common.warehouse import ensure_table, transaction
from quantlab_assets.data_curator.core.schema import OHLCV
from quantlab_assets.execution.core.ledger import Account, corporate_entries, deposit_entry, fill_entry, replay
from quantlab_assets.execution.core.orders import Order
from quantlab_assets.execution.core.schema import (
    ACCEPTED,
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    PARTIALLY_FILLED,
    REJECTED,
    SIM_LEDGER,
    SIM_ORDERS,
)
from quantlab_assets.execution.core.store import append_ledger, read_ledger

BPS = 1e4


class BrokerError(RuntimeError):
    """The broker could not be reached or answered something unusable (after bounded retries)."""


class DuplicateClientOrderId(BrokerError):
    """The broker already has an order with this client order id."""


class OrderWindowError(BrokerError):
    """The order cannot be sent now (e.g. a market-on-open order outside its submission window)."""


@dataclass(frozen=True)
class BrokerOrder:
    """What the broker says of an order; ``status`` in Quant Lab's event words (``schema.EVENTS``)."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    qty: float
    status: str
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    reason: str | None = None


class Broker(Protocol):
    name: str

    def sync(self, session) -> None: ...

    def submit(self, order: Order, session) -> BrokerOrder: ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None: ...

    def cancel(self, client_order_id: str) -> BrokerOrder | None: ...

    def positions(self) -> dict[str, float]: ...

    def cash(self) -> float: ...


@dataclass
class SimulatedBroker:
    """The paper venue in the warehouse, one account per strategy (see the module docstring)."""

    con: duckdb.DuckDBPyConnection
    account: str
    capital: float = 1_000_000.0
    slippage_bps: float = 0.0
    fractional: bool = True
    partial_fills: Mapping[str, float] = field(default_factory=dict)
    rejects: frozenset[str] = frozenset()
    name: str = "simulated"
    _funded: bool = field(default=False, init=False, repr=False)
    _cache: dict[str, dict] | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not np.isfinite(self.slippage_bps) or self.slippage_bps < 0:
            raise ValueError(f"slippage_bps must be >= 0, got {self.slippage_bps!r}")
        for symbol, share in self.partial_fills.items():
            if not 0 <= share <= 1:
                raise ValueError(f"partial fill of {symbol}: {share!r} must be in [0, 1]")
        ensure_table(self.con, SIM_ORDERS)
        ensure_table(self.con, SIM_LEDGER)

    # -- the account
    def _ledger(self) -> pd.DataFrame:
        return read_ledger(self.con, self.account, SIM_LEDGER)

    def _state(self) -> Account:
        return replay(self._ledger())

    def _fund(self, session) -> None:
        if not self._funded and self._ledger().empty:
            append_ledger(self.con, [deposit_entry(session, self.account, self.capital)], SIM_LEDGER)
        self._funded = True

    def positions(self) -> dict[str, float]:
        return dict(self._state().shares)

    def cash(self) -> float:
        return self._state().cash

    # -- orders: the stored rows, read once per instance and written through (the venue's only writer)
    def _book(self) -> dict[str, dict]:
        if self._cache is None:
            sql = f'SELECT * FROM "{SIM_ORDERS.name}" WHERE account = ? ORDER BY client_order_id'
            out = self.con.execute(sql, [self.account]).df()
            out["submitted_for"] = pd.to_datetime(out["submitted_for"])
            self._cache = {r["client_order_id"]: r for r in out.to_dict("records")}
        return self._cache

    def _orders(self, coid: str | None = None, status: str | None = None, before=None) -> pd.DataFrame:
        rows = [
            r
            for r in self._book().values()
            if (coid is None or r["client_order_id"] == coid)
            and (status is None or r["status"] == status)
            and (before is None or pd.Timestamp(r["submitted_for"]) < pd.Timestamp(before))
        ]
        return pd.DataFrame(sorted(rows, key=lambda r: r["client_order_id"]), columns=SIM_ORDERS.column_names)

    def _values(self, row: dict) -> list:
        cols = SIM_ORDERS.column_names
        values = [
            None if (v is not None and not isinstance(v, str) and pd.isna(v)) else v for v in (row[c] for c in cols)
        ]
        values[cols.index("submitted_for")] = pd.Timestamp(row["submitted_for"]).date()
        return values

    def _put(self, *rows: dict, new: bool = False) -> None:
        """Store ``rows`` (replacing their earlier versions; ``new``: one insert, nothing to replace)."""
        if not rows:
            return
        insert = f'INSERT INTO "{SIM_ORDERS.name}" VALUES ({", ".join("?" * len(SIM_ORDERS.columns))})'
        if new and len(rows) == 1:
            self.con.execute(insert, self._values(rows[0]))  # one statement: committed alone
        else:
            with transaction(self.con):
                for row in rows:
                    self.con.execute(
                        f'DELETE FROM "{SIM_ORDERS.name}" WHERE account = ? AND client_order_id = ?',
                        [self.account, row["client_order_id"]],
                    )
                    self.con.execute(insert, self._values(row))
        book = self._book()
        for row in rows:
            book[row["client_order_id"]] = {**row, "submitted_for": pd.Timestamp(row["submitted_for"])}

    @staticmethod
    def _as_order(row) -> BrokerOrder:
        price = row["filled_avg_price"]
        return BrokerOrder(
            row["client_order_id"],
            row["broker_order_id"],
            row["symbol"],
            row["side"],
            float(row["qty"]),
            row["status"],
            float(row["filled_qty"]),
            None if price is None or pd.isna(price) else float(price),
            None if row["reason"] is None or pd.isna(row["reason"]) else row["reason"],
        )

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        row = self._book().get(client_order_id)
        return self._as_order(row) if row is not None else None

    def submit(self, order: Order, session) -> BrokerOrder:
        self._fund(session)
        if self.get_order(order.client_order_id) is not None:
            raise DuplicateClientOrderId(f"client_order_id {order.client_order_id} already exists")
        if not self.fractional and order.qty != math.floor(order.qty):
            raise BrokerError(f"{order.client_order_id}: fractional quantity {order.qty} on a whole-share account")
        rejected = order.symbol in self.rejects
        row = {
            "account": self.account,
            "client_order_id": order.client_order_id,
            "broker_order_id": f"sim-{order.client_order_id}",
            "symbol": order.symbol,
            "side": order.side,
            "qty": float(order.qty),
            "submitted_for": pd.Timestamp(session),
            "status": REJECTED if rejected else ACCEPTED,
            "filled_qty": 0.0,
            "filled_avg_price": None,
            "reason": f"{order.symbol} is not tradable (injected reject)" if rejected else None,
        }
        self._put(row, new=True)
        return self._as_order(pd.Series(row))

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        found = self._book().get(client_order_id)
        if found is None:
            return None
        row = dict(found)
        if row["status"] == ACCEPTED:
            row["status"], row["reason"] = CANCELED, "canceled on request"
            self._put(row)
        return self._as_order(pd.Series(row))

    def inject_trade(self, session, symbol: str, qty: float, price: float) -> None:
        """A trade made outside Quant Lab (for reconciliation tests): the venue's account moves."""
        entry = fill_entry(session, self.account, f"outside-{symbol}", symbol, BUY, qty, qty, price, 0.0)
        entry["entry_id"] = f"outside:{pd.Timestamp(session).date()}:{symbol}:{qty}"
        append_ledger(self.con, [entry], SIM_LEDGER)

    def sync(self, session) -> None:
        """Advance the venue to ``session``: its corporate actions, then its opening fills."""
        session = pd.Timestamp(session)
        self._fund(session)
        bars = self.con.execute(
            f'SELECT symbol, open, dividend, split_coefficient FROM "{OHLCV.name}" WHERE date = ?',
            [session.date()],
        ).df()
        account = self._state()
        append_ledger(self.con, corporate_entries(session, self.account, account, bars), SIM_LEDGER)
        due = self._orders(status=ACCEPTED, before=session)
        if due.empty:
            return
        account = self._state()
        opens = bars.set_index("symbol")["open"]
        entries, rows = [], sorted(due.to_dict("records"), key=lambda r: (r["side"] == BUY, r["symbol"]))
        for row in rows:
            entries += self._fill(row, session, account, opens)
        # The fills and the orders' new states: the ledger first, so a crash in between leaves
        # orders that fill again with the same entry ids (appended once).
        append_ledger(self.con, entries, SIM_LEDGER)
        self._put(*rows)

    def _fill(self, row: dict, session, account: Account, opens: pd.Series) -> list[dict]:
        if shift_sessions(row["submitted_for"], 1) != session:  # its open has passed unseen
            row.update(status=EXPIRED, reason=f"not filled: the venue was not synced at {session.date()}'s open")
            return []
        open_ = float(opens.get(row["symbol"], np.nan))
        if not np.isfinite(open_) or open_ <= 0:
            row.update(status=EXPIRED, reason=f"no open for {row['symbol']} on {session.date()}")
            return []
        buy = row["side"] == BUY
        price = open_ * (1 + self.slippage_bps / BPS) if buy else open_ * (1 - self.slippage_bps / BPS)
        qty = row["qty"] * float(self.partial_fills.get(row["symbol"], 1.0))
        if buy:
            qty = min(qty, max(account.cash, 0.0) / price)
        if not self.fractional:
            qty = math.floor(qty + 1e-9)
        if qty <= 0:
            row.update(status=EXPIRED, reason="not filled: no cash left for it at the open" if buy else "not filled")
            return []
        status = FILLED if qty >= row["qty"] - 1e-9 else EXPIRED
        row.update(status=status, filled_qty=qty, filled_avg_price=price)
        if status != FILLED:
            row["reason"] = f"filled {qty:g} of {row['qty']:g} at the open; the rest expired"
        e = fill_entry(session, self.account, row["client_order_id"], row["symbol"], row["side"], qty, qty, price, 0.0)
        account.cash += e["cash_delta"]
        account.shares[row["symbol"]] = account.shares.get(row["symbol"], 0.0) + e["qty"]
        return [e]


def status_events(previous_filled: float, order: BrokerOrder) -> list[str]:
    """Events to record when the broker reports ``order`` and the ledger had ``previous_filled``:
    a partial fill before a final status that is not "filled"."""
    out = []
    if order.filled_qty > previous_filled and order.status != FILLED:
        out.append(PARTIALLY_FILLED)
    out.append(order.status)
    return out
