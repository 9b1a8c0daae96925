"""The feature store's quality gate as the check specs of ``features`` and ``labels``.

The rules are in ``core.gate``; each asset runs them on its candidate rows before publishing
(``core.step``, write-audit-publish) and reports every result as one of these checks.
"""

import dagster as dg

from quantlab_assets.feature_store.core.gate import OHLCV_VALID
from quantlab_assets.metadata import upstream_spec
from quantlab_assets.partitions import trading_day_partitions

_OHLCV_VALID = (
    OHLCV_VALID,
    "The ohlcv rows the step computes from are valid prices (else nothing is computed or written).",
)
_FEATURE_SPECS = [
    _OHLCV_VALID,
    (
        "no_lookahead_leakage",
        "Sampled dates recomputed with every later bar perturbed: zero differences from the candidate rows.",
    ),
    (
        "incremental_equals_batch",
        "Sampled dates recomputed alone from their lookback window equal the candidate rows exactly.",
    ),
    (
        "schema_matches_preset",
        "Columns are exactly date, symbol, warm and the preset's features; no label column.",
    ),
    ("no_infinite_values", "No +/-inf in any feature."),
    ("one_row_per_symbol_and_day", "No duplicate (date, symbol) rows."),
    ("missing_rate_after_warmup", "Share of NaN per feature after warm-up within the limit."),
]
_FEATURE_WARNINGS = [
    ("history_complete", "Every row has its full lookback window (warn: ohlcv history missing)."),
]
_LABEL_SPECS = [
    _OHLCV_VALID,
    ("labels_match_prices", "Sampled labels recomputed from ohlcv opens equal the candidate ones."),
    ("no_infinite_values", "No +/-inf in any label."),
    ("one_row_per_symbol_and_day", "No duplicate (date, symbol) rows."),
]
_LABEL_WARNINGS = [
    ("labels_pending", "Labels whose exit bar is not ingested yet (warning only)."),
]


def _specs(asset: str, blocking: list[tuple[str, str]], warnings: list[tuple[str, str]]) -> list[dg.AssetCheckSpec]:
    """upstream_complete, then the blocking rules, then the warnings, each per partition."""
    return [
        upstream_spec(asset),
        *(
            dg.AssetCheckSpec(
                name, asset=asset, blocking=is_blocking, description=text, partitions_def=trading_day_partitions
            )
            for rules, is_blocking in ((blocking, True), (warnings, False))
            for name, text in rules
        ),
    ]


def features_check_specs(asset: str = "features") -> list[dg.AssetCheckSpec]:
    """The checks a feature set's step reports (``features``, or ``features_<set>``): its gate
    on the candidate rows."""
    return _specs(asset, _FEATURE_SPECS, _FEATURE_WARNINGS)


def labels_check_specs() -> list[dg.AssetCheckSpec]:
    """The checks the ``labels`` step reports: its gate on the candidate rows."""
    return _specs("labels", _LABEL_SPECS, _LABEL_WARNINGS)
