"""The targets step's per-day evaluation (signal quality, book statistics, the per-partition book
figures, the gate's constraint rule) equals the per-date pandas implementation it replaced, bit for
bit: that implementation is frozen below as the readable reference and both run on random targets
(shuffled rows, ties, missing scores and labels, short and constant days, NaN and over-limit
weights, more than 128 names so the pairwise sums split) and on hand-worked books."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.gates import GateResult
from quantlab_assets.feature_store.core.schema import label_column
from quantlab_assets.strategy_lab.core.construct import EPS, constraint_violations
from quantlab_assets.strategy_lab.core.evaluation import (
    average_ranks,
    book_per_day,
    book_stats,
    signal_quality,
    signal_quality_wide,
)
from quantlab_assets.strategy_lab.core.gate import targets_gate
from quantlab_assets.strategy_lab.core.spec import StrategySpec, load_strategy

ROOT = Path(__file__).resolve().parents[2]
LABEL = label_column(5)


# --- the per-date reference (the implementation as of main bc89935) -------------------------


def reference_signal_quality(targets: pd.DataFrame, labels: pd.DataFrame, horizon: int = 5) -> dict[str, float]:
    col = label_column(horizon)
    if targets.empty or labels.empty:
        targets, labels = (f.iloc[:0].astype({"date": "datetime64[us]"}) for f in (targets, labels))
    data = targets.merge(labels[["date", "symbol", col]], on=["date", "symbol"], how="inner")
    data = data.dropna(subset=["score", col])
    ics, rank_ics, precisions = [], [], []
    for _, day in data.groupby("date", sort=True):
        if len(day) < 3 or day["score"].nunique() < 2 or day[col].nunique() < 2:
            continue
        ics.append(np.corrcoef(day["score"], day[col])[0, 1])
        rank_ics.append(np.corrcoef(day["score"].rank(), day[col].rank())[0, 1])
        held = day[day["weight"] > 0]
        if len(held):
            precisions.append(float((held[col] > day[col].median()).mean()))
    ic = np.asarray(ics)
    return {
        "dates_evaluated": float(len(ics)),
        "ic_mean": float(ic.mean()) if len(ic) else float("nan"),
        "ic_ir": float(ic.mean() / ic.std(ddof=1)) if len(ic) > 1 and ic.std(ddof=1) > 0 else float("nan"),
        "rank_ic_mean": float(np.mean(rank_ics)) if rank_ics else float("nan"),
        "top_k_precision": float(np.mean(precisions)) if precisions else float("nan"),
    }


def reference_book_stats(targets: pd.DataFrame, turnover: dict) -> dict[str, float]:
    rebal = targets[targets["rebalance"]]
    held = rebal[rebal["weight"].abs() > EPS].groupby("date").size()
    gross = targets.groupby("date")["weight"].apply(lambda w: w.abs().sum())
    return {
        "rebalances": float(rebal["date"].nunique()),
        "names_held_mean": float(held.mean()) if len(held) else 0.0,
        "gross_exposure_mean": float(gross.mean()) if len(gross) else 0.0,
        "turnover_per_rebalance_mean": float(np.mean(list(turnover.values()))) if turnover else 0.0,
    }


def reference_book_per_day(targets: pd.DataFrame) -> dict[pd.Timestamp, dict]:
    return {
        day: {
            "names": int((g["weight"].abs() > EPS).sum()),
            "gross": float(g["weight"].abs().sum()),
            "rebalance": bool(g["rebalance"].iloc[0]),
        }
        for day, g in targets.groupby("date")
    }


def reference_violations(candidate: pd.DataFrame, spec: StrategySpec) -> list[dict]:
    """The gate's constraint rule: every decided book judged, one date at a time."""
    return [
        {"date": day, "violation": v}
        for day, book in candidate[candidate["rebalance"].astype(bool)].groupby("date", sort=True)
        for v in constraint_violations(book.set_index("symbol")["weight"], spec)
    ]


# --- inputs ---------------------------------------------------------------------------------


def _targets(seed: int, n_days: int = 30, n_names: int = 150) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random targets and labels: shuffled rows, tied and missing scores, days with two rows,
    constant days, labels missing or in another order and resolution."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-02", periods=n_days)
    names = [f"S{i:03d}" for i in range(n_names)]
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), n_names),
            "strategy": "s",
            "symbol": np.tile(np.asarray(names, dtype=object), n_days),
            "score": np.round(rng.normal(size=n_days * n_names), 1),  # rounding makes ties
            "weight": np.where(rng.random(n_days * n_names) < 0.1, rng.random(n_days * n_names) / 10, 0.0),
            "rebalance": np.repeat(rng.random(n_days) < 0.4, n_names),
        }
    )
    frame.loc[rng.random(len(frame)) < 0.05, "score"] = np.nan
    frame.loc[frame["date"] == days[1], "score"] = 0.5  # a constant day: not evaluated
    frame = frame[~((frame["date"] == days[2]) & (frame["symbol"] > names[1]))]  # a day with two rows
    frame.loc[rng.random(len(frame)) < 0.01, "weight"] = -0.05  # a few shorts
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    labels = frame[["date", "symbol"]].copy()
    labels[LABEL] = np.round(rng.normal(size=len(labels)), 2)
    labels.loc[rng.random(len(labels)) < 0.05, LABEL] = np.nan
    labels = labels[rng.random(len(labels)) > 0.05]  # rows without a label
    labels = labels.sort_values(["symbol", "date"]).astype({"date": "datetime64[us]"})  # as read_slice gives them
    return frame.astype({"date": "datetime64[ns]"}), labels.reset_index(drop=True)


def _same(a, b) -> bool:
    """Bit for bit, NaN equal to NaN (pickles of equal floats are equal bytes)."""
    return pickle.dumps(a) == pickle.dumps(b)


# --- the vectorised code equals the reference -------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_signal_quality_equals_per_date_reference(seed):
    targets, labels = _targets(seed)
    got, expected = signal_quality(targets, labels), reference_signal_quality(targets, labels)
    assert expected["dates_evaluated"] > 20  # the random days are evaluated, not skipped
    assert _same(got, expected)


def test_signal_quality_with_a_label_twice_or_none_equals_the_reference():
    targets, labels = _targets(5, n_days=8, n_names=20)
    twice = pd.concat([labels, labels.iloc[:7]], ignore_index=True)  # the merge repeats those rows
    for lab in (twice, labels.iloc[:0], labels[labels["date"] > targets["date"].max()]):
        assert _same(signal_quality(targets, lab), reference_signal_quality(targets, lab))
    assert _same(signal_quality(targets.iloc[:0], labels), reference_signal_quality(targets.iloc[:0], labels))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_signal_quality_on_the_grid_equals_the_reference(seed):
    """The targets step's path: scores and weights as (sessions x universe) arrays, the frame
    ``compute_targets`` makes of them read row by row; labels with gaps, NaN, extra days and names."""
    rng = np.random.default_rng(seed)
    days, universe = pd.bdate_range("2024-01-02", periods=25), [f"S{i:03d}" for i in range(140)]
    score = np.round(rng.normal(size=(len(days), len(universe))), 1)
    score[rng.random(score.shape) < 0.05] = np.nan
    score[3] = 0.25  # a constant day
    weight = np.where(rng.random(score.shape) < 0.1, 0.05, 0.0)
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), len(universe)),
            "strategy": "s",
            "symbol": np.tile(np.asarray(universe, dtype=object), len(days)),
            "score": score.ravel(),
            "weight": weight.ravel(),
            "rebalance": True,
        }
    )
    all_days = pd.bdate_range("2023-12-20", periods=40)  # labels before and after the targets' days
    labels = pd.DataFrame(
        {
            "date": np.repeat(all_days.to_numpy(), len(universe) + 2),
            "symbol": np.tile(np.asarray([*universe, "XX1", "XX2"], dtype=object), len(all_days)),
        }
    )
    labels[LABEL] = np.round(rng.normal(size=len(labels)), 2)
    labels.loc[rng.random(len(labels)) < 0.05, LABEL] = np.nan
    labels = labels[rng.random(len(labels)) > 0.05].sort_values(["symbol", "date"]).astype({"date": "datetime64[us]"})
    expected = reference_signal_quality(frame, labels)
    assert expected["dates_evaluated"] > 15
    assert _same(signal_quality_wide(score, weight, days, universe, labels), expected)
    # A (date, symbol) labelled twice: the grid cannot hold it, the frame's join repeats the row.
    inside = labels[labels["date"] == days[5]].iloc[:1]
    assert signal_quality_wide(score, weight, days, universe, pd.concat([labels, inside])) is None
    # Twice outside the targets' days: no row joins it, the grid holds the rest.
    outside = labels[labels["date"] < days[0]].iloc[:1]
    assert _same(signal_quality_wide(score, weight, days, universe, pd.concat([labels, outside])), expected)


def test_signal_quality_by_hand():
    """Two dates of four names: IC by hand, rank IC with a tie, precision against the median."""
    day1, day2 = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")
    targets = pd.DataFrame(
        {
            "date": [day1] * 4 + [day2] * 4,
            "symbol": list("ABCD") * 2,
            "score": [1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 2.0, 3.0],
            "weight": [0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.5],
            "rebalance": True,
        }
    )
    labels = targets[["date", "symbol"]].assign(**{LABEL: [0.1, 0.2, 0.3, 0.4, 0.4, 0.3, 0.2, 0.1]})
    q = signal_quality(targets, labels)
    # day 1: perfectly aligned (IC 1); day 2: scores 1,1,2,3 vs labels falling, ranks 1.5,1.5,3,4 vs 4,3,2,1.
    ic2 = np.corrcoef([1.0, 1.0, 2.0, 3.0], [0.4, 0.3, 0.2, 0.1])[0, 1]
    rank_ic2 = np.corrcoef([1.5, 1.5, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])[0, 1]
    assert q["dates_evaluated"] == 2
    assert q["ic_mean"] == pytest.approx((1.0 + ic2) / 2)
    assert q["rank_ic_mean"] == pytest.approx((1.0 + rank_ic2) / 2)
    # day 1 holds C, D (both above the median 0.25): 1; day 2 holds A (0.4 > 0.25) and D (0.1): 0.5.
    assert q["top_k_precision"] == pytest.approx(0.75)


def test_average_ranks_equal_pandas_rank_per_day():
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(size=900), 1)
    bounds = np.array([0, 1, 3, 200, 650, 900])
    expected = np.concatenate([pd.Series(x[a:b]).rank().to_numpy() for a, b in zip(bounds[:-1], bounds[1:])])
    assert np.array_equal(average_ranks(x, bounds), expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_book_figures_equal_per_date_reference(seed):
    targets, _ = _targets(seed)
    targets.loc[targets.index[:5], "weight"] = np.nan  # summed as 0, as pandas skips NaN
    turnover = {pd.Timestamp("2024-01-02"): 0.25, pd.Timestamp("2024-01-09"): 0.5}
    assert _same(book_stats(targets, turnover), reference_book_stats(targets, turnover))
    per_day = book_per_day(targets)
    assert _same(per_day, reference_book_per_day(targets))
    assert len(per_day) == targets["date"].nunique()
    empty = targets.iloc[:0]
    assert _same(book_stats(empty, {}), reference_book_stats(empty, {}))
    assert book_per_day(empty) == reference_book_per_day(empty) == {}


def test_book_figures_by_hand():
    day1, day2 = pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")
    targets = pd.DataFrame(
        {
            "date": [day2, day1, day1, day2, day1],
            "symbol": ["A", "A", "B", "B", "C"],
            "weight": [0.5, 0.25, -0.25, 0.0, 0.0],
            "rebalance": [False, True, True, False, True],
        }
    )
    assert book_per_day(targets) == {
        day1: {"names": 2, "gross": 0.5, "rebalance": True},
        day2: {"names": 1, "gross": 0.5, "rebalance": False},
    }
    stats = book_stats(targets, {day1: 0.5})
    assert (stats["rebalances"], stats["names_held_mean"], stats["gross_exposure_mean"]) == (1.0, 2.0, 0.5)


def _books(spec: StrategySpec, seed: int, n_days: int = 40, n_names: int = 150) -> pd.DataFrame:
    """Random decided and held books around ``spec``'s limits: compliant, capped exactly at the
    limit, or breaking one limit (a weight, gross, net, too few names), NaN weights, shuffled."""
    rng = np.random.default_rng(seed)
    c = spec.constraints
    names = [f"S{i:03d}" for i in range(n_names)]
    rows = []
    for i, day in enumerate(pd.bdate_range("2024-01-02", periods=n_days)):
        k = max(c.min_names, 12)
        w = np.zeros(n_names)
        held = rng.choice(n_names, size=k, replace=False)
        w[held] = min(c.max_weight, c.gross_exposure / k)
        kind = rng.integers(0, 6)
        if kind == 1:
            w[held[0]] = c.max_weight + 0.05
        elif kind == 2:
            w *= 1.5
        elif kind == 3:
            w[held[:3]] = -w[held[:3]]
        elif kind == 4:
            w[:] = 0.0
            w[held[: c.min_names - 1]] = 0.01
        elif kind == 5:
            w[rng.integers(0, n_names)] = np.nan
        rows.append(
            pd.DataFrame(
                {
                    "date": day,
                    "strategy": spec.name,
                    "symbol": names,
                    "score": 0.0,
                    "weight": w,
                    "rebalance": bool(i % 3 != 2),
                }
            )
        )
    return pd.concat(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("strategy", ["momentum_topk", "short_term_reversal", "trend_sma50", "low_volatility"])
@pytest.mark.parametrize("seed", [1, 2])
def test_gate_constraint_rule_equals_per_date_reference(strategy, seed):
    spec = _strategy(strategy)
    candidate = _books(spec, seed)
    expected = reference_violations(candidate, spec)
    assert expected, "the random books break some limits"
    rule = _rule(targets_gate(candidate, spec, sorted(set(candidate["symbol"]))), "constraint_violations_zero")
    assert rule.offending.equals(pd.DataFrame(expected, columns=["date", "violation"]))
    assert rule.figures == {"violations": float(len(expected))}
    assert (
        rule.description == f"{len(expected)} violations, e.g. {expected[0]['date'].date()}: {expected[0]['violation']}"
    )


def test_gate_judges_a_book_at_its_limit_and_one_just_over():
    """A book exactly at max_weight passes; 1e-9 over the tolerance is a violation the screen keeps."""
    spec = _strategy("momentum_topk")
    cap = spec.constraints.max_weight
    names = [f"S{i}" for i in range(10)]
    at_limit = pd.DataFrame(
        {"date": pd.Timestamp("2024-04-01"), "symbol": names, "score": 0.0, "weight": 0.1, "rebalance": True}
    )
    at_limit.loc[0, "weight"], at_limit.loc[1, "weight"] = cap, 0.1 - (cap - 0.1)
    over = at_limit.assign(date=pd.Timestamp("2024-04-02"))
    over.loc[0, "weight"] = cap + 2e-9
    candidate = pd.concat([at_limit, over])
    rule = _rule(targets_gate(candidate, spec, names), "constraint_violations_zero")
    assert set(rule.offending["date"]) == {pd.Timestamp("2024-04-02")}
    assert "S0 weight" in rule.offending["violation"].iloc[0]
    assert rule.offending.equals(pd.DataFrame(reference_violations(candidate, spec), columns=["date", "violation"]))


def _strategy(name: str) -> StrategySpec:
    return load_strategy(ROOT / "strategies" / f"{name}.yaml")


def _rule(results: list[GateResult], name: str) -> GateResult:
    return next(r for r in results if r.name == name)
