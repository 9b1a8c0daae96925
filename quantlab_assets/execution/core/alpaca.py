"""The Alpaca paper-trading adapter over its REST API (``/v2/orders``, ``/v2/positions``, ``/v2/account``).

Transport: every request has a timeout; HTTP 429, 5xx, a timeout or a dropped connection is
retried at most ``max_retries`` times, waiting ``Retry-After`` when the server sends it (capped at
``max_wait_s``), else ``backoff_s * 2**attempt`` (same cap); then :class:`BrokerError` names the
path and the last status. A POST retried after a timeout cannot create a second order: the client
order id makes the repeat a 422 "client_order_id must be unique", answered by looking the order up.

Order rules (Alpaca's): a whole-share order is sent as a market-on-open order
(``time_in_force=opg``), accepted only in its submission window, 19:00 to 09:28 New York time;
outside it the adapter refuses before sending (:class:`OrderWindowError`, naming the window and
the time). A fractional quantity is allowed only as ``market``/``day`` (Alpaca queues a day order
sent after the close for the next session's open).

Keys come from the caller (``common.settings`` reads them from the environment at run time); they
are sent as headers and never appear in a message, a log line or the warehouse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

import requests

from quantlab_assets.execution.core.broker import BrokerError, BrokerOrder, DuplicateClientOrderId, OrderWindowError
from quantlab_assets.execution.core.orders import Order
from quantlab_assets.execution.core.schema import (
    ACCEPTED,
    CANCELED,
    EXPIRED,
    FILLED,
    PARTIALLY_FILLED,
    REJECTED,
    UNKNOWN,
)

NEW_YORK = ZoneInfo("America/New_York")
OPG_WINDOW = (dtime(19, 0), dtime(9, 28))  # from 19:00 to 09:28 the next morning
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Alpaca's order statuses in Quant Lab's event words; anything else is "unknown" (recorded, asked again).
STATUS_MAP = {
    "new": ACCEPTED,
    "accepted": ACCEPTED,
    "pending_new": ACCEPTED,
    "accepted_for_bidding": ACCEPTED,
    "calculated": ACCEPTED,
    "done_for_day": ACCEPTED,
    "held": ACCEPTED,
    "partially_filled": PARTIALLY_FILLED,
    "filled": FILLED,
    "canceled": CANCELED,
    "pending_cancel": ACCEPTED,
    "expired": EXPIRED,
    "rejected": REJECTED,
}


def in_opg_window(now: datetime) -> bool:
    """Whether ``now`` (timezone-aware) is inside the market-on-open submission window."""
    local = now.astimezone(NEW_YORK).time()
    start, end = OPG_WINDOW
    return local >= start or local <= end


def _float(value) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def parse_order(body: dict) -> BrokerOrder:
    """An Alpaca order object as a :class:`BrokerOrder` (quantities arrive as strings)."""
    try:
        return BrokerOrder(
            client_order_id=str(body["client_order_id"]),
            broker_order_id=str(body["id"]),
            symbol=str(body["symbol"]),
            side=str(body["side"]),
            qty=float(body.get("qty") or 0.0),
            status=STATUS_MAP.get(str(body.get("status")), UNKNOWN),
            filled_qty=float(body.get("filled_qty") or 0.0),
            filled_avg_price=_float(body.get("filled_avg_price")),
            reason=None if body.get("status") in STATUS_MAP else f"Alpaca status {body.get('status')!r}",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BrokerError(f"Alpaca answered an order without a usable {exc}: {sorted(body)[:8]}") from None


@dataclass
class AlpacaBroker:
    base_url: str
    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    timeout_s: float = 10.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 10.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(NEW_YORK), repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    name: str = "alpaca"

    def __post_init__(self):
        if not self.key_id or not self.secret_key:
            raise BrokerError(
                "broker 'alpaca' needs APCA_API_KEY_ID and APCA_API_SECRET_KEY in the environment (Alpaca paper keys)"
            )
        self._session = requests.Session()
        self._session.headers.update({"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key})

    # -- transport
    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = self.base_url.rstrip("/") + path
        last = "no answer"
        for attempt in range(self.max_retries + 1):
            try:
                response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = f"{type(exc).__name__}"
                wait = self.backoff_s * 2**attempt
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                last = f"HTTP {response.status_code}"
                wait = self._retry_after(response, attempt)
            if attempt < self.max_retries:
                self.sleep(min(wait, self.max_wait_s))
        raise BrokerError(f"Alpaca {method} {path}: {last} after {self.max_retries + 1} attempts")

    def _retry_after(self, response: requests.Response, attempt: int) -> float:
        try:
            value = float(response.headers.get("Retry-After", ""))
        except ValueError:
            value = math.nan
        return value if math.isfinite(value) and value >= 0 else self.backoff_s * 2**attempt

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            body = response.json()
            return str(body.get("message", body)) if isinstance(body, dict) else str(body)
        except ValueError:
            return response.text[:200]

    def _json(self, response: requests.Response, what: str):
        if response.status_code >= 400:
            raise BrokerError(f"Alpaca {what}: HTTP {response.status_code}: {self._message(response)}")
        try:
            return response.json()
        except ValueError:
            raise BrokerError(f"Alpaca {what}: the answer is not JSON ({response.text[:80]!r})") from None

    # -- the interface
    def sync(self, session) -> None:
        """Alpaca is live: there is nothing to advance."""

    def submit(self, order: Order, session) -> BrokerOrder:
        whole = order.qty == math.floor(order.qty)
        if whole and not in_opg_window(self.clock()):
            now = self.clock().astimezone(NEW_YORK)
            raise OrderWindowError(
                f"{order.client_order_id}: a market-on-open order is accepted from 19:00 to 09:28 New York time; "
                f"it is {now:%H:%M} there: run the submission inside the window"
            )
        body = {
            "symbol": order.symbol,
            "qty": f"{order.qty:.9f}".rstrip("0").rstrip("."),
            "side": order.side,
            "type": "market",
            "time_in_force": "opg" if whole else "day",
            "client_order_id": order.client_order_id,
        }
        response = self._request("POST", "/v2/orders", json=body)
        if response.status_code == 422 and "client_order_id" in self._message(response):
            raise DuplicateClientOrderId(f"{order.client_order_id}: {self._message(response)}")
        if response.status_code in (403, 422):  # refused by the broker: never an order
            return BrokerOrder(
                order.client_order_id,
                "",
                order.symbol,
                order.side,
                order.qty,
                REJECTED,
                0.0,
                None,
                f"Alpaca refused it: HTTP {response.status_code}: {self._message(response)}",
            )
        return parse_order(self._json(response, f"POST /v2/orders {order.client_order_id}"))

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        response = self._request("GET", "/v2/orders:by_client_order_id", params={"client_order_id": client_order_id})
        if response.status_code == 404:
            return None
        return parse_order(self._json(response, f"order {client_order_id}"))

    def cancel(self, client_order_id: str) -> BrokerOrder | None:
        order = self.get_order(client_order_id)
        if order is None:
            return None
        response = self._request("DELETE", f"/v2/orders/{order.broker_order_id}")
        if response.status_code not in (200, 204, 422):  # 422: no longer cancelable
            self._json(response, f"cancel {client_order_id}")
        return self.get_order(client_order_id)

    def positions(self) -> dict[str, float]:
        rows = self._json(self._request("GET", "/v2/positions"), "positions")
        if not isinstance(rows, list):
            raise BrokerError("Alpaca positions: expected a list")
        try:
            return {str(r["symbol"]): float(r["qty"]) for r in rows}
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"Alpaca positions: a position without a usable {exc}") from None

    def cash(self) -> float:
        account = self._json(self._request("GET", "/v2/account"), "account")
        try:
            return float(account["cash"])
        except (KeyError, TypeError, ValueError):
            raise BrokerError("Alpaca account: no usable 'cash'") from None
