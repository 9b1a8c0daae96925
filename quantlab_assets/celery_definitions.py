"""Quant Lab's definitions with the steps on Celery workers (issue 27, docs/scaling.md).

    dagster asset materialize -m quantlab_assets.celery_definitions --select 'ohlcv*' --partition-range A...B

The same assets, checks and resources as ``quantlab_assets.definitions``; only the executor
differs: each step is a Celery task on the ``dagster`` queue, run by whichever worker takes it,
so independent branches (one strategy's targets -> backtest -> supervision) run at once on
different workers. The broker and the result backend are ``QUANTLAB_CELERY_BROKER`` and
``QUANTLAB_CELERY_BACKEND`` (``scripts/redis.sh start DIR`` writes both), read by the run and by
every worker. Steps on workers need a warehouse that admits concurrent writers:
``QUANTLAB_WAREHOUSE_BACKEND=delta``. The workers load this module by name (not by a path), so
each worker can run from its own working directory.
"""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

from quantlab_assets import definitions

BROKER = "QUANTLAB_CELERY_BROKER"
BACKEND = "QUANTLAB_CELERY_BACKEND"

executor = celery_executor.configured({"broker": {"env": BROKER}, "backend": {"env": BACKEND}})

defs = dg.Definitions(
    assets=definitions.defs.assets,
    asset_checks=definitions.defs.asset_checks,
    resources=definitions.defs.resources,
    sensors=definitions.defs.sensors,
    schedules=definitions.defs.schedules,
    executor=executor,
)
