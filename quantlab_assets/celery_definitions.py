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

# A worker process that dies mid-step (OOM killer, kill -9) must not leave the run waiting: the
# step's task is acknowledged only when it ends and is put back on the queue when its process is
# lost, so another worker process runs the step again (a step replaces its slices whole, so a
# re-run is safe; a Delta commit is all or nothing). Without these, dagster-celery 0.29 records
# "finished without success or failure event" and its loop never ends (docs/scaling.md, section 7).
# The workers read the same settings from docs/celery_worker.yaml.
WORKER_LOSS = {"task_acks_late": True, "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1}

executor = celery_executor.configured(
    {"broker": {"env": BROKER}, "backend": {"env": BACKEND}, "config_source": WORKER_LOSS}
)

defs = dg.Definitions(
    assets=definitions.defs.assets,
    asset_checks=definitions.defs.asset_checks,
    resources=definitions.defs.resources,
    sensors=definitions.defs.sensors,
    schedules=definitions.defs.schedules,
    executor=executor,
)
