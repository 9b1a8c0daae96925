"""Quant Lab's definitions with another executor, for ``bench_chain.py --executors`` only.

    dagster asset materialize -f bench/chain_executor.py --select 'ohlcv*' --partition-range A...B

``QUANTLAB_BENCH_EXECUTOR=multiprocess`` swaps the in-process executor for the multiprocess one
(``QUANTLAB_BENCH_MAX_CONCURRENT`` steps at once, default 2); ``QUANTLAB_BENCH_FORKSERVER=1``
starts its step processes from a forkserver that preloaded the definitions.
``QUANTLAB_BENCH_POOL=NAME`` puts every step in the Dagster concurrency pool NAME: every step of
the chain opens the one DuckDB file (readers too: a writer process excludes them), so with the
instance's ``concurrency: pools: default_limit: 1`` one step at a time uses the warehouse. Dagster
claims the slot before it starts the step's process, so the process start is serialised too.
Dagster 1.13 takes a pool from ``@asset(pool=...)``; to leave the asset definitions unchanged the
bench sets it on the built ops here (the production change would be ``pool=`` on the asset and
check decorators, and the pool's limit in dagster.yaml). The step processes load this same file, so
they see the same definitions.
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
    config: dict = {"max_concurrent": int(os.environ.get("QUANTLAB_BENCH_MAX_CONCURRENT", "2"))}
    if os.environ.get("QUANTLAB_BENCH_FORKSERVER"):
        # Steps fork from a server that imported the definitions once, instead of each step
        # process importing them (seconds per step on this machine).
        config["start_method"] = {"forkserver": {"preload_modules": ["quantlab_assets.definitions"]}}
    return dg.multiprocess_executor.configured(config)


POOL = os.environ.get("QUANTLAB_BENCH_POOL", "")
# Module attributes, not a second Definitions at module scope (Dagster loads exactly one).
assets = [_pooled(a, POOL) if POOL else a for a in definitions.defs.assets or []]
checks = [_pooled(c, POOL) if POOL else c for c in definitions.defs.asset_checks or []]
defs = dg.Definitions(assets=assets, asset_checks=checks, resources=definitions.defs.resources, executor=_executor())
