"""A book against the strategy's limits: ``constraint_violations`` (one readable sentence per
broken limit: max weight, gross and net exposure, min names, turnover) and ``may_violate``, the
loose vectorised screen that picks the books to judge one by one. ``EPS`` says what counts as
held; ``LIMIT_TOLERANCE`` is the float slack, so a limit met exactly does not read as broken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlab_assets.strategy_lab.core.spec import StrategySpec

EPS = 1e-12  # a weight below this is not held
# Float slack when judging a book against its limits (a limit met exactly must not read as broken).
LIMIT_TOLERANCE = 1e-9


def constraint_violations(weights: pd.Series, spec: StrategySpec, turnover: float | None = None) -> list[str]:
    """Readable sentences, one per violated limit (empty = compliant)."""
    c = spec.constraints
    out = []
    w = weights.fillna(0.0)
    held = w[w.abs() > EPS]
    if len(held) and held.abs().max() > c.max_weight + LIMIT_TOLERANCE:
        name = held.abs().idxmax()
        out.append(f"{name} weight {held[name]:.4f} exceeds max_weight {c.max_weight}")
    gross, net = float(w.abs().sum()), float(w.sum())
    if gross > c.gross_exposure + LIMIT_TOLERANCE:
        out.append(f"gross exposure {gross:.4f} exceeds {c.gross_exposure}")
    # Net is a limit between flat and the target: turnover blends from a flat book stay inside.
    lo, hi = sorted((0.0, c.net_exposure))
    if spec.selection.kind == "threshold":  # one side alone may take the whole gross, either sign
        lo, hi = -c.gross_exposure, c.gross_exposure
    if net < lo - LIMIT_TOLERANCE or net > hi + LIMIT_TOLERANCE:
        out.append(f"net exposure {net:.4f} outside [{lo}, {hi}]")
    if 0 < len(held) < c.min_names:
        out.append(f"{len(held)} names held < min_names {c.min_names}")
    if turnover is not None and c.max_turnover is not None and turnover > c.max_turnover + LIMIT_TOLERANCE:
        out.append(f"turnover {turnover:.4f} exceeds max_turnover {c.max_turnover}")
    return out


def may_violate(
    max_abs: np.ndarray,
    gross: np.ndarray,
    net: np.ndarray,
    n_held: np.ndarray,
    turnover: np.ndarray | None,
    spec: StrategySpec,
) -> np.ndarray:
    """Books that may break a limit of ``constraint_violations``, from each book's largest |weight|,
    Σ|w|, Σw, names held and turnover (NaN: none): a loose screen, so only these books are judged
    one by one. The slack is below ``LIMIT_TOLERANCE``: summation order cannot hide a violation."""
    c, slack = spec.constraints, 1e-10
    lo, hi = sorted((0.0, c.net_exposure))
    if spec.selection.kind == "threshold":
        lo, hi = -c.gross_exposure, c.gross_exposure
    with np.errstate(invalid="ignore"):
        flags = (max_abs > c.max_weight + slack) | (gross > c.gross_exposure + slack)
        flags |= (net < lo - slack) | (net > hi + slack) | ((n_held > 0) & (n_held < c.min_names))
        flags |= ~np.isfinite(gross) | ~np.isfinite(net)  # an inf weight: judged, never screened out
        if c.max_turnover is not None and turnover is not None:
            flags |= turnover > c.max_turnover + slack
    return flags
