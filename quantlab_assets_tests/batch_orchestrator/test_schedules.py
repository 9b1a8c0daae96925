"""Every schedule decides "holiday or session" through one helper, ``partitions.on_trading_days``:
a weekday holiday is a skip naming the day and what there is none of; a session is a RunRequest for
that day (its partition, or its range or session tag), with a run key that fires it once."""

from __future__ import annotations

import inspect
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.definitions import defs
from quantlab_assets.partitions import EXCHANGE_TIMEZONE, on_trading_days

NY = ZoneInfo(EXCHANGE_TIMEZONE)
THANKSGIVING, SESSION = "2026-11-26", "2026-11-25"  # a Thursday holiday and the Wednesday before


def _tick(name: str, day: str, hour: int, minute: int):
    when = datetime(*map(int, day.split("-")), hour, minute, tzinfo=NY)
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return defs.get_schedule_def(name).evaluate_tick(context)


SCHEDULES = {
    # name: (hour, minute, what the holiday has none of, the session's run key, how the request names the day)
    "daily_chain_after_close": (18, 30, "no session to process", "daily", "partition"),
    "labels_refresh_after_close": (19, 0, "no new bars", "labels", "range"),
    "paper_trading_after_supervision": (19, 5, "no session to trade", "paper", "partition"),
    "collect_fills_after_open": (9, 45, "no open", "fills", "session"),
}


def test_every_schedule_is_listed_here_and_decides_through_the_helper():
    assert sorted(s.name for s in defs.schedules or []) == sorted(SCHEDULES)
    from quantlab_assets.batch_orchestrator import jobs as chain_jobs
    from quantlab_assets.execution import jobs as execution_jobs

    for module in (chain_jobs, execution_jobs):  # two schedules each, no calendar test of their own
        source = inspect.getsource(module)
        assert source.count("return on_trading_days(") == 2 and "is_trading_day" not in source, module.__name__


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_a_holiday_is_skipped_with_a_reason_and_a_session_gets_its_run_request(name):
    hour, minute, none_of, key, names_day = SCHEDULES[name]
    holiday = _tick(name, THANKSGIVING, hour, minute)
    assert holiday.run_requests == [] and holiday.skip_message == f"{THANKSGIVING} is an exchange holiday: {none_of}"
    [request] = _tick(name, SESSION, hour, minute).run_requests
    assert request.run_key == f"{key}-{SESSION}"
    if names_day == "partition":
        assert request.partition_key == SESSION
    elif names_day == "range":
        assert request.tags["dagster/asset_partition_range_end"] == SESSION
        assert request.tags["dagster/asset_partition_range_start"] == str(shift_sessions(SESSION, -30).date())
    else:
        assert request.tags["session"] == SESSION and request.partition_key is None


def test_the_helper_on_a_good_friday_and_the_thursday_before():
    def request(day):
        return dg.RunRequest(run_key=f"x-{day}", partition_key=day.isoformat())

    def context(day: str):
        return dg.build_schedule_context(scheduled_execution_time=datetime(*map(int, day.split("-")), 18, tzinfo=NY))

    skipped = on_trading_days(context("2026-04-03"), "nothing to do", request)
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == "2026-04-03 is an exchange holiday: nothing to do"
    fired = on_trading_days(context("2026-04-02"), "nothing to do", request)
    assert isinstance(fired, dg.RunRequest) and fired.partition_key == "2026-04-02" and fired.run_key == "x-2026-04-02"
