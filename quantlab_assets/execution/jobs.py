"""Paper trading's schedules: orders after the supervisor's run, fills after the next open.

* ``paper_trading_after_supervision``, 19:05 New York on trading days: today's partition of every
  ``paper_book`` (orders from today's approved targets). After the daily chain (18:30) and inside
  Alpaca's market-on-open submission window (19:00-09:28). If the chain has not published today's
  approved targets yet, the step's ``upstream_complete`` check fails and nothing is sent; run it
  again (``run_key`` makes the schedule itself fire once a day; a re-run submits nothing twice).
* ``collect_fills_after_open``, 09:45 New York on trading days: asks the broker for every open
  order by its client order id and appends new fills and states to the ledger, dated today. The
  evening cycle collects the same way, so either can run first and neither records a fill twice.
  With the simulated broker this finds nothing new (its fills need the session's open from
  ``ohlcv``, ingested after the close: the evening cycle fills them).
"""

import dagster as dg
import pandas as pd

from quantlab_assets.execution.assets import GROUP
from quantlab_assets.execution.core import store
from quantlab_assets.execution.core.cycle import Cycle, collect
from quantlab_assets.execution.resources import ExecutionResource
from quantlab_assets.partitions import EXCHANGE_TIMEZONE, on_trading_days
from quantlab_assets.resources import WarehouseResource

paper_trading = dg.define_asset_job(
    "paper_trading",
    selection=dg.AssetSelection.groups(GROUP),
    description="Every strategy's paper book for a session: collect fills, reconcile, submit the next orders.",
)


@dg.op(description="Ask the broker for every open paper order by id; append new fills (idempotent).")
def collect_paper_fills(context: dg.OpExecutionContext, warehouse: WarehouseResource, execution: ExecutionResource):
    today = pd.Timestamp(context.run.tags.get("session") or pd.Timestamp.now(EXCHANGE_TIMEZONE).date())
    with warehouse.get_connection() as con:
        store.ensure_all(con)
        names = [r[0] for r in con.execute("SELECT DISTINCT strategy FROM exec_ledger ORDER BY 1").fetchall()]
        for name in names:
            cycle = Cycle(name, execution.policy(), execution.limits(), context.run.run_id)
            fills = collect(con, execution.make_broker(con, name), cycle, today)
            context.log.info(f"{name}: {fills} new fill(s) on {today.date()}")


@dg.job(description="Fills of the paper orders after the open (a re-run records nothing twice).")
def collect_fills():
    collect_paper_fills()


@dg.schedule(
    job=paper_trading,
    cron_schedule="5 19 * * 1-5",
    execution_timezone=EXCHANGE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="19:05 New York on trading days: today's paper orders (after the daily chain's approvals).",
)
def paper_trading_after_supervision(context: dg.ScheduleEvaluationContext):
    return on_trading_days(
        context,
        "no session to trade",
        lambda day: dg.RunRequest(run_key=f"paper-{day}", partition_key=day.isoformat()),
    )


@dg.schedule(
    job=collect_fills,
    cron_schedule="45 9 * * 1-5",
    execution_timezone=EXCHANGE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="09:45 New York on trading days: the fills of the orders sent for today's open.",
)
def collect_fills_after_open(context: dg.ScheduleEvaluationContext):
    return on_trading_days(
        context, "no open", lambda day: dg.RunRequest(run_key=f"fills-{day}", tags={"session": day.isoformat()})
    )


EXECUTION_JOBS: "list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition]" = [paper_trading, collect_fills]
EXECUTION_SCHEDULES = [paper_trading_after_supervision, collect_fills_after_open]
