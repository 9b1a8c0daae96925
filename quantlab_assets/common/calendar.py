"""NYSE trading calendar: weekdays minus exchange holidays and one-off closures.

Dagster partitions are weekdays (a cron schedule cannot know holidays); this calendar
decides which of those weekdays are expected to carry data, so a holiday never counts
as missing data. Rules follow the NYSE holiday schedule since 1990; one-off closures
(national days of mourning, 9/11, hurricane Sandy) are listed explicitly.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
from dateutil.relativedelta import MO
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)
from pandas.tseries.offsets import DateOffset

# Sessions in a year, for annualising daily figures (KPIs, carry, volatility features).
SESSIONS_PER_YEAR = 252

# A Saturday New Year's Day is not observed on the Friday before (NYSE rule 7.2).
_NEW_YEAR = Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday)
_MLK = Holiday("Martin Luther King Jr. Day", start_date="1998-01-01", month=1, day=1, offset=DateOffset(weekday=MO(3)))
_JUNETEENTH = Holiday("Juneteenth", start_date="2022-01-01", month=6, day=19, observance=nearest_workday)
_INDEPENDENCE = Holiday("Independence Day", month=7, day=4, observance=nearest_workday)
_CHRISTMAS = Holiday("Christmas Day", month=12, day=25, observance=nearest_workday)

SPECIAL_CLOSURES = tuple(
    pd.Timestamp(d)
    for d in (
        "1994-04-27",  # President Nixon
        "2001-09-11",
        "2001-09-12",
        "2001-09-13",
        "2001-09-14",  # 9/11
        "2004-06-11",  # President Reagan
        "2007-01-02",  # President Ford
        "2012-10-29",
        "2012-10-30",  # Hurricane Sandy
        "2018-12-05",  # President G.H.W. Bush
        "2025-01-09",  # President Carter
    )
)


class NYSEHolidayCalendar(AbstractHolidayCalendar):
    rules = [
        _NEW_YEAR,
        _MLK,
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        _JUNETEENTH,
        _INDEPENDENCE,
        USLaborDay,
        USThanksgivingDay,
        _CHRISTMAS,
    ]


@lru_cache(maxsize=1)
def _holidays_1990_2100() -> pd.DatetimeIndex:
    rules = NYSEHolidayCalendar().holidays(start="1990-01-01", end="2100-12-31")
    # nearest_workday moves a Saturday 1 Jan back into December; NYSE does not close then.
    rules = rules[~((rules.month == 12) & (rules.day == 31))]
    return rules.union(pd.DatetimeIndex(SPECIAL_CLOSURES)).sort_values()


def holidays(start: date | str, end: date | str) -> pd.DatetimeIndex:
    """Exchange holidays and closures falling on weekdays in [start, end]."""
    h = _holidays_1990_2100()
    h = h[(h >= pd.Timestamp(start)) & (h <= pd.Timestamp(end))]
    return h[h.dayofweek < 5]


@lru_cache(maxsize=1)
def _all_sessions() -> pd.DatetimeIndex:
    days = pd.bdate_range("1990-01-01", "2100-12-31")
    return days.difference(_holidays_1990_2100())


def trading_days(start: date | str, end: date | str) -> pd.DatetimeIndex:
    """Sessions in [start, end] inclusive, as midnight timestamps (1990..2100)."""
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if lo.year < 1990 or hi.year > 2100:
        raise ValueError(f"the calendar covers 1990..2100, asked for {lo.date()}..{hi.date()}")
    sessions = _all_sessions()
    return sessions[sessions.searchsorted(lo, "left") : sessions.searchsorted(hi, "right")]


def is_trading_day(day: date | str) -> bool:
    ts = pd.Timestamp(day).normalize()
    return ts.dayofweek < 5 and ts not in _holidays_1990_2100()


def shift_sessions(day: date | str, n: int) -> pd.Timestamp:
    """The session ``n`` sessions after (n > 0) or before (n < 0) ``day``.

    ``day`` itself need not be a session; n = 0 returns the first session on or after it.
    """
    ts = pd.Timestamp(day).normalize()
    span = pd.Timedelta(days=abs(n) * 2 + 10)
    if n >= 0:
        days = trading_days(ts, ts + span)
        return days[n]
    days = trading_days(ts - span, ts - pd.Timedelta(days=1))
    return days[n]


def session_index(days: pd.DatetimeIndex, origin: date | str) -> np.ndarray:
    """Number of sessions between ``origin``'s first session and each day (a session)."""
    sessions = _all_sessions()
    base = sessions.searchsorted(pd.Timestamp(origin).normalize(), "left")
    pos = sessions.get_indexer(pd.DatetimeIndex(days))
    return np.where(pos >= 0, pos - base, -1)
