"""Alpha Vantage replies: an HTTP status and a body in, a payload or a typed refusal out, then bars.

``decode_reply`` reads the status and the JSON body (a key given twice is refused, not settled by
``json``'s last-one-wins) and turns the service's ``Error Message`` / ``Note`` / ``Information``
texts into the typed errors of ``alphavantage_errors``; ``parse_series`` checks that the series is
the requested ticker's and hands its rows, numbers as the text that was sent, to the strict source
rules. No I/O here: the provider passes what its transport received.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pandas as pd

from quantlab_assets.data_curator.core.alphavantage_errors import (
    AlphaVantageDailyQuotaExceeded,
    AlphaVantageError,
    AlphaVantageInvalidApiKey,
    AlphaVantageInvalidRequest,
    AlphaVantageMalformedResponse,
    AlphaVantagePremiumRequired,
    AlphaVantageThrottled,
    AlphaVantageTransientError,
    redact,
)
from quantlab_assets.data_curator.core.providers import Rejection, refuse
from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS
from quantlab_assets.data_curator.core.source_rules import strict_bars

# Row keys per function, mapped to PROVIDER_COLUMNS names.
ROW_FIELDS = {
    "TIME_SERIES_DAILY": {
        "1. open": "open",
        "2. high": "high",
        "3. low": "low",
        "4. close": "close",
        "5. volume": "volume",
    },
    "TIME_SERIES_DAILY_ADJUSTED": {
        "1. open": "open",
        "2. high": "high",
        "3. low": "low",
        "4. close": "close",
        "5. adjusted close": "adj_close",
        "6. volume": "volume",
        "7. dividend amount": "dividend",
        "8. split coefficient": "split_coefficient",
    },
}

# Wording of the bad-key and demo-key refusals.
BAD_KEY = re.compile(r"apikey is invalid|invalid api ?key|claim your free api key", re.I)

# Ordered rules for ``Note`` / ``Information`` texts. Order matters because the real
# messages mix vocabulary: the per-second burst notice also quotes "25 requests per
# day" and "premium endpoints", the daily-quota notice says "rate limit" and
# "premium plans", and the outputsize=full refusal names "TIME_SERIES_DAILY".
NOTICE_RULES: tuple[tuple[re.Pattern[str], type[AlphaVantageError]], ...] = (
    (re.compile(r"\bis a premium (endpoint|feature)|premium[- ]only", re.I), AlphaVantagePremiumRequired),
    (
        re.compile(r"spreading out|sparingly|burst|per second|per minute|call frequency", re.I),
        AlphaVantageThrottled,
    ),
    (re.compile(r"per day|daily (rate )?limit|\b25 requests", re.I), AlphaVantageDailyQuotaExceeded),
    (re.compile(r"rate limit|frequency|too many requests", re.I), AlphaVantageThrottled),
    (BAD_KEY, AlphaVantageInvalidApiKey),
    (re.compile(r"premium", re.I), AlphaVantagePremiumRequired),
)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a key given twice is an error (json keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def classify_notice(text: str) -> type[AlphaVantageError]:
    """The error a ``Note`` / ``Information`` text stands for (``NOTICE_RULES``, first match)."""
    for pattern, error in NOTICE_RULES:
        if pattern.search(text):
            return error
    # An unrecognised notice is still a refusal; retrying blindly could burn quota.
    return AlphaVantageInvalidRequest


def series_key(payload: dict[str, Any]) -> str | None:
    """The payload's ``Time Series ...`` key, or None."""
    return next((k for k in payload if k.startswith("Time Series")), None)


def decode_reply(symbol: str, status: int, content: bytes, origin: str, api_key: str) -> dict[str, Any]:
    """The JSON object of a reply, or the typed error its status or body stands for (messages redacted)."""
    if status == 429:
        raise AlphaVantageThrottled(f"Alpha Vantage {symbol!r}: HTTP 429 Too Many Requests")
    if status >= 500:
        raise AlphaVantageTransientError(f"Alpha Vantage {symbol!r}: HTTP {status} server error")
    if status >= 400:
        raise AlphaVantageInvalidRequest(f"Alpha Vantage {symbol!r}: HTTP {status} rejected the request")
    try:
        payload = json.loads(content, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as dup:
        raise refuse(
            symbol,
            origin,
            [
                Rejection(
                    symbol,
                    origin,
                    f"JSON key {dup.key!r} appears twice (the reply is ambiguous)",
                    "duplicates",
                    column="key",
                    value=redact(dup.key, api_key),
                )
            ],
        ) from None
    except ValueError:
        snippet = redact(content[:80].decode("utf-8", "replace"), api_key)
        raise AlphaVantageMalformedResponse(
            f"Alpha Vantage {symbol!r}: response is not JSON (starts {snippet!r})"
        ) from None
    if not isinstance(payload, dict):
        raise AlphaVantageMalformedResponse(
            f"Alpha Vantage {symbol!r}: expected a JSON object, got {type(payload).__name__}"
        )
    if "Error Message" in payload:
        text = redact(str(payload["Error Message"]), api_key)
        if BAD_KEY.search(text):
            raise AlphaVantageInvalidApiKey(f"Alpha Vantage rejected the API key (request for {symbol!r}): {text}")
        raise AlphaVantageInvalidRequest(f"Alpha Vantage rejected {symbol!r} (unknown symbol or invalid call): {text}")
    for key in ("Note", "Information"):
        if key in payload and not series_key(payload):
            text = redact(str(payload[key]), api_key)
            raise classify_notice(text)(f"Alpha Vantage {symbol!r}: {text}")
    return payload


def parse_series(
    symbol: str,
    payload: dict[str, Any],
    function: str,
    origin: str,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """The bars of a decoded reply (``PROVIDER_COLUMNS``, sorted by date) through the strict source
    rules; refused when the reply's ``Meta Data`` names another ticker."""
    key = series_key(payload)
    if key is None:
        raise AlphaVantageMalformedResponse(
            f"Alpha Vantage {symbol!r}: no time series in response (keys: {sorted(payload)[:5]})"
        )
    meta = payload.get("Meta Data")
    said = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(said, str) or said.strip().upper() != symbol.upper():
        raise refuse(
            symbol,
            origin,
            [
                Rejection(
                    symbol,
                    origin,
                    f"the reply's Meta Data symbol is {said!r}, not {symbol!r}: another ticker's series",
                    column="Meta Data / 2. Symbol",
                    value=None if said is None else str(said),
                )
            ],
        )
    series = payload[key]
    if not isinstance(series, dict):
        raise AlphaVantageMalformedResponse(f"Alpha Vantage {symbol!r}: {key!r} is not an object")
    fields = ROW_FIELDS[function]
    records = []
    for day, row in series.items():
        if not isinstance(row, dict):
            raise AlphaVantageMalformedResponse(f"Alpha Vantage {symbol!r} {day}: row is not an object")
        missing = [f for f in fields if f not in row]
        if missing:
            raise AlphaVantageMalformedResponse(f"Alpha Vantage {symbol!r} {day}: row lacks field {missing[0]!r}")
        # Numbers as text, so the strict rules see what was sent ("1,234.5" is not 1234.5).
        records.append(
            {
                "date": day,
                **{
                    target: row[source] if isinstance(row[source], str) else json.dumps(row[source])
                    for source, target in fields.items()
                },
            }
        )
    raw = pd.DataFrame.from_records(records, columns=["date", *fields.values()])
    frame = strict_bars(raw, symbol, origin, start, end)
    if "adj_close" not in frame:
        frame["adj_close"] = frame["close"]
        frame["dividend"] = 0.0
        frame["split_coefficient"] = 1.0
    return frame[list(PROVIDER_COLUMNS)].sort_values("date", kind="stable").reset_index(drop=True)
