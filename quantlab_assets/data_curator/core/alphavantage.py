"""Alpha Vantage daily bars over HTTP, with the service's quirks handled explicitly.

Alpha Vantage answers almost every failure with HTTP 200 and a JSON body whose
single key (``Error Message``, ``Note`` or ``Information``) carries free text.
This module turns those bodies, plus ordinary network failures, into typed
:class:`ProviderError` subclasses, retries what is transient, and stops a batch
cleanly when retrying cannot help (daily quota, premium-only call, bad key).

The API key travels only in the query string of outgoing requests. It is
redacted from every message this module builds, and from urllib3's debug log
lines (which print request URLs), so it never reaches logs or run metadata.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd
import requests
from urllib3 import exceptions as urllib3_errors

from quantlab_assets.data_curator.core.providers import (
    FetchResult,
    InputRefused,
    ProviderError,
    Rejection,
    SymbolFailure,
    empty_bars,
    normalize_bars,
    refuse,
)
from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS
from quantlab_assets.data_curator.core.source_rules import strict_bars

logger = logging.getLogger(__name__)

FUNCTIONS = ("TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED")
OUTPUTSIZES = ("auto", "compact", "full")
# "compact" holds the latest 100 sessions; 140 calendar days stays safely inside that.
COMPACT_WINDOW_DAYS = 140
MAX_REPLY_BYTES = 64 * 1024**2
"""A reply (decoded) above this is refused: a full daily history is a few MB."""

# Row keys per function, mapped to PROVIDER_COLUMNS names.
_ROW_FIELDS = {
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


class AlphaVantageError(ProviderError):
    """Base class for every Alpha Vantage failure; messages never contain the API key."""


class AlphaVantageInvalidRequest(AlphaVantageError):
    """The service rejected this call (unknown symbol, bad parameters, HTTP 4xx). Not retried."""


class AlphaVantageInvalidApiKey(AlphaVantageInvalidRequest):
    """The key is missing, invalid or the public demo key; every further call would fail too."""


class AlphaVantageThrottled(AlphaVantageError):
    """Too many requests in a short window (per second / per minute, or HTTP 429). Retried."""


class AlphaVantageDailyQuotaExceeded(AlphaVantageError):
    """The key's daily request allowance is used up; nothing succeeds until it resets."""


class AlphaVantagePremiumRequired(AlphaVantageError):
    """The endpoint or parameter (for example ``outputsize=full``) needs a premium plan."""


class AlphaVantageMalformedResponse(AlphaVantageError):
    """The body is not the JSON shape Alpha Vantage documents. Not retried."""


class AlphaVantageTransientError(AlphaVantageError):
    """Timeout, dropped connection, truncated body or HTTP 5xx. Retried."""


class AlphaVantageKeptThrottling(AlphaVantageError):
    """Throttled replies kept coming for the whole allowed time: the run stops and keeps what it has."""


class IngestBudgetExhausted(AlphaVantageError):
    """The ingest's time budget is used up; the run stops and keeps what it has."""


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


# Only these clear up by waiting; everything else is final for the symbol.
_RETRYABLE = (AlphaVantageThrottled, AlphaVantageTransientError)

# Wording of the bad-key and demo-key refusals.
_BAD_KEY = re.compile(r"apikey is invalid|invalid api ?key|claim your free api key", re.I)

# Ordered rules for ``Note`` / ``Information`` texts. Order matters because the real
# messages mix vocabulary: the per-second burst notice also quotes "25 requests per
# day" and "premium endpoints", the daily-quota notice says "rate limit" and
# "premium plans", and the outputsize=full refusal names "TIME_SERIES_DAILY".
_NOTICE_RULES: tuple[tuple[re.Pattern[str], type[AlphaVantageError]], ...] = (
    (re.compile(r"\bis a premium (endpoint|feature)|premium[- ]only", re.I), AlphaVantagePremiumRequired),
    (
        re.compile(r"spreading out|sparingly|burst|per second|per minute|call frequency", re.I),
        AlphaVantageThrottled,
    ),
    (re.compile(r"per day|daily (rate )?limit|\b25 requests", re.I), AlphaVantageDailyQuotaExceeded),
    (re.compile(r"rate limit|frequency|too many requests", re.I), AlphaVantageThrottled),
    (_BAD_KEY, AlphaVantageInvalidApiKey),
    (re.compile(r"premium", re.I), AlphaVantagePremiumRequired),
)
_APIKEY_PARAM = re.compile(r"(apikey=)[^&\s'\"()]*", re.I)


class _RedactApiKeyFilter(logging.Filter):
    """Masks ``apikey=...`` in urllib3 debug lines, which print each request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = _APIKEY_PARAM.sub(r"\1***", message), None
        return True


def _install_urllib3_redaction() -> None:
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactApiKeyFilter) for f in pool_logger.filters):
        pool_logger.addFilter(_RedactApiKeyFilter())


def _classify_notice(text: str) -> type[AlphaVantageError]:
    for pattern, error in _NOTICE_RULES:
        if pattern.search(text):
            return error
    # An unrecognised notice is still a refusal; retrying blindly could burn quota.
    return AlphaVantageInvalidRequest


class AlphaVantageProvider:
    """Daily bars from Alpha Vantage, one HTTP call per symbol.

    Parameters
    ----------
    api_key : str
        Alpha Vantage key; sent only as the ``apikey`` query parameter.
    base_url : str
        Query endpoint; point it at a local server in tests.
    function : str
        ``"TIME_SERIES_DAILY"`` (free; adj_close = close, no dividends or splits) or
        ``"TIME_SERIES_DAILY_ADJUSTED"`` (premium; adjusted close, dividend, split).
    outputsize : str
        ``"compact"`` (latest 100 sessions), ``"full"`` (whole history; premium for
        free keys on ``TIME_SERIES_DAILY`` since 2024) or ``"auto"`` (compact when the
        requested start is within 140 calendar days of today, else full).
    requests_per_minute : float or None
        Client-side limit, enforced as a minimum interval between request starts
        (retries included). 0 or None disables it.
    max_retries : int
        Retries after the first attempt for transient failures (timeouts, dropped
        connections, HTTP 5xx), per symbol.
    backoff_base_s, backoff_max_s : float
        Wait ``n`` (0-based) lasts ``min(backoff_max_s, backoff_base_s * 2**n)`` plus
        uniform jitter in ``[0, backoff_base_s)``. For throttling, ``n`` counts the run's
        consecutive throttled replies across symbols (one shared backoff).
    timeout_s : float
        Connect timeout and longest silence while reading.
    request_deadline_s : float
        Total time one request may take, body included: a reply dripping a byte a second
        fails at this deadline (a read timeout alone would let it run for ever).
    throttle_give_up_s : float
        Throttled replies for this long without a success stop the run; the symbols fetched
        so far are kept ("Alpha Vantage kept throttling for N s; fetched K of M symbols").
    ingest_budget_s : float or None
        Time budget of one ``fetch`` call (waits included); 0 or None: no budget.
    session : requests.Session, optional
        Reused for connection pooling; a new one is created if omitted.
    sleep : callable
        Used for every wait (rate limit and backoff); inject a fake in tests.
    rng : random.Random, optional
        Source of backoff jitter.
    today : datetime.date, optional
        Reference date for ``outputsize="auto"``; defaults to ``date.today()``.
    clock : callable
        Monotonic seconds, for rate limiting, backoff budgets and latency; pair with a fake
        ``sleep``. The per-request deadline always uses the real clock (it bounds real I/O).
    """

    name = "alphavantage"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://www.alphavantage.co/query",
        function: str = "TIME_SERIES_DAILY",
        outputsize: str = "auto",
        requests_per_minute: float | None = 5.0,
        max_retries: int = 5,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 60.0,
        timeout_s: float = 30.0,
        request_deadline_s: float = 60.0,
        throttle_give_up_s: float = 300.0,
        ingest_budget_s: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        today: date | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required (set ALPHAVANTAGE_API_KEY)")
        if function not in FUNCTIONS:
            raise ValueError(f"function={function!r} is not supported; valid: {', '.join(FUNCTIONS)}")
        if outputsize not in OUTPUTSIZES:
            raise ValueError(f"outputsize={outputsize!r} is not supported; valid: {', '.join(OUTPUTSIZES)}")
        if requests_per_minute is not None and requests_per_minute < 0:
            raise ValueError("requests_per_minute must be >= 0 (0 or None disables the limit)")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name, value in (
            ("timeout_s", timeout_s),
            ("request_deadline_s", request_deadline_s),
            ("throttle_give_up_s", throttle_give_up_s),
        ):
            if not 0 < value < math.inf:  # finite: every wait is bounded (NaN fails too)
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if ingest_budget_s is not None and ingest_budget_s < 0:
            raise ValueError("ingest_budget_s must be >= 0 (0 or None: no budget)")
        self._api_key = api_key
        self.base_url = base_url
        self.function = function
        self.outputsize = outputsize
        self.requests_per_minute = requests_per_minute
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.request_deadline_s = request_deadline_s
        self.throttle_give_up_s = throttle_give_up_s
        self.ingest_budget_s = ingest_budget_s or None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._today = today
        self._clock = clock
        self._min_interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._last_request_at: float | None = None
        # Shared by every symbol of a run: one throttle streak, one budget.
        self._throttled_since: float | None = None
        self._throttle_streak = 0
        self._budget_ends_at: float | None = None
        _install_urllib3_redaction()

    def __repr__(self) -> str:
        return (
            f"AlphaVantageProvider(base_url={self.base_url!r}, function={self.function!r}, "
            f"outputsize={self.outputsize!r}, requests_per_minute={self.requests_per_minute!r}, "
            f"max_retries={self.max_retries!r}, api_key='***')"
        )

    # -- public API -------------------------------------------------------------------

    def fetch(self, symbols: Sequence[str], start: date, end: date) -> FetchResult:
        """Daily bars for ``symbols`` with session dates in [start, end].

        Parameters
        ----------
        symbols : sequence of str
            Tickers, fetched in order (duplicates are fetched once).
        start, end : datetime.date
            Inclusive session range; also drives ``outputsize="auto"``.

        Returns
        -------
        FetchResult
            Bars for the symbols that succeeded; one failure per symbol that did not.
            A rejected symbol does not stop the batch. An exhausted daily quota, a
            premium-only call, a bad key, throttling beyond ``throttle_give_up_s`` or the
            ingest budget does: the current and all remaining symbols fail with the same
            reason and ``stopped_reason`` says why.
        """
        ordered = list(dict.fromkeys(symbols))
        outputsize = self._resolve_outputsize(start)
        frames: list[pd.DataFrame] = []
        failures: list[SymbolFailure] = []
        stats: dict[str, dict[str, float]] = {}
        origins: dict[str, str] = {}
        stopped_reason: str | None = None
        self._throttled_since, self._throttle_streak = None, 0
        self._budget_ends_at = self._clock() + self.ingest_budget_s if self.ingest_budget_s else None
        for position, symbol in enumerate(ordered):
            stats[symbol] = _zero_stats()
            origins[symbol] = self._origin(symbol)
            try:
                frames.append(self._fetch_symbol(symbol, outputsize, stats[symbol], start, end))
            except AlphaVantageDailyQuotaExceeded as exc:
                remaining = ordered[position:]
                reason = f"daily quota exhausted; {len(remaining)} symbols remain ({exc})"
                stopped_reason = (
                    f"Alpha Vantage daily quota exhausted at {symbol!r}; {len(remaining)} symbols remain unfetched"
                )
                failures.extend(SymbolFailure(other, reason) for other in remaining)
            except (AlphaVantageKeptThrottling, IngestBudgetExhausted) as exc:
                remaining = ordered[position:]
                stopped_reason = f"{exc}; fetched {len(frames)} of {len(ordered)} symbols; kept them"
                failures.extend(SymbolFailure(other, stopped_reason) for other in remaining)
            except (AlphaVantagePremiumRequired, AlphaVantageInvalidApiKey) as exc:
                remaining = ordered[position:]
                stopped_reason = (
                    f"stopped at {symbol!r} with {len(remaining)} symbols remaining, "
                    f"every further call would fail: {exc}"
                )
                failures.append(SymbolFailure(symbol, str(exc)))
                failures.extend(SymbolFailure(other, f"not requested: {exc}") for other in remaining[1:])
            except InputRefused as exc:
                failures.append(SymbolFailure(symbol, str(exc), exc.rejections))
            except AlphaVantageError as exc:
                failures.append(SymbolFailure(symbol, str(exc)))
            if stopped_reason:
                # Unrequested symbols still get a (zero) stats row so the ingest log covers them.
                for skipped in ordered[position + 1 :]:
                    stats[skipped] = _zero_stats()
                logger.warning("%s", stopped_reason)
                break
        bars = normalize_bars(pd.concat(frames, ignore_index=True), start, end) if frames else empty_bars()
        return FetchResult(bars=bars, failures=failures, stats=stats, stopped_reason=stopped_reason, origins=origins)

    def fetch_symbol(self, symbol: str, outputsize: str | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
        """The whole series the service returns for one symbol, with retries.

        Parameters
        ----------
        symbol : str
            Ticker as Alpha Vantage knows it.
        outputsize : str, optional
            ``"compact"`` or ``"full"``; defaults to the configured value, where
            ``"auto"`` means ``"full"`` because no start date is known here.

        Returns
        -------
        (pandas.DataFrame, dict)
            Bars in ``PROVIDER_COLUMNS`` order sorted by date (not range-filtered),
            and ``{"api_calls", "retries", "latency_s"}`` for this symbol.

        Raises
        ------
        AlphaVantageError or InputRefused
            Naming the symbol and the cause; never contains the API key.
        """
        size = outputsize or self.outputsize
        if size == "auto":
            size = "full"
        if size not in ("compact", "full"):
            raise ValueError(f"outputsize={size!r} is not supported; valid: compact, full")
        stats = _zero_stats()
        self._throttled_since, self._throttle_streak, self._budget_ends_at = None, 0, None
        return self._fetch_symbol(symbol, size, stats), stats

    # -- internals --------------------------------------------------------------------

    def _origin(self, symbol: str) -> str:
        return f"Alpha Vantage {self.function} reply for {symbol}"

    def _resolve_outputsize(self, start: date) -> str:
        if self.outputsize != "auto":
            return self.outputsize
        today = self._today or date.today()
        return "compact" if (today - start).days <= COMPACT_WINDOW_DAYS else "full"

    def _fetch_symbol(
        self, symbol: str, outputsize: str, stats: dict[str, float], start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        started = self._clock()
        try:
            payload = self._request_with_retries(symbol, outputsize, stats)
            return self._parse(symbol, payload, start, end)
        finally:
            stats["latency_s"] = self._clock() - started

    def _budget_left(self) -> float:
        return float("inf") if self._budget_ends_at is None else self._budget_ends_at - self._clock()

    def _wait(self, seconds: float, why: str) -> None:
        """Every wait goes through here: none may outlast the ingest budget."""
        if seconds <= 0:
            return
        if seconds > self._budget_left():
            raise IngestBudgetExhausted(
                f"the ingest time budget of {self.ingest_budget_s:.0f} s would be exceeded by a "
                f"{seconds:.1f} s wait ({why})"
            )
        self._sleep(seconds)

    def _request_with_retries(self, symbol: str, outputsize: str, stats: dict[str, float]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                payload = self._request_once(symbol, outputsize, stats)
            except AlphaVantageThrottled as exc:
                now = self._clock()
                if self._throttled_since is None:
                    self._throttled_since = now
                throttled_for = now - self._throttled_since
                if throttled_for >= self.throttle_give_up_s:
                    raise AlphaVantageKeptThrottling(
                        f"Alpha Vantage kept throttling for {throttled_for:.0f} s"
                    ) from None
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**self._throttle_streak)
                delay += self._rng.uniform(0.0, self.backoff_base_s)
                # The last wait ends at the give-up time, then one more try decides.
                delay = min(delay, self.throttle_give_up_s - throttled_for)
                self._throttle_streak += 1
                logger.warning(
                    "%s; throttled for %.0f s of %.0f, retry in %.2fs",
                    exc,
                    throttled_for,
                    self.throttle_give_up_s,
                    delay,
                )
                self._wait(delay, "throttling backoff")
                stats["retries"] += 1
                continue
            except AlphaVantageTransientError as exc:
                if attempt >= self.max_retries:
                    attempts = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise type(exc)(f"{exc}; gave up after {attempts}") from None
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
                delay += self._rng.uniform(0.0, self.backoff_base_s)
                logger.warning("%s; retry %d/%d in %.2fs", exc, attempt + 1, self.max_retries, delay)
                self._wait(delay, "retry backoff")
                attempt += 1
                stats["retries"] += 1
                continue
            self._throttled_since, self._throttle_streak = None, 0
            return payload

    def _wait_for_rate_limit(self) -> None:
        if self._min_interval_s and self._last_request_at is not None:
            self._wait(self._last_request_at + self._min_interval_s - self._clock(), "rate limit")
        self._last_request_at = self._clock()

    def _read_body(self, symbol: str, response: requests.Response, deadline: float) -> bytes:
        """The body, read in pieces against the request's total deadline."""
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        chunks: list[bytes] = []
        received = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AlphaVantageTransientError(
                    f"Alpha Vantage {symbol!r}: reply not complete within the "
                    f"{self.request_deadline_s:g} s request deadline "
                    f"({sum(map(len, chunks))} bytes received)"
                )
            if sock is not None:  # a silent server cannot hold one read past the deadline
                sock.settimeout(min(self.timeout_s, remaining))
            chunk = response.raw.read1(65536, decode_content=True)  # gzip as requests would
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            received += len(chunk)
            if received > MAX_REPLY_BYTES:
                raise AlphaVantageError(
                    f"Alpha Vantage {symbol!r}: reply larger than {MAX_REPLY_BYTES:,} bytes "
                    f"({received:,} received); refused, not retried"
                )

    def _request_once(self, symbol: str, outputsize: str, stats: dict[str, float]) -> dict[str, Any]:
        params = {
            "function": self.function,
            "symbol": symbol,
            "outputsize": outputsize,
            "datatype": "json",
            "apikey": self._api_key,
        }
        self._wait_for_rate_limit()
        limit = min(self.request_deadline_s, self._budget_left())
        if limit <= 0:
            raise IngestBudgetExhausted(f"the ingest time budget of {self.ingest_budget_s:.0f} s is used up")
        deadline = time.monotonic() + limit
        per_read = min(self.timeout_s, limit)
        stats["api_calls"] += 1
        # requests' exception texts embed the full URL (and so the key): build our own
        # message from the exception type plus redacted detail, and raise it outside the
        # except block so the original is not chained onto ours.
        error: AlphaVantageError | None = None
        body = b""
        try:
            response = self._session.get(self.base_url, params=params, timeout=(per_read, per_read), stream=True)
            try:
                body = self._read_body(symbol, response, deadline)
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
                f"Alpha Vantage {symbol!r}: connection failed ({type(exc).__name__}: {self._redact(str(exc))})"
            )
        except requests.RequestException as exc:
            error = AlphaVantageError(
                f"Alpha Vantage {symbol!r}: request could not be sent ({type(exc).__name__}: {self._redact(str(exc))})"
            )
        except (OSError, urllib3_errors.HTTPError) as exc:  # raised by the raw reads
            error = (
                AlphaVantageTransientError(f"Alpha Vantage {symbol!r}: timed out after {per_read:g}s while reading")
                if isinstance(exc, (TimeoutError, urllib3_errors.ReadTimeoutError))
                else AlphaVantageTransientError(
                    f"Alpha Vantage {symbol!r}: connection failed ({type(exc).__name__}: {self._redact(str(exc))})"
                )
            )
        if error is not None:
            if isinstance(error, AlphaVantageTransientError) and self._budget_left() <= 0:
                raise IngestBudgetExhausted(
                    f"the ingest time budget of {self.ingest_budget_s:.0f} s is used up"
                ) from None
            raise error
        return self._decode(symbol, response.status_code, body)

    def _decode(self, symbol: str, status: int, content: bytes) -> dict[str, Any]:
        if status == 429:
            raise AlphaVantageThrottled(f"Alpha Vantage {symbol!r}: HTTP 429 Too Many Requests")
        if status >= 500:
            raise AlphaVantageTransientError(f"Alpha Vantage {symbol!r}: HTTP {status} server error")
        if status >= 400:
            raise AlphaVantageInvalidRequest(f"Alpha Vantage {symbol!r}: HTTP {status} rejected the request")
        try:
            payload = json.loads(content, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as dup:
            origin = self._origin(symbol)
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
                        value=self._redact(dup.key),
                    )
                ],
            ) from None
        except ValueError:
            snippet = self._redact(content[:80].decode("utf-8", "replace"))
            raise AlphaVantageMalformedResponse(
                f"Alpha Vantage {symbol!r}: response is not JSON (starts {snippet!r})"
            ) from None
        if not isinstance(payload, dict):
            raise AlphaVantageMalformedResponse(
                f"Alpha Vantage {symbol!r}: expected a JSON object, got {type(payload).__name__}"
            )
        if "Error Message" in payload:
            text = self._redact(str(payload["Error Message"]))
            if _BAD_KEY.search(text):
                raise AlphaVantageInvalidApiKey(f"Alpha Vantage rejected the API key (request for {symbol!r}): {text}")
            raise AlphaVantageInvalidRequest(
                f"Alpha Vantage rejected {symbol!r} (unknown symbol or invalid call): {text}"
            )
        for key in ("Note", "Information"):
            if key in payload and not _series_key(payload):
                text = self._redact(str(payload[key]))
                raise _classify_notice(text)(f"Alpha Vantage {symbol!r}: {text}")
        return payload

    def _parse(
        self, symbol: str, payload: dict[str, Any], start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        key = _series_key(payload)
        if key is None:
            raise AlphaVantageMalformedResponse(
                f"Alpha Vantage {symbol!r}: no time series in response (keys: {sorted(payload)[:5]})"
            )
        origin = self._origin(symbol)
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
        fields = _ROW_FIELDS[self.function]
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

    def _redact(self, text: str) -> str:
        for form in {self._api_key, quote_plus(self._api_key), quote(self._api_key, safe="")}:
            text = text.replace(form, "***")
        return _APIKEY_PARAM.sub(r"\1***", text)


def _series_key(payload: dict[str, Any]) -> str | None:
    return next((k for k in payload if k.startswith("Time Series")), None)


def _zero_stats() -> dict[str, float]:
    return {"api_calls": 0, "retries": 0, "latency_s": 0.0}
