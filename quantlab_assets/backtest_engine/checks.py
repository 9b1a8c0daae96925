"""The backtest's gate as check specs of its multi-asset: accounting identity every day, no trade
before its decision, finite KPIs, and each asset's ``upstream_complete``.

The rules run in the core on the candidate rows before they are published
(``core/step.py``); the step reports their results, so what the UI shows is what the audit
decided about the rows it published or refused.
"""

import dagster as dg

from quantlab_assets.metadata import upstream_spec
from quantlab_assets.partitions import trading_day_partitions


def _blocking(name: str, asset: dg.AssetKey, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=asset, blocking=True, partitions_def=trading_day_partitions, description=description
    )


def backtest_check_specs(backtest: dg.AssetKey, kpis: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks of ``<s>/<s>_backtest`` and ``<s>/<s>_backtest_kpis``, all blocking."""
    return [
        upstream_spec(backtest),
        _blocking("accounting_identity", backtest, "equity = cash + Σ shares × price at every close"),
        _blocking("no_trade_before_decision", backtest, "every fill is dated after the close that decided it"),
        upstream_spec(kpis),
        _blocking("kpis_finite", kpis, "level KPIs are finite once there are two sessions"),
    ]
