"""Every source is bounded in size as well as time (issue 24): an Alpha Vantage reply above the
size bound is refused naming the symbol and the size, without a retry; non-finite waits are
refused when the client is built."""

from __future__ import annotations

import random
from datetime import date

import pytest

from quantlab_assets.data_curator.core import alphavantage
from quantlab_assets.data_curator.core.alphavantage import AlphaVantageProvider
from quantlab_assets_tests.support.alphavantage_server import ScriptedServer, daily_payload, reply_json

KEY = "test-key-not-secret"
TODAY = date(2024, 6, 14)


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def _provider(server, **kw):
    options = dict(
        api_key=KEY,
        base_url=server.url,
        requests_per_minute=0,
        backoff_base_s=0.001,
        backoff_max_s=0.01,
        timeout_s=5.0,
        sleep=lambda s: None,
        rng=random.Random(0),
        today=TODAY,
    )
    return AlphaVantageProvider(**{**options, **kw})


def test_a_reply_above_the_size_bound_is_refused_once(server, monkeypatch):
    rows = {f"2024-06-{d:02d}": ("1.0", "2.0", "0.5", "1.5", "10") for d in range(3, 15)}
    payload = daily_payload("IBM", rows)
    payload["padding"] = "x" * 300_000
    server.script("IBM", *[reply_json(payload)] * 3)
    monkeypatch.setattr(alphavantage, "MAX_REPLY_BYTES", 200_000)
    result = _provider(server).fetch(["IBM"], date(2024, 6, 3), TODAY)
    (failure,) = result.failures
    assert "Alpha Vantage 'IBM': reply larger than 200,000 bytes" in failure.reason
    assert server.calls("IBM") == 1 and result.bars.empty


@pytest.mark.parametrize("field", ["timeout_s", "request_deadline_s", "throttle_give_up_s"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0])
def test_waits_are_finite(server, field, value):
    with pytest.raises(ValueError, match=f"{field} must be a finite number > 0"):
        _provider(server, **{field: value})
