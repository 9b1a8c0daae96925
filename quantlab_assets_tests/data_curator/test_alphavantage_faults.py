"""Bounded faults of the Alpha Vantage client on the real 127.0.0.1 test server: a dripping
reply ends at the request deadline, endless throttling at the give-up time, a slow service
at the ingest budget. Times are asserted with wide margins: the point is "bounded", not speed."""

from __future__ import annotations

import json
import random
import time
from datetime import date

import pytest

from quantlab_assets.data_curator.core.alphavantage import AlphaVantageProvider
from quantlab_assets_tests.support.alphavantage_server import (
    KEY,
    LEGACY_NOTE,
    TODAY,
    ScriptedServer,
    after_delay,
    daily_payload,
    drip,
    one_day,
    reply_gzip,
    reply_json,
)


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def provider(server, **options) -> AlphaVantageProvider:
    base = dict(
        api_key=KEY,
        base_url=server.url,
        requests_per_minute=0,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
        rng=random.Random(0),
        today=TODAY,
        max_retries=0,
    )
    return AlphaVantageProvider(**{**base, **options})


def test_a_reply_dripping_a_byte_a_second_fails_at_the_request_deadline(server):
    body = json.dumps(one_day("IBM")).encode()[:60]  # 60 s of drip at one byte a second
    server.script("IBM", drip(body, every_s=1.0))
    server.script("AAA", reply_json(one_day("AAA")))
    # The per-read timeout (30 s) never fires: a byte arrives every second.
    client = provider(server, timeout_s=30.0, request_deadline_s=5.0)

    t0 = time.monotonic()
    result = client.fetch(["IBM", "AAA"], date(2024, 6, 1), TODAY)
    elapsed = time.monotonic() - t0

    assert elapsed < 20
    (failure,) = result.failures
    assert failure.symbol == "IBM" and "not complete within the 5 s request deadline" in failure.reason
    assert result.fetched_symbols == ["AAA"]  # the next symbol still ran


def test_endless_throttling_gives_up_for_the_whole_run_and_keeps_what_was_fetched(server):
    symbols = [f"S{i:02d}" for i in range(50)]
    server.script("S00", reply_json(one_day("S00")))
    server.script("S01", reply_json(one_day("S01")))
    for symbol in symbols[2:]:
        server.script(symbol, *[reply_json({"Note": LEGACY_NOTE})] * 200)
    client = provider(server, throttle_give_up_s=2.0)

    t0 = time.monotonic()
    result = client.fetch(symbols, date(2024, 6, 1), TODAY)
    elapsed = time.monotonic() - t0

    # One shared backoff: the run stops after ~2 s of throttling, not 48 symbols x retries.
    assert elapsed < 15
    assert result.fetched_symbols == ["S00", "S01"] and len(result.bars) == 2
    assert result.stopped_reason.startswith("Alpha Vantage kept throttling for 2 s; fetched 2 of 50 symbols; kept them")
    assert [f.symbol for f in result.failures] == symbols[2:]
    assert sum(server.calls(s) for s in symbols[3:]) == 0  # nothing sent after the streak began


def test_throttling_that_ends_resumes_with_the_shared_backoff(server):
    server.script(
        "AAA", reply_json({"Note": LEGACY_NOTE}), reply_json({"Note": LEGACY_NOTE}), reply_json(one_day("AAA"))
    )
    server.script("BBB", reply_json(one_day("BBB")))

    result = provider(server, throttle_give_up_s=30.0).fetch(["AAA", "BBB"], date(2024, 6, 1), TODAY)

    assert result.fetched_symbols == ["AAA", "BBB"] and result.stopped_reason is None
    assert result.stats["AAA"]["retries"] == 2


def test_the_ingest_budget_bounds_a_slow_service(server):
    symbols = [f"S{i:02d}" for i in range(20)]
    for symbol in symbols:
        server.script(symbol, after_delay(0.5, reply_json(one_day(symbol))))
    client = provider(server, ingest_budget_s=2.0, request_deadline_s=5.0)

    t0 = time.monotonic()
    result = client.fetch(symbols, date(2024, 6, 1), TODAY)
    elapsed = time.monotonic() - t0

    assert elapsed < 8  # 20 symbols x 0.5 s would be 10 s
    k = len(result.fetched_symbols)
    assert 1 <= k < 20 and result.fetched_symbols == symbols[:k]
    assert f"fetched {k} of 20 symbols; kept them" in result.stopped_reason
    assert "ingest time budget of 2 s" in result.stopped_reason


def test_a_gzip_reply_is_decoded_while_read_against_the_deadline(server):
    rows = {f"2024-06-{d:02d}": ("10.0", "11.0", "9.0", f"10.{d}", "100") for d in (10, 11, 12, 13, 14)}
    server.script("IBM", reply_gzip(daily_payload("IBM", rows)))
    result = provider(server).fetch(["IBM"], date(2024, 6, 10), TODAY)
    assert result.failures == [] and result.bars["close"].tolist() == [10.1, 10.11, 10.12, 10.13, 10.14]
