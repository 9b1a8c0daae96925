"""The execution gate, declared on ``paper_book``: the step audits its rows with these rules before
publishing, so what the UI shows is what was published."""

import dagster as dg

from quantlab_assets.execution.core.gate import CASH_NOT_NEGATIVE, DRIFT_PARTS_SUM, RECONCILED
from quantlab_assets.metadata import upstream_spec
from quantlab_assets.partitions import trading_day_partitions

DESCRIPTIONS = {
    RECONCILED: "ledger and broker agree (positions and cash, within the stated tolerance) at the start and end "
    "of every cycle; a break halts new orders until a person resolves it",
    DRIFT_PARTS_SUM: "the daily drift against the reference backtest equals the sum of its parts",
    CASH_NOT_NEGATIVE: "the paper account's cash never goes below 0",
}


def execution_check_specs(book: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        upstream_spec(book),
        *(
            dg.AssetCheckSpec(name, asset=book, blocking=True, partitions_def=trading_day_partitions, description=d)
            for name, d in DESCRIPTIONS.items()
        ),
    ]
