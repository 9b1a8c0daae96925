"""Model kinds of ``signal.kind: model``: typed parameters, estimators against scikit-learn,
preprocessing fitted on the training rows only, LightGBM bit-identical, and the leakage proof
(perturb every bar after a refit date: the fits and the predictions up to it do not change)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common.calendar import trading_days
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.feature_store.core.features import compute_features, load_preset
from quantlab_assets.feature_store.core.labels import compute_labels
from quantlab_assets.strategy_lab.core.models import Preprocess, elastic_net_coef, fit_model, fit_preprocess, ridge_coef
from quantlab_assets.strategy_lab.core.spec import (
    ElasticNetModel,
    LightGBMModel,
    RidgeModel,
    StrategyError,
    StrategySpec,
    load_strategy,
)
from quantlab_assets.strategy_lab.core.targets import compute_targets, wide_features
from quantlab_assets.strategy_lab.core.walk_forward import last_refit, training_grid, training_set, walk_forward

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ["mom_12_1", "ret_5", "vol_60", "rsi_14"]


def _spec(model: dict) -> StrategySpec:
    return StrategySpec.model_validate(
        {
            "name": "m",
            "signal": {"kind": "model", "model": model},
            "selection": {"kind": "top_k", "k": 10},
            "constraints": {"max_weight": 0.15, "min_names": 5},
        }
    )


# ---------------------------------------------------------------------------------------------
# The spec: a discriminated union on ``kind``, strict.


def test_kind_defaults_to_ridge_and_each_kind_has_its_own_parameters():
    assert isinstance(_spec({"features": ["ret_5"]}).signal.model, RidgeModel)
    gbm = _spec({"kind": "lightgbm", "features": ["ret_5"], "num_leaves": 7}).signal.model
    assert isinstance(gbm, LightGBMModel) and gbm.num_leaves == 7 and gbm.seed == 0
    enet = _spec({"kind": "elastic_net", "features": ["ret_5"], "l1_ratio": 1.0}).signal.model
    assert isinstance(enet, ElasticNetModel) and enet.l1_ratio == 1.0


@pytest.mark.parametrize(
    "model,needle",
    [
        ({"kind": "lightgbm", "features": ["ret_5"], "alpha": 1.0}, "alpha"),  # ridge's parameter, not the trees'
        ({"kind": "ridge", "features": ["ret_5"], "num_leaves": 7}, "num_leaves"),
        ({"kind": "xgboost", "features": ["ret_5"]}, "xgboost"),
        ({"kind": "lightgbm", "features": ["ret_5"], "num_leaves": 1}, "num_leaves"),
        ({"kind": "elastic_net", "features": ["ret_5"], "l1_ratio": 1.5}, "l1_ratio"),
        ({"kind": "ridge", "features": ["ret_5"], "clip_quantile": 0.5}, "clip_quantile"),
        ({"kind": "lightgbm", "features": ["ret_5", "vol_20", "ret_5"]}, "listed twice"),
        ({"kind": "ridge", "features": []}, "features"),
    ],
)
def test_a_bad_model_is_refused_naming_the_file_and_field(tmp_path, model, needle):
    import yaml

    path = tmp_path / "m.yaml"
    spec = {"name": "m", "signal": {"kind": "model", "model": model}, "selection": {"kind": "top_k", "k": 10}}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(StrategyError) as exc:
        load_strategy(path)
    assert str(path) in str(exc.value) and needle in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Estimators against scikit-learn (test-only reference).


def _regression(n=2000, p=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = x @ np.array([0.5, -0.3, 0.0, 0.0, 0.2, 0.0][:p]) + rng.normal(size=n)
    return x, y


def test_a_singular_unpenalised_ridge_gives_the_least_squares_fit_not_an_error():
    x, y = _regression(p=3)
    x[:, 2] = 0.0  # a constant input: z-scores of a feature with no dispersion are all 0
    coef = ridge_coef(x, y, 0.0)
    np.testing.assert_allclose(coef[:2], np.linalg.lstsq(x[:, :2], y, rcond=None)[0], atol=1e-10)
    assert abs(coef[2]) < 1e-12


def test_ridge_equals_scikit_learn():
    from sklearn.linear_model import Ridge

    x, y = _regression()
    ref = Ridge(alpha=0.3 * len(x), fit_intercept=False, solver="cholesky").fit(x, y).coef_
    np.testing.assert_allclose(ridge_coef(x, y, 0.3), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha,l1_ratio", [(0.01, 0.5), (0.05, 1.0), (0.1, 0.1), (0.0, 0.5)])
def test_elastic_net_equals_scikit_learn(alpha, l1_ratio):
    from sklearn.linear_model import ElasticNet, LinearRegression

    x, y = _regression(seed=3)
    ours = elastic_net_coef(x, y, alpha, l1_ratio, max_iter=100_000, tol=1e-12)
    if alpha == 0.0:
        ref = LinearRegression(fit_intercept=False).fit(x, y).coef_
    else:
        ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14, max_iter=100_000)
        ref = ref.fit(x, y).coef_
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    if alpha == 0.05:  # the lasso drops the inputs that carry nothing: exactly zero
        assert (ours[[2, 3, 5]] == 0.0).all() and (ours[[0, 1]] != 0.0).all()


def test_preprocessing_is_fitted_on_the_training_rows_by_hand():
    m = RidgeModel(features=("a", "b"), clip_quantile=0.1, missing="median")
    x = np.column_stack([np.arange(1.0, 101.0), np.r_[np.arange(1.0, 100.0), np.nan]])
    prep = fit_preprocess(x, m)
    # numpy's linear quantiles of 1..100 at 0.1 and 0.9: 10.9 and 90.1; of 1..99: 10.8 and 89.2
    np.testing.assert_allclose(prep.lo, [10.9, 10.8])
    np.testing.assert_allclose(prep.hi, [90.1, 89.2])
    np.testing.assert_allclose(prep.fill, [50.5, 50.0])
    new = np.array([[-1e9, np.nan], [1e9, 20.0]])  # new rows far outside the training range
    np.testing.assert_allclose(prep.apply(new), [[10.9, 50.0], [90.1, 20.0]])
    assert np.isnan(new[0, 1])  # the input is not modified
    none = fit_preprocess(x, RidgeModel(features=("a", "b")))
    assert isinstance(none, Preprocess) and np.isnan(none.lo).all() and np.isnan(none.fill).all()


def test_lightgbm_is_bit_identical_in_process_and_in_a_new_process():
    x, y = _regression(n=3000, seed=5)
    y = y + np.sin(3 * x[:, 0]) * x[:, 1]
    m = LightGBMModel(kind="lightgbm", features=tuple("abcdef"), subsample=0.7, colsample_bytree=0.8, seed=11)
    one, two = fit_model(x, y, m), fit_model(x, y, m)
    p1, p2 = one.predict(x[:500]), two.predict(x[:500])
    assert one.version == two.version and p1.tobytes() == p2.tobytes()
    assert np.std(p1) > 0 and set(one.importance) == set("abcdef")
    code = (
        "import numpy as np, sys\n"
        "from quantlab_assets.strategy_lab.core.models import fit_model\n"
        "from quantlab_assets.strategy_lab.core.spec import LightGBMModel\n"
        "from quantlab_assets_tests.strategy_lab.test_models import _regression\n"
        "x, y = _regression(n=3000, seed=5); y = y + np.sin(3 * x[:, 0]) * x[:, 1]\n"
        "m = LightGBMModel(kind='lightgbm', features=tuple('abcdef'), subsample=0.7, colsample_bytree=0.8, seed=11)\n"
        "f = fit_model(x, y, m); sys.stdout.write(f.version + ' ' + f.predict(x[:500]).tobytes().hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out == f"{one.version} {p1.tobytes().hex()}"


# ---------------------------------------------------------------------------------------------
# Walk-forward on the demo universe: leakage, labels known at the refit date, determinism.

REFIT = pd.Timestamp("2022-09-15")
END = pd.Timestamp("2023-02-28").date()
MODELS = {
    "ridge": {"kind": "ridge", "features": INPUTS, "train_sessions": 60, "refit_every": 10},
    "ridge_rank_clip_median_embargo": {
        "kind": "ridge",
        "features": INPUTS,
        "train_sessions": 60,
        "refit_every": 10,
        "transform": "rank",
        "clip_quantile": 0.05,
        "missing": "median",
        "embargo": 3,
    },
    "lightgbm": {
        "kind": "lightgbm",
        "features": INPUTS,
        "train_sessions": 60,
        "refit_every": 10,
        "n_estimators": 30,
        "num_leaves": 7,
        "min_child_samples": 20,
        "subsample": 0.8,
        "clip_quantile": 0.01,
    },
    "elastic_net": {"kind": "elastic_net", "features": INPUTS, "train_sessions": 60, "refit_every": 7, "alpha": 1e-3},
}


def _demo(bars: pd.DataFrame):
    feats = compute_features(bars, load_preset(), "2022-01-03", "2022-12-30")
    labels = compute_labels(bars, "2022-01-03", "2022-12-30")
    return feats, labels


@pytest.fixture(scope="module")
def demo():
    """Synthetic bars of the demo universe; features and labels; the same after every bar
    dated after ``REFIT`` was perturbed (prices scaled by random factors, volumes too)."""
    import yaml

    registry = yaml.safe_load((ROOT / "quantlab_assets/data_curator/symbols.yaml").read_text())
    sectors = {e["symbol"]: e.get("sector", "Unknown") for e in registry["symbols"]}
    bars = SyntheticProvider(sectors=sectors).fetch(sorted(sectors), pd.Timestamp("2021-06-01").date(), END).bars
    after = bars["date"] > REFIT
    rng = np.random.default_rng(0)
    shaken = bars.copy()
    factor = rng.uniform(0.7, 1.4, size=int(after.sum()))
    for col in ("open", "high", "low", "close", "adj_close"):
        shaken.loc[after, col] = bars.loc[after, col].to_numpy() * factor
    shaken.loc[after, "volume"] = bars.loc[after, "volume"].to_numpy() * rng.uniform(0.2, 5.0, size=int(after.sum()))
    return _demo(bars), _demo(shaken), sorted(sectors), (bars, sectors)


def _walk(feats, labels, spec, symbols, start, end):
    days = trading_days(start, end)
    wide = wide_features(feats, spec.signal.model.features, days, symbols)
    return days, walk_forward(feats, labels, spec.signal.model, days, wide)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_perturbing_every_bar_after_a_refit_changes_nothing_up_to_it(demo, name):
    (feats, labels), (feats2, labels2), symbols, _ = demo
    spec = _spec(MODELS[name])
    days, wf = _walk(feats, labels, spec, symbols, "2022-06-01", "2022-12-30")
    _, wf2 = _walk(feats2, labels2, spec, symbols, "2022-06-01", "2022-12-30")
    upto = days <= REFIT
    assert wf.scores[upto].tobytes() == wf2.scores[upto].tobytes()
    assert np.isfinite(wf.scores[upto]).any()
    fits = [(a, b) for a, b in zip(wf.refits, wf2.refits) if a.refit <= REFIT]
    assert sum(a.model is not None for a, _ in fits) >= 3  # early refits lack mom_12_1's year of history
    for a, b in fits:
        assert (a.refit, a.train_start, a.train_end) == (b.refit, b.train_start, b.train_end)
        assert (a.model is None) == (b.model is None)
        if a.model is not None:
            assert a.model.version == b.model.version and a.model.importance == b.model.importance
    # Not a vacuous test: the perturbed bars moved labels dated before REFIT (their exits are
    # after it) and the later predictions.
    assert not np.array_equal(wf.scores[~upto], wf2.scores[~upto], equal_nan=True)
    before = labels["date"] <= REFIT
    assert not labels.loc[before, "fwd_ret_5"].equals(labels2.loc[before, "fwd_ret_5"])


@pytest.mark.parametrize("embargo", [0, 4])
def test_a_fit_trains_only_on_labels_whose_exit_is_known(demo, embargo):
    (feats, labels), _, _, _ = demo
    m = RidgeModel(features=tuple(INPUTS), train_sessions=40, embargo=embargo)
    grid = training_grid(feats, labels, m)
    refit = last_refit(REFIT, 21)
    x, y, first, last = training_set(grid, m, refit)
    days = trading_days("2022-01-01", refit)
    # exit of fwd_ret_5 decided on D: the open 6 sessions later, so known at refit for D <= refit - 6
    assert last == days[-(7 + embargo)] and first == days[-41]
    assert len(x) == len(y) and len(x) > 0 and np.isfinite(x).all()
    exits = labels.set_index(["date", "symbol"])["exit_date_5"]
    used = labels[(labels["date"] >= first) & (labels["date"] <= last)]
    assert (exits.loc[list(zip(used["date"], used["symbol"]))] <= refit).all()


@pytest.mark.parametrize("name", ["lightgbm", "elastic_net"])
def test_targets_with_a_model_are_bit_identical_run_to_run(demo, name):
    (feats, labels), _, symbols, _ = demo
    spec = _spec(MODELS[name])
    one = compute_targets(feats, spec, symbols, "2022-08-01", "2022-12-30", labels=labels)
    two = compute_targets(feats, spec, symbols, "2022-08-01", "2022-12-30", labels=labels)
    pd.testing.assert_frame_equal(one.targets, two.targets, check_exact=True)
    assert one.targets["score"].notna().mean() > 0.5 and one.targets["weight"].abs().sum() > 0
    # a later slice of the range gives the same rows (partition by partition = one backfill)
    part = compute_targets(feats, spec, symbols, "2022-11-01", "2022-12-30", labels=labels)
    tail = one.targets[one.targets["date"] >= pd.Timestamp("2022-11-01")].reset_index(drop=True)
    np.testing.assert_array_equal(part.targets["score"].to_numpy(), tail["score"].to_numpy())


def test_one_kernel_the_research_backtest_and_the_sweep_path_agree(demo):
    from quantlab_assets import research
    from quantlab_assets.common.calendar import shift_sessions
    from quantlab_assets.research.api import BAR_COLUMNS, ResearchData

    (feats, labels), _, symbols, (bars, sectors) = demo
    start, end = pd.Timestamp("2022-08-01"), pd.Timestamp("2022-12-30")
    data = ResearchData(
        start,
        end,
        feats,
        labels,
        bars[(bars["date"] >= shift_sessions(start, -1)) & (bars["date"] <= end)][BAR_COLUMNS],
        tuple(symbols),
        sectors,
        feats["date"].min(),
    )
    spec = _spec(MODELS["lightgbm"])
    full = research.backtest(spec, data=data)
    fast = research.evaluate(spec, data)
    np.testing.assert_array_equal(fast.ret, full.equity["ret"].to_numpy())
    assert full.trades["notional"].abs().sum() > 0


def test_a_sweep_grid_can_switch_the_model_kind():
    """``grid: {signal.model.kind: [ridge, elastic_net, lightgbm]}`` on a model that sets only the
    shared fields: each variant validates as its own kind (a kind's own parameter would be refused)."""
    from quantlab_assets.research.api import load_spec

    base = _spec(MODELS["ridge"]).model_dump(mode="json")
    base["signal"]["model"].pop("alpha")
    kinds = {k: load_spec(base, {"signal.model.kind": k}).signal.model for k in ("ridge", "elastic_net", "lightgbm")}
    assert [type(m) for m in kinds.values()] == [RidgeModel, ElasticNetModel, LightGBMModel]
    assert all(m.features == tuple(INPUTS) and m.refit_every == 10 for m in kinds.values())
    with pytest.raises(StrategyError, match="alpha"):
        load_spec(_spec(MODELS["ridge"]).model_dump(mode="json"), {"signal.model.kind": "lightgbm"})


@pytest.mark.parametrize("embargo", [0, 3])
def test_settled_sessions_reused_across_refits_give_the_cold_training_set(demo, embargo):
    """A refit reuses the transforms of sessions whose labels were all known at an earlier refit:
    the training rows equal, bit for bit, those of a grid that never saw an earlier refit."""
    (feats, labels), _, _, _ = demo
    m = RidgeModel(features=tuple(INPUTS), train_sessions=40, embargo=embargo, transform="rank", missing="median")
    warm = training_grid(feats, labels, m)
    for refit in trading_days("2022-07-01", "2022-12-30")[::7]:
        x, y, first, last = training_set(warm, m, refit)
        x0, y0, first0, last0 = training_set(training_grid(feats, labels, m), m, refit)
        assert x.tobytes() == x0.tobytes() and y.tobytes() == y0.tobytes() and (first, last) == (first0, last0)
        assert x.flags["F_CONTIGUOUS"] == x0.flags["F_CONTIGUOUS"]
    assert 0 < len(warm.settled) <= 40  # only the current window's sessions are kept
