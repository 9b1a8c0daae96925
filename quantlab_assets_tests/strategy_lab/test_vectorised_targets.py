"""The vectorised targets equal the per-session implementation they replaced, bit for bit: on
property cases (random features with gaps, every selection/weighting/rebalance, turnover caps,
leavers, more than 128 names so the pairwise sums split) and on the demo strategies over the
synthetic demo universe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core.features import compute_features, load_preset
from quantlab_assets.feature_store.core.labels import compute_labels
from quantlab_assets.strategy_lab.core.construct import cross_sectional_rows
from quantlab_assets.strategy_lab.core.spec import StrategySpec, load_strategy
from quantlab_assets.strategy_lab.core.targets import compute_targets
from quantlab_assets_tests.strategy_lab import reference_targets as ref

# The per-session oracle's z-scores use pandas' std, which goes through bottleneck when it is
# installed (the dev extra brings it with empyrical-reloaded) and numpy otherwise; the kernel
# reproduces the bottleneck path, whatever is installed.
pytest.importorskip("bottleneck")
ROOT = Path(__file__).resolve().parents[2]
START, END = "2023-01-02", "2023-06-30"


def _features(n_symbols: int, seed: int, gaps: float = 0.1, ties: bool = False) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    days = trading_days(START, END)
    shape = (len(days), n_symbols)
    f = rng.normal(size=shape)
    if ties:
        f = np.round(f, 1)  # many equal scores: the tie order must match
    g = rng.normal(size=shape) * 3.0 + 1.0
    v = rng.uniform(0.05, 0.6, size=shape)
    v[rng.uniform(size=shape) < 0.05] = 0.0  # non-positive volatility takes the median
    ldv = rng.normal(15, 1, size=shape)
    cols = {"f": f, "g": g, "vol_60": v, "log_dollar_volume_20": ldv}
    for arr in cols.values():
        arr[rng.uniform(size=shape) < gaps] = np.nan
    frame = pd.DataFrame(
        {
            "date": np.repeat(days, n_symbols),
            "symbol": np.tile(symbols, len(days)),
            **{k: a.ravel() for k, a in cols.items()},
        }
    )
    frame = frame.drop(index=rng.choice(len(frame), size=len(frame) // 50, replace=False))  # missing rows
    return frame.reset_index(drop=True), symbols


def _spec(**over) -> StrategySpec:
    base = {
        "name": "t",
        "signal": {"kind": "feature", "feature": "f"},
        "selection": {"kind": "top_k", "k": 10},
        "constraints": {"max_weight": 0.15, "min_names": 5},
    }
    base.update(over)
    return StrategySpec.model_validate(base)


CASES = {
    "top_k_equal_weekly": _spec(rebalance={"frequency": "weekly"}),
    "top_k_inverse_vol_capped": _spec(
        weighting={"kind": "inverse_vol", "vol_feature": "vol_60"},
        rebalance={"frequency": "daily"},
        constraints={"max_weight": 0.12, "min_names": 5},
    ),
    "top_k_score_turnover": _spec(
        selection={"kind": "top_k", "k": 25},
        weighting={"kind": "score"},
        rebalance={"frequency": "daily"},
        constraints={"max_weight": 0.06, "min_names": 5, "max_turnover": 0.2},
    ),
    "all_score_monthly": _spec(
        selection={"kind": "all"},
        weighting={"kind": "score"},
        rebalance={"frequency": "monthly"},
        constraints={"max_weight": 0.05, "min_names": 5},
    ),
    "long_short_blend_every_n": _spec(
        signal={
            "kind": "blend",
            "direction": -1,
            "blend": [{"feature": "f", "weight": 0.7}, {"feature": "g", "weight": 0.3, "transform": "rank"}],
        },
        selection={"kind": "long_short_quantile", "quantile": 0.2},
        rebalance={"frequency": "every_n", "n": 3},
        constraints={
            "max_weight": 0.1,
            "gross_exposure": 1.0,
            "net_exposure": 0.0,
            "min_names": 5,
            "max_turnover": 0.5,
        },
    ),
    "long_short_inverse_vol_net": _spec(
        selection={"kind": "long_short_quantile", "quantile": 0.3},
        weighting={"kind": "inverse_vol"},
        rebalance={"frequency": "weekly"},
        constraints={"max_weight": 0.08, "gross_exposure": 1.5, "net_exposure": 0.5, "min_names": 5},
    ),
    "liquidity_filter_rank": _spec(
        signal={"kind": "blend", "blend": [{"feature": "g", "transform": "rank"}]},
        universe={"min_log_dollar_volume": 15.0},
        rebalance={"frequency": "daily"},
    ),
    "too_few_names_goes_flat": _spec(
        selection={"kind": "top_k", "k": 60},
        constraints={"max_weight": 0.5, "min_names": 60},
        rebalance={"frequency": "daily"},
    ),
}


def _assert_same(new, old):
    pd.testing.assert_frame_equal(new.targets, old.targets, check_exact=True)
    pd.testing.assert_series_equal(new.final_weights, old.final_weights, check_exact=True, check_names=False)
    assert new.notes == old.notes
    assert new.violations == old.violations
    assert list(new.turnover) == list(old.turnover)
    assert np.array_equal(list(new.turnover.values()), list(old.turnover.values()))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n_symbols,seed,ties", [(12, 1, False), (150, 2, False), (40, 3, True)])
def test_vectorised_equals_per_session(case, n_symbols, seed, ties):
    feats, symbols = _features(n_symbols, seed, ties=ties)
    spec = CASES[case]
    universe = symbols[:-1]  # the last name left the universe: sold at the first session
    prev = pd.Series(np.random.default_rng(seed).dirichlet(np.ones(6)) * 0.9, index=[*symbols[:5], symbols[-1]])
    new = compute_targets(feats, spec, universe, START, END, prev_weights=prev)
    old = ref.compute_targets(feats, spec, universe, START, END, prev_weights=prev)
    _assert_same(new, old)
    if case == "too_few_names_goes_flat" and n_symbols < 60:
        assert len(new.notes) > 1 and "min_names" in new.notes[0]
    else:
        assert new.targets["weight"].abs().sum() > 0  # a real book, not two empty ones


def test_cross_sectional_rows_equal_pandas_per_row():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 300)) * rng.choice([1.0, 1e3, 1e-3], size=(40, 300))
    x[rng.uniform(size=x.shape) < 0.3] = np.nan
    x[3] = 1.0  # zero dispersion: 0 everywhere
    x[4, 1:] = np.nan  # one value: NaN
    x[7] = np.round(x[7], 0)  # ties
    for transform in ("zscore", "rank"):
        rows = cross_sectional_rows(x, transform)
        for r in range(len(x)):
            expected = ref.cross_sectional(pd.Series(x[r]), transform).to_numpy()
            np.testing.assert_array_equal(rows[r], expected)


@pytest.fixture(scope="module")
def demo():
    """The demo universe's synthetic bars (50 names), features and labels over two years."""
    import yaml

    registry = yaml.safe_load((ROOT / "quantlab_assets/data_curator/symbols.yaml").read_text())
    sectors = {e["symbol"]: e.get("sector", "Unknown") for e in registry["symbols"]}
    bars = (
        SyntheticProvider(sectors=sectors)
        .fetch(sorted(sectors), pd.Timestamp("2021-06-01").date(), pd.Timestamp("2023-12-29").date())
        .bars
    )
    feats = compute_features(bars, load_preset(), "2022-01-03", "2023-12-29")
    labels = compute_labels(bars, "2022-01-03", "2023-12-29")
    return feats, labels, sorted(sectors)


# The threshold selection (trend_sma50, sma_cross_10_20) is newer than the per-session implementation.
@pytest.mark.parametrize(
    "path",
    [p for p in sorted((ROOT / "strategies").glob("*.yaml")) if p.stem not in ("trend_sma50", "sma_cross_10_20")],
    ids=lambda p: p.stem,
)
def test_demo_strategies_equal_per_session(demo, path):
    feats, _, symbols = demo
    spec = load_strategy(path)
    new = compute_targets(feats, spec, symbols, "2022-01-03", "2023-12-29")
    old = ref.compute_targets(feats, spec, symbols, "2022-01-03", "2023-12-29")
    _assert_same(new, old)


def test_model_signal_equals_per_session(demo):
    feats, labels, symbols = demo
    spec = _spec(
        signal={
            "kind": "model",
            "model": {"features": ["mom_12_1", "ret_5", "vol_60"], "train_sessions": 60, "refit_every": 10},
        },
        rebalance={"frequency": "weekly"},
    )
    new = compute_targets(feats, spec, symbols, "2022-06-01", "2022-12-30", labels=labels)
    old = ref.compute_targets(feats, spec, symbols, "2022-06-01", "2022-12-30", labels=labels)
    _assert_same(new, old)
    assert new.targets["score"].notna().any()
