"""The feature store's warehouse tables: ``features`` (and each extra set's ``features_<name>``),
whose columns follow the preset, and ``labels``, with the label columns' names."""

from __future__ import annotations

from quantlab_assets.common.warehouse import Column, TableSchema
from quantlab_assets.feature_store.core.features import FeaturePreset

FEATURES_TABLE = "features"  # its columns follow the preset: features_schema(preset)


def features_schema(preset: FeaturePreset, table: str = FEATURES_TABLE) -> TableSchema:
    """date, symbol, warm, then the preset's features in declared order (``table``: the default
    set's ``features``, or an extra set's ``features_<name>``, see ``core/sets.py``)."""
    return TableSchema(
        name=table,
        description=f"Features of preset {preset.name!r}, one row per (date, symbol).",
        columns=(
            Column("date", "DATE", False),
            Column("symbol", "VARCHAR", False),
            Column("warm", "BOOLEAN", False, "every feature's full window lies inside the data"),
            *(Column(name, "DOUBLE") for name in preset.feature_names),
        ),
    )


HORIZONS = (1, 5, 20)


def label_column(h: int) -> str:
    """The labels column of the ``h``-session forward return (``fwd_ret_5``)."""
    return f"fwd_ret_{h}"


def exit_column(h: int) -> str:
    """The labels column of the ``h``-session exit date (``exit_date_5``)."""
    return f"exit_date_{h}"


LABELS = TableSchema(
    name="labels",
    description="Forward returns per (decision date, symbol): enter next open, exit h sessions later.",
    columns=(
        Column("date", "DATE", False, "decision date D (signal known at its close)"),
        Column("symbol", "VARCHAR", False),
        Column("entry_date", "DATE", False, "session D+1, whose open is the entry price"),
        *(
            Column(
                label_column(h),
                "DOUBLE",
                description=f"open(D+1+{h}) / open(D+1) - 1, adjusted; NULL until that bar exists",
            )
            for h in HORIZONS
        ),
        *(Column(exit_column(h), "DATE", False, f"session D+1+{h}") for h in HORIZONS),
    ),
)
