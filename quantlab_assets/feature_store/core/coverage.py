"""Where each feature can have a value at all (``definable``) and the share missing there
(``missing_rates``): the statistics the features gate judges. A cross-sectional feature of a
date with too few distinct source values is NaN by definition, not missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.feature_store.core.kinds import KINDS
from quantlab_assets.feature_store.core.preset import FeaturePreset


def distinct_per_date(dates: pd.Series, values: np.ndarray, at_least: int) -> np.ndarray:
    """Per row, whether its date has at least ``at_least`` distinct finite ``values``
    (``groupby(date).nunique() >= at_least`` broadcast to the rows, without a group per date);
    False on a row without a date."""
    codes, uniques = pd.factorize(dates)
    finite = np.isfinite(values) & (codes >= 0)
    if at_least <= 2:  # one value: any finite; two: the smallest differs from the largest
        groups = pd.Series(values[finite]).groupby(codes[finite])
        enough = groups.count() >= at_least if at_least <= 1 else groups.min() != groups.max()
        per_date = np.zeros(len(uniques), dtype=bool)
        per_date[enough.index.to_numpy()] = enough.to_numpy()
        return (codes >= 0) & per_date[np.maximum(codes, 0)] if len(per_date) else np.zeros(len(codes), dtype=bool)
    c, x = codes[finite], values[finite]
    order = np.lexsort((x, c))
    c, x = c[order], x[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (x[1:] != x[:-1])
    counts = np.bincount(c[new], minlength=len(uniques))
    return (codes >= 0) & (counts[np.maximum(codes, 0)] >= at_least if len(counts) else False)


def _definable_masks(frame: pd.DataFrame, preset: FeaturePreset) -> dict[str, np.ndarray]:
    """``definable``'s column of each cross-sectional feature (the others are True everywhere)."""
    masks: dict[str, np.ndarray] = {}
    distinct: dict[tuple[str, int], np.ndarray] = {}  # several features share a source
    for spec in preset.features:
        kind = KINDS[spec.kind]
        if not kind.cross_sectional:
            continue
        source = frame[spec.source_feature].to_numpy(np.float64)
        key = (spec.source_feature, kind.min_distinct)
        if key not in distinct:
            distinct[key] = distinct_per_date(frame["date"], source, kind.min_distinct)
        masks[spec.name] = np.isfinite(source) & distinct[key]
    return masks


def definable(frame: pd.DataFrame, preset: FeaturePreset) -> pd.DataFrame:
    """Where each feature of ``frame`` (``compute_features`` rows) can have a value at all.

    A per-symbol feature can on every row. A cross-sectional feature can only where its
    source has a value and that date has at least ``min_distinct`` distinct source values
    among the symbols: with one name (a single stock, an index ETF, a future) a z-score is
    NaN by definition, not missing.
    """
    out = pd.DataFrame(True, index=frame.index, columns=preset.feature_names)
    for name, mask in _definable_masks(frame, preset).items():
        out[name] = mask
    return out


def missing_rates(frame: pd.DataFrame, preset: FeaturePreset, rows: np.ndarray | None = None) -> pd.Series:
    """Share of NaN per feature among the rows where it can have a value (``definable``);
    0 for a feature that can have none in ``frame``. ``rows``: a boolean mask of the rows to
    judge (all when None), so a caller never copies the whole frame to select them."""
    sources = list(dict.fromkeys(s.source_feature for s in preset.features if KINDS[s.kind].cross_sectional))
    judged = frame if rows is None else frame.loc[rows, ["date", *sources]]
    masks = _definable_masks(judged, preset)
    rates = {}
    for name in preset.feature_names:
        missing = frame[name].isna().to_numpy()
        if rows is not None:
            missing = missing[rows]
        can = masks.get(name)
        if can is None:
            rates[name] = int(missing.sum()) / max(len(missing), 1)
        else:
            rates[name] = int((missing & can).sum()) / max(int(can.sum()), 1)
    return pd.Series(rates, index=preset.feature_names, dtype=float)
