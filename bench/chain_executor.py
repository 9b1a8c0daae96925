"""Quant Lab's definitions with another executor, for ``bench_chain.py --executors`` only.

    dagster asset materialize -f bench/chain_executor.py --select 'ohlcv*' --partition-range A...B

``QUANTLAB_BENCH_EXECUTOR=multiprocess`` swaps the in-process executor for the multiprocess one
(``QUANTLAB_BENCH_MAX_CONCURRENT`` steps at once, default 2). ``QUANTLAB_BENCH_POOL=NAME`` puts every
step in the Dagster concurrency pool NAME: every step of the chain opens the one DuckDB file
(readers too: a writer process excludes them), so with the instance's ``concurrency: pools:
default_limit: 1`` the pool lets one step at a time hold the warehouse while the others start
their processes. Dagster 1.13 takes a pool from ``@asset(pool=...)`` only; to leave the asset
definitions unchanged the bench sets it on the built ops here (what the production change would
be: ``pool=`` on the asset and check decorators, and the instance's pool limit in dagster.yaml).
The step processes load this same file, so they see the same definitions.
"""

from __future__ import annotations

import os

import dagster as dg

from quantlab_assets import definitions


def _pooled(definition, pool: str):
    """The definition with its op in ``pool`` (Dagster reads the op's pool when it plans the run)."""
    node = getattr(definition, "node_def", None)
    if isinstance(node, dg.OpDefinition):
        node._pool = pool  # no public setter: the decorators' pool= argument is the public way
    return definition


def _executor() -> dg.ExecutorDefinition:
    if os.environ.get("QUANTLAB_BENCH_EXECUTOR", "in_process") == "in_process":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured(
        {"max_concurrent": int(os.environ.get("QUANTLAB_BENCH_MAX_CONCURRENT", "2"))}
    )


POOL = os.environ.get("QUANTLAB_BENCH_POOL", "")
# Module attributes, not a second Definitions at module scope (Dagster loads exactly one).
assets = [_pooled(a, POOL) if POOL else a for a in definitions.defs.assets or []]
checks = [_pooled(c, POOL) if POOL else c for c in definitions.defs.asset_checks or []]
defs = dg.Definitions(assets=assets, asset_checks=checks, resources=definitions.defs.resources, executor=_executor())
