"""A qlib-shaped comparison of model kinds on the same features, labels and range (docs/models.md).

Each model is trained walk-forward by the strategies' own kernel (``strategy_lab.core.walk_forward``)
and judged two ways, as qlib's benchmark table does:

* signal: per session, IC (Pearson of score and label across names) and Rank IC (Spearman); their
  means and ICIR = mean / std of the daily values;
* portfolio: a top-k / drop-n book (qlib's ``TopkDropoutStrategy``: hold k names equally; each
  session sell the held names ranked among the worst n of held-plus-candidates, buy the best
  candidates back to k), entered at the next open and held one session (the ``fwd_ret_1``
  label), minus ``cost_bps`` per unit of traded weight; its excess over the equal-weight
  universe: annualised mean (x 252), IR (mean / std x sqrt 252) and max drawdown of the summed
  excess (qlib's ``risk_analysis`` convention: cumulative sum, not compounded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab_assets.common.calendar import SESSIONS_PER_YEAR, shift_sessions, trading_days
from quantlab_assets.feature_store.core.schema import exit_column, label_column
from quantlab_assets.strategy_lab.core.predictions import daily_ic, ic_summary
from quantlab_assets.strategy_lab.core.spec import ModelSignal
from quantlab_assets.strategy_lab.core.targets import wide_features
from quantlab_assets.strategy_lab.core.walk_forward import WalkForward, walk_forward

__all__ = ["daily_ic", "ic_summary"]  # one IC, the contract's (strategy_lab.core.predictions)
COLUMNS = [
    "model",
    "IC",
    "ICIR",
    "Rank IC",
    "Rank ICIR",
    "annualized_excess_return",
    "information_ratio",
    "max_drawdown",
]


@dataclass(frozen=True)
class Book:
    """Top-k / drop-n: ``k`` names, at most ``n_drop`` replaced per session, ``cost_bps`` per unit traded."""

    k: int = 10
    n_drop: int = 2
    cost_bps: float = 10.0


def topk_dropout_returns(score: np.ndarray, ret: np.ndarray, book: Book) -> tuple[np.ndarray, np.ndarray]:
    """Daily (return, traded weight) of the top-k / drop-n book: decided on row i's scores,
    earning row i's one-session forward return ``ret`` (NaN: 0, the name had no bar)."""
    held: list[int] = []
    rets, traded = np.zeros(len(score)), np.zeros(len(score))
    for i in range(len(score)):
        s = score[i]
        valid = np.flatnonzero(~np.isnan(s))
        key = np.where(np.isnan(s), -np.inf, s)
        free = [j for j in valid[np.argsort(-s[valid], kind="stable")] if j not in held]
        cand = free[: book.n_drop + book.k - len(held)]
        combined = sorted(held + cand, key=lambda j: -key[j])
        sell = [j for j in combined[len(combined) - book.n_drop :] if j in held] if book.n_drop else []
        keep = [j for j in held if j not in sell]
        buy = cand[: book.k - len(keep)]
        traded[i] = (len(sell) + len(buy)) / book.k
        held = keep + buy
        if held:
            rets[i] = np.nan_to_num(ret[i, held], nan=0.0).sum() / book.k
    return rets - traded * book.cost_bps / 1e4, traded


def excess_summary(excess: np.ndarray) -> dict[str, float]:
    """qlib's ``risk_analysis`` of daily excess returns: annualised mean, IR, max drawdown of the sum."""
    if len(excess) < 2:
        return {"annualized_excess_return": np.nan, "information_ratio": np.nan, "max_drawdown": np.nan}
    cum = np.cumsum(excess)
    sd = excess.std(ddof=1)
    return {
        "annualized_excess_return": float(excess.mean() * SESSIONS_PER_YEAR),
        "information_ratio": float(excess.mean() / sd * np.sqrt(SESSIONS_PER_YEAR)) if sd > 0 else np.nan,
        "max_drawdown": float((cum - np.maximum.accumulate(cum)).min()),
    }


def _wide_label(labels: pd.DataFrame, column: str, days: pd.DatetimeIndex, universe: Sequence[str]) -> np.ndarray:
    return wide_features(labels.rename(columns={column: "_y"}), ["_y"], days, universe)["_y"]


def evaluate_scores(
    score: np.ndarray, labels: pd.DataFrame, label: str, days: pd.DatetimeIndex, universe: Sequence[str], book: Book
) -> dict[str, float]:
    """The comparison's figures of one (sessions x names) score grid."""
    y = _wide_label(labels, label, days, universe)
    r1 = _wide_label(labels, label_column(1), days, universe)
    port, _ = topk_dropout_returns(score, r1, book)
    bench = np.nanmean(np.where(np.isnan(r1), np.nan, r1), axis=1)
    bench = np.nan_to_num(bench, nan=0.0)
    return {**ic_summary(score, y), **excess_summary(port - bench)}


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per model, COLUMNS
    fits: dict[str, WalkForward]


def compare_models(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    models: Mapping[str, ModelSignal],
    start,
    end,
    book: Book = Book(),
) -> Comparison:
    """Every model of ``models`` trained walk-forward on the same rows and judged on [start, end].

    ``features`` and ``labels`` are long rows from the longest training window's first session;
    every model must use the same label (the IC's reference)."""
    days = trading_days(start, end)
    universe = sorted(features["symbol"].unique())
    labels_used = {m.label for m in models.values()}
    if len(labels_used) != 1:
        raise ValueError(f"compare models on one label, got {sorted(labels_used)}")
    rows, fits = [], {}
    for name, m in models.items():
        wide = wide_features(features, m.features, days, universe)
        wf = walk_forward(features, labels, m, days, wide)
        fits[name] = wf
        rows.append({"model": name, **evaluate_scores(wf.scores, labels, m.label, days, universe, book)})
    return Comparison(pd.DataFrame(rows, columns=COLUMNS), fits)


def table_markdown(table: pd.DataFrame) -> str:
    """The comparison as a markdown table (4 decimals; returns and drawdown in percent)."""
    shown = table.copy()
    for col in ("annualized_excess_return", "max_drawdown"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.2f}%")
    for col in ("IC", "ICIR", "Rank IC", "Rank ICIR", "information_ratio"):
        shown[col] = shown[col].map(lambda v: f"{v:.4f}")
    head = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    return "\n".join([head, rule, *("| " + " | ".join(str(v) for v in r) + " |" for r in shown.to_numpy())])


# ---------------------------------------------------------------------------------------------
# Data with a planted nonlinear signal: the label depends on the product of two features, which
# no linear model of the features can see (E[y | f] is linear in no direction).


def planted_data(
    n_symbols: int = 200,
    start="2015-01-02",
    end="2019-12-31",
    n_features: int = 6,
    strength: float = 0.25,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long features (``f0``.. ``f{n-1}``, iid normal) and labels: every label horizon's return is
    ``strength * f0 * f1 * 0.01 + N(0, 0.01)`` per session (IC ~ ``strength`` for a model that
    finds the product, 0 for a linear one); exits are the sessions ``h + 1`` later."""
    rng = np.random.default_rng(seed)
    days = trading_days(start, end)
    shape = (len(days), n_symbols)
    f = rng.normal(size=(n_features, *shape))
    y = strength * f[0] * f[1] * 0.01 + rng.normal(scale=0.01, size=shape)
    symbols = np.asarray([f"P{i:03d}" for i in range(n_symbols)], dtype=object)
    date = np.repeat(days.to_numpy(), n_symbols)
    sym = np.tile(symbols, len(days))
    features = pd.DataFrame({"date": date, "symbol": sym, **{f"f{j}": f[j].ravel() for j in range(n_features)}})
    labels = pd.DataFrame({"date": date, "symbol": sym})
    for h in (1, 5, 20):
        exit_day = pd.DatetimeIndex([shift_sessions(d, h + 1) for d in days])
        labels[label_column(h)] = y.ravel()
        labels[exit_column(h)] = np.repeat(exit_day.to_numpy(), n_symbols)
    return features, labels
