"""Alpha Vantage daily bars over HTTP, with the service's quirks handled explicitly.

Alpha Vantage answers almost every failure with HTTP 200 and a JSON body whose
single key (``Error Message``, ``Note`` or ``Information``) carries free text.
This module turns those bodies, plus ordinary network failures, into typed
:class:`ProviderError` subclasses, retries what is transient, and stops a batch
cleanly when retrying cannot help (daily quota, premium-only call, bad key).

The API key travels only in the query string of outgoing requests. It is
redacted from every message this module builds, and from urllib3's debug log
lines (which print request URLs), so it never reaches logs or run metadata.

This module is the provider (its options, the batch loop, rate limit, retries, backoff and
the ingest budget) and the public API of the concern; the rest lives by concern:
``alphavantage_errors`` (the typed errors and the key's redaction), ``alphavantage_http``
(one request and its bounded body), ``alphavantage_reply`` (status and body to a payload or a
typed refusal, the payload to bars).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pandas as pd
import requests

from quantlab_assets.data_curator.core.alphavantage_errors import (
    AlphaVantageDailyQuotaExceeded,
    AlphaVantageError,
    AlphaVantageInvalidApiKey,
    AlphaVantageInvalidRequest,
    AlphaVantageKeptThrottling,
    AlphaVantageMalformedResponse,
    AlphaVantagePremiumRequired,
    AlphaVantageThrottled,
    AlphaVantageTransientError,
    IngestBudgetExhausted,
    install_urllib3_redaction,
)
from quantlab_assets.data_curator.core.alphavantage_http import get_reply
from quantlab_assets.data_curator.core.alphavantage_reply import decode_reply, parse_series
from quantlab_assets.data_curator.core.providers import (
    FetchResult,
    InputRefused,
    SymbolFailure,
    empty_bars,
    normalize_bars,
)

__all__ = [
    "COMPACT_WINDOW_DAYS",
    "FUNCTIONS",
    "MAX_REPLY_BYTES",
    "OUTPUTSIZES",
    "AlphaVantageDailyQuotaExceeded",
    "AlphaVantageError",
    "AlphaVantageInvalidApiKey",
    "AlphaVantageInvalidRequest",
    "AlphaVantageKeptThrottling",
    "AlphaVantageMalformedResponse",
    "AlphaVantagePremiumRequired",
    "AlphaVantageProvider",
    "AlphaVantageThrottled",
    "AlphaVantageTransientError",
    "IngestBudgetExhausted",
]

logger = logging.getLogger(__name__)

FUNCTIONS = ("TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED")
OUTPUTSIZES = ("auto", "compact", "full")
# "compact" holds the latest 100 sessions; 140 calendar days stays safely inside that.
COMPACT_WINDOW_DAYS = 140
MAX_REPLY_BYTES = 64 * 1024**2
"""A reply (decoded) above this is refused: a full daily history is a few MB."""


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
        install_urllib3_redaction()

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
        try:
            status, body = get_reply(
                self._session,
                self.base_url,
                params,
                symbol=symbol,
                api_key=self._api_key,
                per_read=per_read,
                deadline=deadline,
                request_deadline_s=self.request_deadline_s,
                timeout_s=self.timeout_s,
                max_bytes=MAX_REPLY_BYTES,
            )
        except AlphaVantageTransientError:
            if self._budget_left() <= 0:
                raise IngestBudgetExhausted(
                    f"the ingest time budget of {self.ingest_budget_s:.0f} s is used up"
                ) from None
            raise
        return self._decode(symbol, status, body)

    def _decode(self, symbol: str, status: int, content: bytes) -> dict[str, Any]:
        return decode_reply(symbol, status, content, self._origin(symbol), self._api_key)

    def _parse(
        self, symbol: str, payload: dict[str, Any], start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        return parse_series(symbol, payload, self.function, self._origin(symbol), start, end)


def _zero_stats() -> dict[str, float]:
    return {"api_calls": 0, "retries": 0, "latency_s": 0.0}
