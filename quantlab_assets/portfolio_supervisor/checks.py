"""The supervisor's gate, declared on its multi-asset: the step audits its candidate rows with
these rules before publishing (write-audit-publish), so what the UI shows is what was published."""

import dagster as dg

from quantlab_assets.metadata import upstream_spec
from quantlab_assets.partitions import trading_day_partitions
from quantlab_assets.portfolio_supervisor.core.gate import (
    APPROVED_TARGETS_WITHIN_RULES,
    DAY_APPROVED,
    EVERY_REJECTION_HAS_REASON,
)


def supervision_check_specs(approvals: dg.AssetKey, approved_targets: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """Each asset's checks: its inputs are complete, and its own blocking rule."""
    return [
        upstream_spec(approvals),
        dg.AssetCheckSpec(
            EVERY_REJECTION_HAS_REASON,
            asset=approvals,
            blocking=True,
            partitions_def=trading_day_partitions,
            description="no rejected or needs_review day without a written reason",
        ),
        dg.AssetCheckSpec(
            DAY_APPROVED,
            asset=approvals,
            blocking=False,
            partitions_def=trading_day_partitions,
            description="the supervisor approved the day's book (warn: a rejected or needs_review day, with reasons)",
        ),
        upstream_spec(approved_targets),
        dg.AssetCheckSpec(
            APPROVED_TARGETS_WITHIN_RULES,
            asset=approved_targets,
            blocking=True,
            partitions_def=trading_day_partitions,
            description="every tradable book passes the hard risk limits",
        ),
    ]
