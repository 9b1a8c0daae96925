"""The one partitioning of every handover contract: trading days (weekday partitions).

A cron schedule cannot know exchange holidays, so partitions are weekdays and the NYSE
calendar in ``common.calendar`` decides which carry data: a holiday partition materializes
with zero rows and passes its checks. ``end_offset=1`` makes today's partition exist during
the day, so the after-close schedule can fill it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg

from quantlab_assets.common import settings
from quantlab_assets.common.calendar import is_trading_day

# Deliberate choices, not accidents: per-partition check results (preview) and single-run
# backfills (beta). Silenced by message *and* by the module the warning is attributed to (ours;
# Dagster's decorator module reports the backfill_policy one), so importing this package in a
# notebook leaves every other warning, the user's own code's included, as it was.
_OURS = r"quantlab_assets(\..*)?$"
warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec.*", module=_OURS)
warnings.filterwarnings("ignore", message=r".*`allow_nonexistent_upstream_partitions`.*", module=_OURS)
warnings.filterwarnings(
    "ignore", message=r".*`backfill_policy` of function `(multi_)?asset`.*", module=r"dagster\._core\.decorator_utils$"
)

EXCHANGE_TIMEZONE = "America/New_York"
PARTITION_FMT = "%Y-%m-%d"

trading_day_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=settings.partitions_start().isoformat(),
    fmt=PARTITION_FMT,
    timezone=EXCHANGE_TIMEZONE,
    end_offset=1,
)


# The session before: state carried from D-1 (self-dependencies, previous decisions).
PREVIOUS_SESSION = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)
# D-1 and D: e.g. the decision at the close of D-1 filled at D's open.
PREVIOUS_AND_SAME_SESSION = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


def partition_dates(context) -> tuple[date, date]:
    """Calendar dates [first, last] owned by the run's partitions.

    Partition D owns D up to the day before the next weekday, so Friday owns the weekend:
    every calendar day belongs to exactly one partition.
    """
    window = context.partition_time_window
    if window.start >= window.end:
        # Dagster runs `--partition-range 2024-04-30...2024-03-01` as an empty window: refuse it
        # rather than succeed having written nothing.
        keys = context.partition_key_range
        raise ValueError(f"partition range {keys.start}...{keys.end} is reversed: the start is after the end")
    return window.start.date(), (window.end - timedelta(days=1)).date()


def weekdays_spanning(sessions: int) -> int:
    """Weekday partitions that surely contain ``sessions`` trading sessions.

    NYSE closes on at most ~10 weekdays a year (and 4 in the worst week of 2001), so 5% plus
    five weekdays of margin always covers the holidays inside the span.
    """
    return int(sessions * 1.05) + 5


def on_trading_days(
    context: dg.ScheduleEvaluationContext, holiday: str, request: Callable[[date], dg.RunRequest]
) -> dg.RunRequest | dg.SkipReason:
    """What a weekday schedule returns for its tick: ``request(day)`` on a trading session, a
    ``SkipReason`` naming the exchange holiday (and ``holiday``, what there is none of) otherwise.

    The cron fires on weekdays (it cannot know holidays); every schedule decides here, with the
    exchange calendar of ``common.calendar``, whether its day is a session.
    """
    day = context.scheduled_execution_time.date()
    if not is_trading_day(day):
        return dg.SkipReason(f"{day} is an exchange holiday: {holiday}")
    return request(day)
