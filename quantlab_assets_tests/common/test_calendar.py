"""NYSE calendar: hand-checked session counts, holidays, closures and session arithmetic."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from quantlab_assets.common.calendar import (
    holidays,
    is_trading_day,
    shift_sessions,
    trading_days,
)

T = pd.Timestamp


# Hand-checked against the NYSE holiday schedule: weekdays in the year minus weekday closures.
# 2022: 260 weekdays - 9 (New Year falls on Saturday and is not observed) = 251
# 2023: 260 - 10 = 250
# 2024: 262 - 10 = 252
# 2025: 261 - 10 - 1 (National Day of Mourning for President Carter, 2025-01-09) = 250
@pytest.mark.parametrize("year, sessions", [(2022, 251), (2023, 250), (2024, 252), (2025, 250)])
def test_sessions_per_year(year, sessions):
    days = trading_days(f"{year}-01-01", f"{year}-12-31")
    assert len(days) == sessions
    assert days.is_unique and days.is_monotonic_increasing
    assert (days.dayofweek < 5).all()
    assert days.min().year == year and days.max().year == year


def test_holidays_2024_exact():
    got = [d.date() for d in holidays("2024-01-01", "2024-12-31")]
    assert got == [
        date(2024, 1, 1),  # New Year's Day
        date(2024, 1, 15),  # Martin Luther King Jr. Day
        date(2024, 2, 19),  # Washington's Birthday
        date(2024, 3, 29),  # Good Friday
        date(2024, 5, 27),  # Memorial Day
        date(2024, 6, 19),  # Juneteenth
        date(2024, 7, 4),  # Independence Day
        date(2024, 9, 2),  # Labor Day
        date(2024, 11, 28),  # Thanksgiving
        date(2024, 12, 25),  # Christmas
    ]


@pytest.mark.parametrize(
    "day, why",
    [
        ("2024-03-29", "Good Friday 2024"),
        ("2022-06-20", "Juneteenth 2022 (Sunday) observed on Monday"),
        ("2026-07-03", "Independence Day 2026 (Saturday) observed on Friday"),
        ("2012-10-29", "Hurricane Sandy, day 1"),
        ("2012-10-30", "Hurricane Sandy, day 2"),
        ("2025-01-09", "National Day of Mourning, President Carter"),
        ("2001-09-11", "9/11"),
        ("2001-09-14", "9/11, last day closed"),
        ("2018-12-05", "National Day of Mourning, President G.H.W. Bush"),
        ("2021-12-24", "Christmas 2021 (Saturday) observed on Friday"),
        ("2023-01-02", "New Year 2023 (Sunday) observed on Monday"),
        ("2024-01-15", "MLK Day 2024"),
        ("2024-11-28", "Thanksgiving 2024"),
    ],
)
def test_closed_weekdays(day, why):
    ts = T(day)
    assert ts.dayofweek < 5, f"fixture error: {day} should be a weekday"
    assert not is_trading_day(day), why
    assert ts not in trading_days(ts - pd.Timedelta(days=7), ts + pd.Timedelta(days=7))
    assert ts in holidays(day, day)


@pytest.mark.parametrize(
    "day, why",
    [
        ("2021-12-31", "Saturday New Year 2022 is not observed on the Friday before"),
        ("2022-06-17", "the Friday before Juneteenth 2022 is a session"),
        ("2021-06-18", "Juneteenth was first observed by NYSE in 2022"),
        ("2026-07-02", "only July 3 is the observed holiday in 2026"),
        ("2012-10-31", "NYSE reopened after Sandy"),
        ("2001-09-17", "NYSE reopened after 9/11"),
        ("2024-03-28", "day before Good Friday"),
        ("2024-04-01", "Easter Monday is a US session"),
        ("2025-01-08", "day before Carter closure"),
        ("2025-01-10", "day after Carter closure"),
    ],
)
def test_trading_days_near_closures(day, why):
    assert is_trading_day(day), why
    assert T(day) in trading_days(day, day)


def test_weekends_are_not_trading_days():
    assert not is_trading_day("2024-03-30")  # Saturday
    assert not is_trading_day("2024-03-31")  # Sunday
    assert not is_trading_day(date(2022, 1, 1))  # Saturday New Year: weekend, not a holiday
    assert len(holidays("2022-01-01", "2022-01-01")) == 0  # weekend holidays are not listed


def test_is_trading_day_accepts_date_and_timestamps_with_time():
    assert is_trading_day(date(2024, 7, 5))
    assert is_trading_day(T("2024-07-05 15:59"))
    assert not is_trading_day(T("2024-07-04 09:30"))


def test_trading_days_bounds_are_inclusive():
    days = trading_days("2024-03-25", "2024-04-02")
    assert [d.date() for d in days] == [
        date(2024, 3, 25),
        date(2024, 3, 26),
        date(2024, 3, 27),
        date(2024, 3, 28),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]
    assert len(trading_days("2024-03-29", "2024-03-31")) == 0  # Good Friday + weekend


def test_shift_sessions_across_easter_weekend():
    # Thu 2024-03-28 -> (Good Friday, Sat, Sun skipped) -> Mon 2024-04-01
    assert shift_sessions("2024-03-28", 1) == T("2024-04-01")
    assert shift_sessions("2024-04-01", -1) == T("2024-03-28")
    assert shift_sessions("2024-03-28", 2) == T("2024-04-02")
    assert shift_sessions("2024-04-02", -2) == T("2024-03-28")


def test_shift_sessions_from_a_non_session_day():
    # n = 0 snaps forward to the first session on or after the day.
    assert shift_sessions("2024-03-29", 0) == T("2024-04-01")
    assert shift_sessions("2024-03-30", 0) == T("2024-04-01")
    assert shift_sessions("2024-03-28", 0) == T("2024-03-28")
    # n < 0 counts sessions strictly before the day.
    assert shift_sessions("2024-03-30", -1) == T("2024-03-28")


def test_shift_sessions_across_multi_day_closures():
    assert shift_sessions("2012-10-26", 1) == T("2012-10-31")  # Sandy
    assert shift_sessions("2012-10-31", -1) == T("2012-10-26")
    assert shift_sessions("2001-09-10", 1) == T("2001-09-17")  # 9/11
    assert shift_sessions("2001-09-17", -1) == T("2001-09-10")


def test_shift_sessions_long_distance_matches_session_count():
    # 2024 has 252 sessions: 252 sessions after its first is the first session of 2025.
    assert shift_sessions("2024-01-02", 252) == T("2025-01-02")
    assert shift_sessions("2024-12-31", -251) == T("2024-01-02")
    for n in (1, 5, 21, 63, 500):
        back = shift_sessions(shift_sessions("2023-06-15", n), -n)
        assert back == T("2023-06-15")
