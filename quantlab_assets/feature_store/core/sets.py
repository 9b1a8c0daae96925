"""Feature sets that coexist: the default preset (table and asset ``features``) and any number
of extra presets beside it, each its own table and asset ``features_<name>``.

Why an asset per set (not added columns, not a long table): a set is materialized, audited
(zero leakage, incremental = batch, schema) and versioned on its own, so adding one, or changing
one, never rewrites or drops a stored row of another: the default features' checksums stay as
they were. The lineage shows each set as a node and each strategy's edges to the sets it reads.
Wide tables keep the readers' shape (one column per feature); a strategy or the research API
reads the columns it needs from each set's table and joins them on (date, symbol).

A feature name means one column across all sets: a set declaring a name another set declares is
refused (a strategy names features, never sets).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse import read_slice
from quantlab_assets.feature_store.core.preset import FeaturePreset, PresetError, load_preset
from quantlab_assets.feature_store.core.schema import FEATURES_TABLE, features_schema

PACKAGED_SETS_DIR = Path(__file__).resolve().parents[1] / "presets" / "sets"
SET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class FeatureSet:
    """One preset and where it lives: its table and its asset (the same name)."""

    preset: FeaturePreset
    table: str

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def asset(self) -> str:
        return self.table

    @property
    def schema(self):
        return features_schema(self.preset, self.table)


def default_set(preset: FeaturePreset) -> FeatureSet:
    return FeatureSet(preset, FEATURES_TABLE)


def load_feature_sets(default: FeaturePreset, directory: str | Path | None = None) -> tuple[FeatureSet, ...]:
    """The default set, then one set per ``*.yaml`` of ``directory`` (default: the packaged
    ``presets/sets``), in file-name order. Raises PresetError naming the file and the field."""
    folder = Path(directory) if directory is not None else PACKAGED_SETS_DIR
    if directory is not None and not folder.is_dir():
        raise PresetError(f"{folder}: feature sets folder does not exist (QUANTLAB_FEATURE_SETS)")
    sets = [default_set(default)]
    owner = {name: default.name for name in default.feature_names}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        preset = load_preset(path)
        if preset.name != path.stem or not SET_NAME.match(preset.name):
            raise PresetError(
                f"{path}: field 'name': {preset.name!r} must equal the file name {path.stem!r} "
                "(lower_snake_case, at most 40 characters)"
            )
        if preset.name == default.name or any(s.name == preset.name for s in sets):
            raise PresetError(f"{path}: field 'name': feature set {preset.name!r} is declared twice")
        for name in preset.feature_names:
            if name in owner:
                raise PresetError(
                    f"{path}: feature {name!r}: field 'name': already declared by feature set "
                    f"{owner[name]!r}; a feature name means one column across all sets: rename it"
                )
            owner[name] = preset.name
        sets.append(FeatureSet(preset, f"{FEATURES_TABLE}_{preset.name}"))
    return tuple(sets)


def all_feature_names(sets: Sequence[FeatureSet]) -> set[str]:
    return {name for s in sets for name in s.preset.feature_names}


def sets_for(sets: Sequence[FeatureSet], features: Sequence[str]) -> dict[str, list[str]]:
    """{table: the requested features it holds}, in set order; an unknown feature is a KeyError
    naming it."""
    owner = {name: s.table for s in sets for name in s.preset.feature_names}
    unknown = [f for f in features if f not in owner]
    if unknown:
        raise KeyError(f"features {unknown} are in no feature set ({', '.join(s.name for s in sets)})")
    out: dict[str, list[str]] = {}
    for s in sets:
        cols = [f for f in dict.fromkeys(features) if owner[f] == s.table]
        if cols:
            out[s.table] = cols
    return out


def read_features(
    con: duckdb.DuckDBPyConnection,
    sets: Sequence[FeatureSet],
    features: Sequence[str],
    start,
    end,
    symbols: Sequence[str] | None = None,
    ensure: bool = True,
) -> tuple[pd.DataFrame, dict[str, pd.Index]]:
    """date, symbol and ``features`` in [start, end], read from the sets that hold them and joined
    on (date, symbol) (inner: a row is complete in every set it reads, or absent); and each set's
    own dates (so a missing set is named). No feature requested: the default set's keys."""
    by_table = sets_for(sets, features) or {sets[0].table: []}
    schemas = {s.table: s.schema for s in sets}
    frame: pd.DataFrame | None = None
    dates: dict[str, pd.Index] = {}
    for table, cols in by_table.items():
        part = read_slice(con, schemas[table], start, end, ["date", "symbol", *cols], symbols, ensure=ensure)
        dates[table] = pd.Index(part["date"].unique())
        frame = part if frame is None else frame.merge(part, on=["date", "symbol"], how="inner")
    assert frame is not None
    return frame.sort_values(["symbol", "date"], kind="mergesort").reset_index(drop=True), dates
