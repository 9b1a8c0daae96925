"""Alpha Vantage transport: one HTTP GET, its body read against a total deadline and a size cap.

``get_reply`` sends one request and returns the status and the body, or raises a typed error of
``alphavantage_errors``: timeouts, dropped connections and truncated or dripping bodies are
``AlphaVantageTransientError`` (the provider retries them), anything else that stops the request
is ``AlphaVantageError``. requests' and urllib3's exception texts embed the full URL, and so the
key: every message here is built from the exception type plus redacted detail, and raised outside
the ``except`` block so the original is not chained onto it. Rate limits, retries and the ingest
budget belong to the provider (``alphavantage``); decoding the body to ``alphavantage_reply``.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from urllib3 import exceptions as urllib3_errors

from quantlab_assets.data_curator.core.alphavantage_errors import (
    AlphaVantageError,
    AlphaVantageTransientError,
    redact,
)


def read_body(
    symbol: str,
    response: requests.Response,
    deadline: float,
    request_deadline_s: float,
    timeout_s: float,
    max_bytes: int,
) -> bytes:
    """The body, read in pieces against the request's total deadline (``time.monotonic``)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    chunks: list[bytes] = []
    received = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AlphaVantageTransientError(
                f"Alpha Vantage {symbol!r}: reply not complete within the "
                f"{request_deadline_s:g} s request deadline "
                f"({sum(map(len, chunks))} bytes received)"
            )
        if sock is not None:  # a silent server cannot hold one read past the deadline
            sock.settimeout(min(timeout_s, remaining))
        chunk = response.raw.read1(65536, decode_content=True)  # gzip as requests would
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        received += len(chunk)
        if received > max_bytes:
            raise AlphaVantageError(
                f"Alpha Vantage {symbol!r}: reply larger than {max_bytes:,} bytes "
                f"({received:,} received); refused, not retried"
            )


def get_reply(
    session: requests.Session,
    url: str,
    params: dict[str, Any],
    *,
    symbol: str,
    api_key: str,
    per_read: float,
    deadline: float,
    request_deadline_s: float,
    timeout_s: float,
    max_bytes: int,
) -> tuple[int, bytes]:
    """One GET of ``url`` with ``params``: (HTTP status, body), or a typed, redacted error.

    ``per_read`` bounds the connect and every silence; ``deadline`` (``time.monotonic``) the
    whole reply, body included; a body above ``max_bytes`` is refused.
    """
    error: AlphaVantageError | None = None
    body = b""
    try:
        response = session.get(url, params=params, timeout=(per_read, per_read), stream=True)
        try:
            body = read_body(symbol, response, deadline, request_deadline_s, timeout_s, max_bytes)
        finally:
            response.close()
    except AlphaVantageError as exc:
        error = exc
    except requests.Timeout as exc:
        error = AlphaVantageTransientError(
            f"Alpha Vantage {symbol!r}: timed out after {per_read:g}s ({type(exc).__name__})"
        )
    except (
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ) as exc:
        error = AlphaVantageTransientError(
            f"Alpha Vantage {symbol!r}: connection failed ({type(exc).__name__}: {redact(str(exc), api_key)})"
        )
    except requests.RequestException as exc:
        error = AlphaVantageError(
            f"Alpha Vantage {symbol!r}: request could not be sent ({type(exc).__name__}: {redact(str(exc), api_key)})"
        )
    except (OSError, urllib3_errors.HTTPError) as exc:  # raised by the raw reads
        error = (
            AlphaVantageTransientError(f"Alpha Vantage {symbol!r}: timed out after {per_read:g}s while reading")
            if isinstance(exc, (TimeoutError, urllib3_errors.ReadTimeoutError))
            else AlphaVantageTransientError(
                f"Alpha Vantage {symbol!r}: connection failed ({type(exc).__name__}: {redact(str(exc), api_key)})"
            )
        )
    if error is not None:
        raise error
    return response.status_code, body
