"""The feature profile (seed: missing / correlation / drift), as numbers and as markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.artifacts import markdown_table


@dataclass
class FeatureProfile:
    rows: int
    warm_rows: int
    missing: pd.Series  # share of NaN per feature among warm rows
    correlated: pd.DataFrame  # feature_a, feature_b, rho with |rho| above the threshold
    drift: pd.DataFrame  # feature, psi, ks, reference_rows, current_rows
    corr_threshold: float
    psi_threshold: float


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` on reference deciles.

    PSI = Σ (c_i - r_i) ln(c_i / r_i); bin shares are floored at 1e-4 so empty bins stay finite.
    Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if len(ref) < bins or len(cur) < bins:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two ECDFs."""
    ref = np.sort(reference[np.isfinite(reference)])
    cur = np.sort(current[np.isfinite(current)])
    if not len(ref) or not len(cur):
        return float("nan")
    grid = np.concatenate([ref, cur])
    gap = np.searchsorted(ref, grid, side="right") / len(ref) - np.searchsorted(cur, grid, side="right") / len(cur)
    return float(np.max(np.abs(gap)))


def profile_features(
    current: pd.DataFrame,
    feature_names: Sequence[str],
    reference: pd.DataFrame | None = None,
    corr_threshold: float = 0.95,
    psi_threshold: float = 0.25,
    max_rows: int = 200_000,
) -> FeatureProfile:
    """Missing rates and correlated pairs of ``current`` (warm rows), drift against ``reference``.

    Large inputs are sampled deterministically (every k-th row) to bound the cost.
    """
    # Row positions, not a copy of the warm rows (a 10-year frame is half a gigabyte).
    warm = (
        np.flatnonzero(current["warm"].to_numpy(dtype=bool)) if "warm" in current.columns else np.arange(len(current))
    )
    step = max(1, len(warm) // max_rows)
    names = list(feature_names)
    sample = current.iloc[warm[::step], [current.columns.get_loc(name) for name in names]]
    missing = (
        pd.Series([float(current[name].isna().to_numpy()[warm].sum()) / len(warm) for name in names], index=names)
        if len(warm)
        else pd.Series(0.0, index=feature_names)
    )
    corr = sample.corr().to_numpy() if len(sample) > 2 else np.full((len(feature_names),) * 2, np.nan)
    pairs = []
    for i, a in enumerate(feature_names):
        for j in range(i + 1, len(feature_names)):
            rho = corr[i, j]
            if np.isfinite(rho) and abs(rho) >= corr_threshold:
                pairs.append({"feature_a": a, "feature_b": feature_names[j], "rho": round(float(rho), 4)})
    correlated = pd.DataFrame(pairs, columns=["feature_a", "feature_b", "rho"])
    drift_rows = []
    if reference is not None and len(reference):
        ref_warm = reference[reference["warm"]] if "warm" in reference.columns else reference
        ref_sample = ref_warm.iloc[:: max(1, len(ref_warm) // max_rows)]
        for name in feature_names:
            r, c = ref_sample[name].to_numpy(float), sample[name].to_numpy(float)
            drift_rows.append(
                {
                    "feature": name,
                    "psi": round(psi(r, c), 4),
                    "ks": round(ks_statistic(r, c), 4),
                    "reference_rows": int(np.isfinite(r).sum()),
                    "current_rows": int(np.isfinite(c).sum()),
                }
            )
    drift = pd.DataFrame(drift_rows, columns=["feature", "psi", "ks", "reference_rows", "current_rows"])
    return FeatureProfile(len(current), len(warm), missing, correlated, drift, corr_threshold, psi_threshold)


def profile_markdown(profile: FeatureProfile, title: str, reference_label: str) -> str:
    miss = profile.missing.sort_values(ascending=False)
    lines = [
        f"# Feature profile: {title}",
        "",
        f"{profile.rows} rows, {profile.warm_rows} past warm-up. Features: {len(miss)}.",
        "",
        "## Missing (share of NaN after warm-up)",
        "",
        markdown_table(miss.rename("missing").reset_index().rename(columns={"index": "feature"}).head(10)),
        "",
        f"## Highly correlated pairs (|rho| ≥ {profile.corr_threshold})",
        "",
        markdown_table(profile.correlated, max_rows=30),
        "",
        f"## Drift against {reference_label} (PSI > {profile.psi_threshold} flagged)",
        "",
    ]
    if profile.drift.empty:
        lines.append("_no reference window available yet_")
    else:
        flagged = profile.drift[profile.drift["psi"] > profile.psi_threshold]
        lines += [
            f"{len(flagged)} of {len(profile.drift)} features drifted.",
            "",
            markdown_table(profile.drift.sort_values("psi", ascending=False), max_rows=15),
        ]
    return "\n".join(lines) + "\n"
