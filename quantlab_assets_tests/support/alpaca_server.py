"""A local stand-in for Alpaca's paper trading API: a real HTTP server on 127.0.0.1 keeping orders,
positions and cash, with Alpaca's paths, payload shapes (quantities as strings), error bodies
(``{"code": ..., "message": ...}``) and failures scripted per request (429 with Retry-After, 5xx,
a reply slower than the client's timeout)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY_ID, SECRET = "PKTESTKEYID0001", "s3cr3t-never-in-a-log-0001"
DUPLICATE = {"code": 40010001, "message": "client_order_id must be unique"}
BUYING_POWER = {"code": 40310000, "message": "insufficient buying power"}


class AlpacaStandIn:
    def __init__(self, cash: float = 100_000.0, refuse: frozenset[str] = frozenset()):
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.orders: dict[str, dict] = {}  # by client order id
        self.refuse = refuse  # symbols answered 403 insufficient buying power
        self.faults: deque = deque()  # (method or None, path prefix, status or "slow", retry_after)
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body=None, headers=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                url = urlsplit(self.path)
                with stand_in.lock:
                    stand_in.requests.append((method, url.path))
                    fault = stand_in._fault(method, url.path)
                if fault is not None:
                    status, retry_after = fault
                    if status == "slow":
                        time.sleep(retry_after)
                        return self._reply(200, {})
                    return self._reply(
                        status,
                        {"message": "rate limit exceeded" if status == 429 else "internal"},
                        {"Retry-After": str(retry_after)} if retry_after is not None else None,
                    )
                if (self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")) != (KEY_ID, SECRET):
                    return self._reply(401, {"message": "request is not authorized"})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with stand_in.lock:
                    status, answer = stand_in._route(method, url.path, parse_qs(url.query), body)
                self._reply(status, answer)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _fault(self, method, path):
        if self.faults and self.faults[0][0] in (None, method) and path.startswith(self.faults[0][1]):
            _, _, status, retry_after = self.faults.popleft()
            return status, retry_after
        return None

    def posts(self) -> int:
        return sum(1 for m, p in self.requests if m == "POST")

    # -- the API
    def _route(self, method, path, query, body):
        if method == "POST" and path == "/v2/orders":
            return self._create(body)
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            order = self.orders.get(query.get("client_order_id", [""])[0])
            return (200, order) if order else (404, {"code": 40410000, "message": "order not found"})
        if method == "GET" and path == "/v2/positions":
            rows = [
                {"symbol": s, "qty": repr(q), "side": "long" if q > 0 else "short"} for s, q in self.positions.items()
            ]
            return 200, rows
        if method == "GET" and path == "/v2/account":
            return 200, {"id": "acct", "status": "ACTIVE", "currency": "USD", "cash": repr(self.cash)}
        if method == "DELETE" and path.startswith("/v2/orders/"):
            oid = path.rsplit("/", 1)[1]
            for order in self.orders.values():
                if order["id"] == oid:
                    if order["status"] in ("filled", "canceled", "expired", "rejected"):
                        return 422, {"code": 42210000, "message": "order is not cancelable"}
                    order["status"] = "canceled"
                    return 204, None
            return 404, {"message": "order not found"}
        return 404, {"message": "not found"}

    def _create(self, body):
        coid, qty = body.get("client_order_id"), float(body["qty"])
        if coid in self.orders:
            return 422, DUPLICATE
        if qty != int(qty) and (body.get("type") != "market" or body.get("time_in_force") != "day"):
            return 422, {"code": 42210000, "message": "fractional orders must be market day orders"}
        if body["symbol"] in self.refuse:
            return 403, BUYING_POWER
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": coid,
            "symbol": body["symbol"],
            "side": body["side"],
            "qty": body["qty"],
            "type": body["type"],
            "time_in_force": body["time_in_force"],
            "status": "accepted",
            "filled_qty": "0",
            "filled_avg_price": None,
        }
        self.orders[coid] = order
        return 200, order

    def fill(self, coid: str, qty: float, price: float, final: str | None = None) -> None:
        """The venue fills ``qty`` more shares of an order at ``price`` (``final``: status after)."""
        with self.lock:
            order = self.orders[coid]
            done = float(order["filled_qty"])
            avg = float(order["filled_avg_price"] or 0.0)
            total = done + qty
            order["filled_avg_price"] = repr((done * avg + qty * price) / total)
            order["filled_qty"] = repr(total)
            order["status"] = final or ("filled" if total >= float(order["qty"]) else "partially_filled")
            sign = 1 if order["side"] == "buy" else -1
            self.positions[order["symbol"]] = self.positions.get(order["symbol"], 0.0) + sign * qty
            if abs(self.positions[order["symbol"]]) < 1e-12:
                del self.positions[order["symbol"]]
            self.cash -= sign * qty * price
