"""The strategy lab's gate as check specs on each targets asset.

The rules (``core.gate``) run on the candidate rows before they are published, inside the
targets step (write-audit-publish), so the checks are declared on the asset itself and the
UI shows the audit of exactly the rows that were, or were not, published.
"""

import dagster as dg

from quantlab_assets.metadata import upstream_spec
from quantlab_assets.partitions import trading_day_partitions
from quantlab_assets.strategy_lab.core.gate import TARGETS_RULES, TARGETS_WARNINGS
from quantlab_assets.strategy_lab.core.predictions import PREDICTIONS_RULES


def targets_check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """``upstream_complete`` and every targets gate rule, blocking, then the warnings, per partition."""
    return [
        upstream_spec(key),
        *(
            dg.AssetCheckSpec(name, asset=key, blocking=True, description=d, partitions_def=trading_day_partitions)
            for name, d in TARGETS_RULES.items()
        ),
        *(
            dg.AssetCheckSpec(name, asset=key, blocking=False, description=d, partitions_def=trading_day_partitions)
            for name, d in TARGETS_WARNINGS.items()
        ),
    ]


def predictions_check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """``upstream_complete`` and every predictions gate rule, blocking, per partition."""
    return [
        upstream_spec(key),
        *(
            dg.AssetCheckSpec(name, asset=key, blocking=True, description=d, partitions_def=trading_day_partitions)
            for name, d in PREDICTIONS_RULES.items()
        ),
    ]
