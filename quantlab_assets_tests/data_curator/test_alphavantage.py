"""AlphaVantageProvider against a real HTTP server on 127.0.0.1 that replays scripted replies.

The notice texts below are the wording the live service sends, because the
classifier has to cope with their overlapping vocabulary.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import traceback
from datetime import date
from urllib.parse import quote, quote_plus

import pytest

from quantlab_assets.data_curator.core.alphavantage import (
    AlphaVantageDailyQuotaExceeded,
    AlphaVantageInvalidApiKey,
    AlphaVantageInvalidRequest,
    AlphaVantageKeptThrottling,
    AlphaVantageMalformedResponse,
    AlphaVantagePremiumRequired,
    AlphaVantageProvider,
    AlphaVantageThrottled,
    AlphaVantageTransientError,
)
from quantlab_assets.data_curator.core.providers import InputRefused
from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS
from quantlab_assets_tests.support.alphavantage_server import (
    BAD_KEY,
    BURST_INFO,
    DAILY_INFO,
    DEMO_KEY,
    INVALID_CALL,
    KEY,
    LEGACY_NOTE,
    PREMIUM_ENDPOINT,
    PREMIUM_FULL,
    TODAY,
    ScriptedServer,
    adjusted_payload,
    after_delay,
    daily_payload,
    one_day,
    reply_json,
    reply_raw,
    truncated,
)


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


class SleepRecorder:
    """Records waits instead of sleeping; keeps backoff tests instant and exact."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A monotonic clock that only moves when the provider sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_provider(server: ScriptedServer, **overrides) -> AlphaVantageProvider:
    options = dict(
        api_key=KEY,
        base_url=server.url,
        requests_per_minute=0,
        backoff_base_s=0.001,
        backoff_max_s=0.01,
        timeout_s=2.0,
        sleep=SleepRecorder(),
        rng=random.Random(0),
        today=TODAY,
    )
    options.update(overrides)
    return AlphaVantageProvider(**options)


IBM_ROWS = {
    # Deliberately unordered and wider than the requested range.
    "2024-06-14": ("169.5000", "170.0000", "168.0000", "169.2100", "2817413"),
    "2024-06-10": ("169.5500", "170.7600", "168.8800", "170.3800", "3444684"),
    "2024-06-12": ("171.3500", "172.4700", "168.1000", "169.0000", "3522703"),
    "2024-06-11": ("169.9800", "170.0000", "166.8100", "169.3200", "2951251"),
    "2024-06-13": ("169.0100", "169.5900", "168.3350", "169.1200", "3525717"),
}


# -- success paths --------------------------------------------------------------------------


def test_daily_success_parses_exact_values_filters_range_and_sorts(server):
    server.script("IBM", reply_json(daily_payload("IBM", IBM_ROWS)))
    aapl_rows = {"2024-06-12": ("207.37", "220.20", "206.90", "213.07", "198134293")}
    server.script("AAPL", reply_json(daily_payload("AAPL", aapl_rows)))
    provider = make_provider(server)

    result = provider.fetch(["IBM", "AAPL"], date(2024, 6, 11), date(2024, 6, 13))

    bars = result.bars
    assert list(bars.columns) == list(PROVIDER_COLUMNS)
    assert list(zip(bars["symbol"], bars["date"].dt.strftime("%Y-%m-%d"))) == [
        ("AAPL", "2024-06-12"),
        ("IBM", "2024-06-11"),
        ("IBM", "2024-06-12"),
        ("IBM", "2024-06-13"),
    ]
    ibm = bars[bars["symbol"] == "IBM"]
    assert ibm["open"].tolist() == [169.98, 171.35, 169.01]
    assert ibm["high"].tolist() == [170.0, 172.47, 169.59]
    assert ibm["low"].tolist() == [166.81, 168.1, 168.335]
    assert ibm["close"].tolist() == [169.32, 169.0, 169.12]
    assert ibm["volume"].tolist() == [2951251.0, 3522703.0, 3525717.0]
    # The unadjusted function has no adjustments: adj_close mirrors close.
    assert ibm["adj_close"].tolist() == ibm["close"].tolist()
    assert set(bars["dividend"]) == {0.0} and set(bars["split_coefficient"]) == {1.0}
    assert result.failures == [] and result.stopped_reason is None
    assert result.fetched_symbols == ["AAPL", "IBM"]
    assert {s: (st["api_calls"], st["retries"]) for s, st in result.stats.items()} == {
        "IBM": (1, 0),
        "AAPL": (1, 0),
    }
    # A start 9 days before "today" fits in the compact window.
    assert server.requests[0]["params"] == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "IBM",
        "outputsize": "compact",
        "datatype": "json",
        "apikey": KEY,
    }


def test_fetch_symbol_returns_whole_series_sorted(server):
    server.script("IBM", reply_json(daily_payload("IBM", IBM_ROWS)))

    frame, stats = make_provider(server).fetch_symbol("IBM")

    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == sorted(IBM_ROWS)
    assert frame["close"].tolist() == [170.38, 169.32, 169.0, 169.12, 169.21]
    assert stats["api_calls"] == 1 and stats["retries"] == 0 and stats["latency_s"] > 0
    # No start date is known here, so "auto" asks for the whole history.
    assert server.requests[0]["params"]["outputsize"] == "full"


def test_adjusted_function_parses_adjusted_close_dividend_and_split(server):
    rows = {
        "2024-06-10": ("100.00", "102.00", "99.00", "101.00", "98.7654", "5000", "0.0000", "1.0"),
        "2024-06-11": ("50.50", "51.00", "50.00", "50.75", "50.1234", "9000", "0.4200", "2.0"),
    }
    server.script("XYZ", reply_json(adjusted_payload("XYZ", rows)))
    provider = make_provider(server, function="TIME_SERIES_DAILY_ADJUSTED")

    bars = provider.fetch(["XYZ"], date(2024, 6, 10), date(2024, 6, 11)).bars

    assert bars["close"].tolist() == [101.0, 50.75]
    assert bars["adj_close"].tolist() == [98.7654, 50.1234]
    assert bars["volume"].tolist() == [5000.0, 9000.0]
    assert bars["dividend"].tolist() == [0.0, 0.42]
    assert bars["split_coefficient"].tolist() == [1.0, 2.0]
    assert server.requests[0]["params"]["function"] == "TIME_SERIES_DAILY_ADJUSTED"


@pytest.mark.parametrize(
    ("outputsize", "start", "expected"),
    [
        ("auto", date(2024, 2, 1), "compact"),  # 140 days before TODAY: still compact
        ("auto", date(2024, 1, 31), "full"),
        ("compact", date(2015, 1, 2), "compact"),
        ("full", date(2024, 6, 19), "full"),
    ],
)
def test_outputsize_choice(server, outputsize, start, expected):
    server.script("IBM", reply_json(one_day("IBM")))
    make_provider(server, outputsize=outputsize).fetch(["IBM"], start, TODAY)
    assert server.requests[0]["params"]["outputsize"] == expected


def test_invalid_constructor_arguments_raise_value_error():
    with pytest.raises(ValueError, match="TIME_SERIES_DAILY, TIME_SERIES_DAILY_ADJUSTED"):
        AlphaVantageProvider(api_key=KEY, function="TIME_SERIES_WEEKLY")
    with pytest.raises(ValueError, match="auto, compact, full"):
        AlphaVantageProvider(api_key=KEY, outputsize="huge")
    with pytest.raises(ValueError, match="api_key"):
        AlphaVantageProvider(api_key="")


# -- service notices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("Note", LEGACY_NOTE, AlphaVantageThrottled),
        ("Information", BURST_INFO, AlphaVantageThrottled),
        ("Information", DAILY_INFO, AlphaVantageDailyQuotaExceeded),
        ("Information", PREMIUM_ENDPOINT, AlphaVantagePremiumRequired),
        ("Information", PREMIUM_FULL, AlphaVantagePremiumRequired),
        ("Information", DEMO_KEY, AlphaVantageInvalidApiKey),
        ("Error Message", INVALID_CALL, AlphaVantageInvalidRequest),
        ("Error Message", BAD_KEY, AlphaVantageInvalidApiKey),
    ],
)
def test_real_service_texts_are_classified(server, key, text, expected):
    server.script("IBM", reply_json({key: text}), reply_json({key: text}))
    clock = FakeClock()
    provider = make_provider(
        server, max_retries=0, throttle_give_up_s=0.5, backoff_base_s=1.0, sleep=clock.sleep, clock=clock
    )
    if expected is AlphaVantageThrottled:
        # Throttling is retried (shared backoff) until it has lasted throttle_give_up_s.
        with pytest.raises(AlphaVantageKeptThrottling, match="kept throttling for 0 s"):
            provider.fetch_symbol("IBM")
        assert server.calls("IBM") == 2 and clock.sleeps == [0.5]
        return
    with pytest.raises(expected) as info:
        provider.fetch_symbol("IBM")
    assert type(info.value) is expected
    assert "'IBM'" in str(info.value)
    assert server.calls("IBM") == 1


@pytest.mark.parametrize(("key", "text"), [("Note", LEGACY_NOTE), ("Information", BURST_INFO)])
def test_throttle_notice_is_retried_then_succeeds(server, caplog, key, text):
    server.script("IBM", reply_json({key: text}), reply_json(one_day("IBM", close="123.45")))
    sleep = SleepRecorder()
    caplog.set_level(logging.WARNING, logger="quantlab_assets.data_curator.core.alphavantage")

    result = make_provider(server, sleep=sleep).fetch(["IBM"], date(2024, 6, 1), TODAY)

    assert result.failures == []
    assert result.bars["close"].tolist() == [123.45]
    assert result.stats["IBM"]["api_calls"] == 2 and result.stats["IBM"]["retries"] == 1
    assert len(sleep.calls) == 1
    assert any("IBM" in r.getMessage() and "throttled for 0 s of 300" in r.getMessage() for r in caplog.records)


def test_daily_quota_mid_batch_keeps_earlier_symbols_and_stops(server):
    server.script("AAA", reply_json(one_day("AAA", close="10.5")))
    server.script("BBB", reply_json({"Information": DAILY_INFO}))
    server.script("CCC", reply_json(one_day("CCC")))

    result = make_provider(server).fetch(["AAA", "BBB", "CCC"], date(2024, 6, 1), TODAY)

    assert result.bars["symbol"].unique().tolist() == ["AAA"]
    assert result.bars["close"].tolist() == [10.5]
    assert result.fetched_symbols == ["AAA"]
    assert [f.symbol for f in result.failures] == ["BBB", "CCC"]
    assert all(f.reason.startswith("daily quota exhausted; 2 symbols remain") for f in result.failures)
    assert "2 symbols remain" in result.stopped_reason
    # Not retried, and nothing is sent once the quota is gone.
    assert (server.calls("AAA"), server.calls("BBB"), server.calls("CCC")) == (1, 1, 0)
    assert result.stats["BBB"]["api_calls"] == 1 and result.stats["CCC"]["api_calls"] == 0


def test_premium_endpoint_fails_every_symbol_after_one_call(server):
    for symbol in ("AAA", "BBB", "CCC"):
        server.script(symbol, reply_json({"Information": PREMIUM_ENDPOINT}))
    provider = make_provider(server, function="TIME_SERIES_DAILY_ADJUSTED")

    result = provider.fetch(["AAA", "BBB", "CCC"], date(2024, 6, 1), TODAY)

    assert result.bars.empty and result.fetched_symbols == []
    assert [f.symbol for f in result.failures] == ["AAA", "BBB", "CCC"]
    assert all("premium endpoint" in f.reason for f in result.failures)
    assert "3 symbols remaining" in result.stopped_reason
    assert len(server.requests) == 1


def test_error_message_fails_only_that_symbol_without_retry(server):
    server.script("AAA", reply_json(one_day("AAA")))
    server.script("NOPE", reply_json({"Error Message": INVALID_CALL}), reply_json(one_day("NOPE")))
    server.script("CCC", reply_json(one_day("CCC")))

    result = make_provider(server).fetch(["AAA", "NOPE", "CCC"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["AAA", "CCC"]
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.symbol == "NOPE" and "'NOPE'" in failure.reason and "Invalid API call" in failure.reason
    assert server.calls("NOPE") == 1
    assert (result.stats["NOPE"]["api_calls"], result.stats["NOPE"]["retries"]) == (1, 0)
    assert result.stopped_reason is None


def test_invalid_api_key_stops_the_batch(server):
    server.script("AAA", reply_json({"Error Message": BAD_KEY}))
    server.script("BBB", reply_json(one_day("BBB")))

    result = make_provider(server).fetch(["AAA", "BBB"], date(2024, 6, 1), TODAY)

    assert [f.symbol for f in result.failures] == ["AAA", "BBB"]
    assert server.calls("BBB") == 0
    assert "apikey is invalid" in result.stopped_reason


# -- transport failures ---------------------------------------------------------------------


def test_http_500_twice_then_success(server):
    server.script("IBM", reply_raw(b"oops", 500), reply_raw(b"oops", 503), reply_json(one_day("IBM")))

    result = make_provider(server).fetch(["IBM"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["IBM"] and len(result.bars) == 1
    assert result.stats["IBM"]["api_calls"] == 3 and result.stats["IBM"]["retries"] == 2


def test_http_500_forever_fails_after_max_retries(server):
    server.script("IBM", *[reply_raw(b"oops", 500)] * 10)

    result = make_provider(server, max_retries=3).fetch(["IBM"], date(2024, 6, 1), TODAY)

    assert result.bars.empty
    (failure,) = result.failures
    assert failure.symbol == "IBM"
    assert "HTTP 500" in failure.reason and "gave up after 4 attempts" in failure.reason
    assert server.calls("IBM") == 4
    assert result.stats["IBM"]["api_calls"] == 4 and result.stats["IBM"]["retries"] == 3


def test_http_429_is_throttling_and_other_4xx_is_final(server):
    server.script("IBM", reply_raw(b"slow down", 429), reply_json(one_day("IBM")))
    server.script("GONE", reply_raw(b"not found", 404), reply_json(one_day("GONE")))

    result = make_provider(server).fetch(["IBM", "GONE"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["IBM"]
    assert result.stats["IBM"]["retries"] == 1
    (failure,) = result.failures
    assert failure.symbol == "GONE" and "HTTP 404" in failure.reason
    assert server.calls("GONE") == 1


def test_timeout_is_retried(server):
    slow = after_delay(0.6, reply_json(one_day("IBM")))
    server.script("IBM", slow, reply_json(one_day("IBM", close="7.0")))

    frame, stats = make_provider(server, timeout_s=0.2).fetch_symbol("IBM")

    assert frame["close"].tolist() == [7.0]
    assert stats["api_calls"] == 2 and stats["retries"] == 1
    assert stats["latency_s"] >= 0.2


def test_timeout_reason_after_retries(server):
    server.script("IBM", *[after_delay(0.6, reply_json(one_day("IBM")))] * 2)

    with pytest.raises(AlphaVantageTransientError, match=r"timed out after 0.2s.*gave up after 2 attempts"):
        make_provider(server, timeout_s=0.2, max_retries=1).fetch_symbol("IBM")


def test_connection_reset_mid_body_is_retried(server):
    server.script("IBM", truncated(), reply_json(one_day("IBM", close="42.0")))

    frame, stats = make_provider(server).fetch_symbol("IBM")

    assert frame["close"].tolist() == [42.0]
    assert stats["retries"] == 1


def test_truncated_body_forever_fails_with_connection_reason(server):
    server.script("IBM", truncated(), truncated())

    result = make_provider(server, max_retries=1).fetch(["IBM"], date(2024, 6, 1), TODAY)

    (failure,) = result.failures
    assert "connection failed" in failure.reason and "gave up after 2 attempts" in failure.reason
    assert server.calls("IBM") == 2


# -- malformed bodies -----------------------------------------------------------------------


META = {"Meta Data": {"2. Symbol": "IBM"}}


def _row(**changes) -> dict:
    row = {"1. open": "1.0", "2. high": "2.0", "3. low": "0.5", "4. close": "1.5", "5. volume": "10"}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b"[]", "expected a JSON object"),
        (json.dumps({"Meta Data": {"2. Symbol": "IBM"}}).encode(), "no time series"),
        (
            json.dumps({**META, "Time Series (Daily)": {"2024-06-14": _row(**{"4. close": None})}}).encode(),
            "lacks field '4. close'",
        ),
        (
            json.dumps({**META, "Time Series (Daily)": {"2024-06-14": _row(**{"1. open": "n/a"})}}).encode(),
            "2024-06-14, column open, value 'n/a': not a number",
        ),
        (
            json.dumps({**META, "Time Series (Daily)": {"2024-13-45": _row()}}).encode(),
            "column date, value '2024-13-45': not an ISO date",
        ),
        (
            json.dumps({"Meta Data": {"2. Symbol": "MSFT"}, "Time Series (Daily)": {"2024-06-14": _row()}}).encode(),
            "the reply's Meta Data symbol is 'MSFT', not 'IBM'",
        ),
        (
            b'{"Meta Data": {"2. Symbol": "IBM"}, "Time Series (Daily)": {"2024-06-14": '
            + json.dumps(_row()).encode()
            + b', "2024-06-14": '
            + json.dumps(_row(**{"4. close": "1.9"})).encode()
            + b"}}",
            "JSON key '2024-06-14' appears twice",
        ),
        (
            json.dumps({**META, "Time Series (Daily)": {"2024-06-15": _row()}}).encode(),
            "2024-06-15, column date, value '2024-06-15': Saturday is not a trading session",
        ),
    ],
)
def test_malformed_body_raises_clear_error_without_retry(server, body, fragment):
    server.script("IBM", reply_raw(body), reply_json(one_day("IBM")))

    with pytest.raises((AlphaVantageMalformedResponse, InputRefused)) as info:
        make_provider(server).fetch_symbol("IBM")

    assert "'IBM'" in str(info.value) or str(info.value).startswith("IBM: refused Alpha Vantage")
    assert fragment in str(info.value)
    assert server.calls("IBM") == 1


def test_malformed_body_fails_one_symbol_in_a_batch(server):
    server.script("BAD", reply_raw(b"{not json"))
    server.script("IBM", reply_json(one_day("IBM")))

    result = make_provider(server).fetch(["BAD", "IBM"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["IBM"]
    assert [f.symbol for f in result.failures] == ["BAD"] and "not JSON" in result.failures[0].reason


# -- secrecy ----------------------------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/query"


def test_api_key_never_leaks(server, caplog):
    secret = "S3cr3t+Key/42=="  # URL-encodes differently, so every encoded form is checked
    forms = {secret, quote_plus(secret), quote(secret, safe="")}
    caplog.set_level(logging.DEBUG)  # includes urllib3's request-line debug logs
    server.script("RESET", truncated(), truncated())
    server.script("SLOW", *[after_delay(0.5, reply_json(one_day("SLOW")))] * 2)
    server.script("NOPE", reply_json({"Error Message": INVALID_CALL}))
    live = make_provider(server, api_key=secret, max_retries=1, timeout_s=0.2)
    dead = make_provider(server, api_key=secret, max_retries=1, base_url=_closed_port_url())

    texts = [repr(live), repr(dead)]
    result = live.fetch(["RESET", "SLOW", "NOPE"], date(2024, 6, 1), TODAY)
    dead_result = dead.fetch(["IBM"], date(2024, 6, 1), TODAY)
    with pytest.raises(AlphaVantageTransientError) as info:
        dead.fetch_symbol("IBM")

    assert len(result.failures) == 3 and len(dead_result.failures) == 1
    assert "connection failed" in dead_result.failures[0].reason
    texts += [f.reason for r in (result, dead_result) for f in r.failures]
    texts.append("".join(traceback.format_exception(info.value)))
    chained: BaseException | None = info.value
    while chained is not None:
        texts.append(repr(chained))
        chained = chained.__cause__ or chained.__context__
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not [t for t in texts for form in forms if form in t]
    # The check is not vacuous: urllib3 did log request URLs, with the key masked.
    assert any("apikey=***" in r.getMessage() for r in caplog.records if r.name.startswith("urllib3"))


# -- pacing -----------------------------------------------------------------------------------


def test_rate_limiter_spaces_requests_with_fake_clock(server):
    for symbol in ("AAA", "BBB", "CCC"):
        server.script(symbol, reply_json(one_day(symbol)))
    clock = FakeClock()
    provider = make_provider(server, requests_per_minute=5, sleep=clock.sleep, clock=clock)

    result = provider.fetch(["AAA", "BBB", "CCC"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["AAA", "BBB", "CCC"]
    assert clock.sleeps == [12.0, 12.0]  # 60 s / 5 requests, none before the first


def test_rate_limiter_counts_backoff_time_already_waited(server):
    server.script("AAA", reply_json({"Note": LEGACY_NOTE}), reply_json(one_day("AAA")))
    server.script("BBB", reply_json(one_day("BBB")))
    clock = FakeClock()
    provider = make_provider(
        server,
        requests_per_minute=5,
        sleep=clock.sleep,
        clock=clock,
        backoff_base_s=1.0,
        backoff_max_s=60.0,
        rng=random.Random(3),
    )

    result = provider.fetch(["AAA", "BBB"], date(2024, 6, 1), TODAY)

    backoff = 1.0 + random.Random(3).uniform(0.0, 1.0)
    assert clock.sleeps == pytest.approx([backoff, 12.0 - backoff, 12.0])
    assert result.stats["AAA"]["latency_s"] == pytest.approx(12.0)
    assert result.stats["BBB"]["latency_s"] == pytest.approx(12.0)


def test_rate_limiter_spaces_real_requests(server):
    for symbol in ("AAA", "BBB", "CCC"):
        server.script(symbol, reply_json(one_day(symbol)))
    provider = make_provider(server, requests_per_minute=1200, sleep=time.sleep)  # 50 ms apart

    provider.fetch(["AAA", "BBB", "CCC"], date(2024, 6, 1), TODAY)

    arrivals = [r["at"] for r in server.requests]
    assert len(arrivals) == 3
    # The limiter spaces the sends 50 ms apart; arrivals at the server carry each request's own
    # latency (the first one also opens the connection), so allow half the interval of jitter.
    # Without the limiter, back-to-back local requests arrive a few ms apart.
    assert min(b - a for a, b in zip(arrivals, arrivals[1:])) >= 0.025
    assert arrivals[-1] - arrivals[0] >= 0.075


def test_backoff_grows_exponentially_with_bounded_jitter(server):
    server.script("IBM", *[reply_json({"Information": BURST_INFO})] * 4, reply_json(one_day("IBM")))
    sleep = SleepRecorder()
    provider = make_provider(
        server,
        sleep=sleep,
        backoff_base_s=1.0,
        backoff_max_s=5.0,
        rng=random.Random(1234),
    )

    _, stats = provider.fetch_symbol("IBM")

    caps = [1.0, 2.0, 4.0, 5.0]  # base * 2**n, capped at backoff_max_s
    assert stats["retries"] == 4 and len(sleep.calls) == 4
    for delay, cap in zip(sleep.calls, caps):
        assert cap <= delay < cap + 1.0
    replay = random.Random(1234)
    assert sleep.calls == pytest.approx([cap + replay.uniform(0.0, 1.0) for cap in caps])


def test_empty_symbol_list_sends_nothing(server):
    result = make_provider(server).fetch([], date(2024, 6, 1), TODAY)
    assert result.bars.empty and list(result.bars.columns) == list(PROVIDER_COLUMNS)
    assert result.failures == [] and result.stats == {} and server.requests == []
