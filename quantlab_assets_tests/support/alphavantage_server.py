"""A local stand-in for the Alpha Vantage service: a real HTTP server on 127.0.0.1 replaying
scripted replies per symbol, with the service's real notice texts and payload shapes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY = "TESTKEY0SECRET42"
TODAY = date(2024, 6, 20)

LEGACY_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and "
    "500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target "
    "a higher API call frequency."
)
BURST_INFO = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests more "
    "sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day), raise "
    "the per-second burst limit, and instantly unlock all premium endpoints"
)
DAILY_INFO = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please "
    "subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove "
    "all daily rate limits."
)
PREMIUM_ENDPOINT = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of the "
    "premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints"
)
PREMIUM_FULL = (
    "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium feature for "
    "the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)
INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)
BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
DEMO_KEY = (
    "The **demo** API key is for demo purposes only. Please claim your free API key at "
    "(https://www.alphavantage.co/support/#api-key) to explore our full API offerings. "
    "It takes fewer than 20 seconds."
)

Action = Callable[[BaseHTTPRequestHandler], None]


# -- scripted server ----------------------------------------------------------------------


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def reply_json(obj: object, status: int = 200) -> Action:
    body = json.dumps(obj).encode()
    return lambda h: _send(h, status, body)


def reply_raw(body: bytes, status: int = 200) -> Action:
    return lambda h: _send(h, status, body)


def after_delay(seconds: float, action: Action) -> Action:
    def run(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        action(h)

    return run


def reply_gzip(obj: object) -> Action:
    """A JSON reply compressed as the live service may send it (Content-Encoding: gzip)."""
    import gzip

    body = gzip.compress(json.dumps(obj).encode())

    def run(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return run


def drip(body: bytes, every_s: float = 1.0) -> Action:
    """A reply that promises ``body`` and sends it one byte every ``every_s`` seconds: each
    read sees data well within any read timeout, so only a total deadline ends it."""

    def run(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(len(body)):
            try:
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
            except OSError:  # the client gave up: stop dripping
                return
            time.sleep(every_s)

    return run


def truncated() -> Action:
    # Promise 10 kB, send a fragment, then the server closes the socket (HTTP/1.0).
    return lambda h: _send(h, 200, b'{"Meta Data": {"1. Information": "Daily', length=10_000)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Clients abandon timed-out and truncated exchanges on purpose; no stderr noise.
        pass


class ScriptedServer:
    """Replies to each request with the next scripted action for its ``symbol`` parameter."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Action]] = {}
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                with server._lock:
                    server.requests.append({"params": params, "at": time.monotonic()})
                    queue = server.scripts.get(params.get("symbol", ""), [])
                    action = queue.pop(0) if queue else reply_raw(b"script exhausted", 418)
                action(self)

            def log_message(self, *args) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown (and so each test's teardown) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/query"

    def script(self, symbol: str, *actions: Action) -> None:
        self.scripts[symbol] = list(actions)

    def calls(self, symbol: str) -> int:
        return sum(r["params"].get("symbol") == symbol for r in self.requests)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def daily_payload(symbol: str, rows: dict[str, tuple[str, ...]]) -> dict:
    keys = ("1. open", "2. high", "3. low", "4. close", "5. volume")
    return {
        "Meta Data": {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": max(rows),
            "4. Output Size": "Compact",
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": {day: dict(zip(keys, values)) for day, values in rows.items()},
    }


def adjusted_payload(symbol: str, rows: dict[str, tuple[str, ...]]) -> dict:
    keys = (
        "1. open",
        "2. high",
        "3. low",
        "4. close",
        "5. adjusted close",
        "6. volume",
        "7. dividend amount",
        "8. split coefficient",
    )
    payload = daily_payload(symbol, {d: v[:5] for d, v in rows.items()})
    payload["Meta Data"]["1. Information"] = "Daily Time Series with Splits and Dividend Events"
    payload["Time Series (Daily)"] = {day: dict(zip(keys, values)) for day, values in rows.items()}
    return payload


def one_day(symbol: str, close: str = "100.0") -> dict:
    return daily_payload(symbol, {"2024-06-14": ("99.0", "101.0", "98.0", close, "1000")})
