"""Jobs and schedules: the daily chain after the close, and the refresh of recent labels."""

import dagster as dg

from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.partitions import EXCHANGE_TIMEZONE, on_trading_days

LABELS_REFRESH_SESSIONS = 30

daily_chain = dg.define_asset_job(
    "daily_chain",
    # Paper trading has its own schedule (quantlab_assets/execution/jobs.py), inside Alpaca's order window.
    selection=dg.AssetSelection.assets("ohlcv").downstream() - dg.AssetSelection.groups("execution"),
    description="The whole production chain for trading-day partitions: ohlcv, features, labels, "
    "every strategy's targets, backtest and approvals.",
)

labels_refresh = dg.define_asset_job(
    "labels_refresh",
    selection=dg.AssetSelection.assets("labels"),
    description="Recomputes the labels of recent sessions, whose forward returns become known "
    "as new bars arrive (a label of D needs the bar of D+1+h).",
)


@dg.schedule(
    job=daily_chain,
    cron_schedule="30 18 * * 1-5",
    execution_timezone=EXCHANGE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="18:30 New York on weekdays: today's partition of the whole chain; holidays are skipped.",
)
def daily_chain_after_close(context: dg.ScheduleEvaluationContext):
    return on_trading_days(
        context,
        "no session to process",
        lambda day: dg.RunRequest(run_key=f"daily-{day}", partition_key=day.isoformat()),
    )


@dg.schedule(
    job=labels_refresh,
    cron_schedule="0 19 * * 1-5",
    execution_timezone=EXCHANGE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"19:00 New York on weekdays: labels of the last {LABELS_REFRESH_SESSIONS} sessions, one run.",
)
def labels_refresh_after_close(context: dg.ScheduleEvaluationContext):
    return on_trading_days(context, "no new bars", _labels_refresh_request)


def _labels_refresh_request(day) -> dg.RunRequest:
    start = shift_sessions(day, -LABELS_REFRESH_SESSIONS).date()
    return dg.RunRequest(
        run_key=f"labels-{day}",
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": day.isoformat(),
        },
    )


SCHEDULES = [daily_chain_after_close, labels_refresh_after_close]
JOBS = [daily_chain, labels_refresh]
