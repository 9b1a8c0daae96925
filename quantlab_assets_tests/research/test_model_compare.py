"""The qlib-shaped model comparison: its statistics by hand and against scipy, the top-k / drop-n
book by hand, the planted nonlinear signal that trees find and linear models cannot (the
ordering asserted with a stated margin), and the command that prints the table."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab_assets.research.model_compare import (
    Book,
    compare_models,
    daily_ic,
    excess_summary,
    ic_summary,
    planted_data,
    topk_dropout_returns,
)
from quantlab_assets.strategy_lab.core.spec import ElasticNetModel, LightGBMModel, RidgeModel

# The planted signal: trees must beat every linear model by this much IC and Rank IC.
MARGIN = 0.10


def test_daily_ic_equals_scipy_pearson_and_spearman():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(1)
    score, label = rng.normal(size=(30, 40)), rng.normal(size=(30, 40))
    label += 0.3 * score
    score[rng.uniform(size=score.shape) < 0.1] = np.nan
    label[0, :38] = np.nan  # two names known: no IC
    ic, ric = daily_ic(score, label), daily_ic(score, label, rank=True)
    assert np.isnan(ic[0]) and np.isnan(ric[0])
    for i in range(1, 30):
        ok = ~np.isnan(score[i]) & ~np.isnan(label[i])
        assert ic[i] == pytest.approx(pearsonr(score[i][ok], label[i][ok])[0], abs=1e-12)
        assert ric[i] == pytest.approx(spearmanr(score[i][ok], label[i][ok])[0], abs=1e-12)
    summary = ic_summary(score, label)
    assert summary["IC"] == pytest.approx(np.nanmean(ic)) and summary["ICIR"] == pytest.approx(
        np.nanmean(ic) / np.nanstd(ic, ddof=1)
    )


def test_topk_dropout_by_hand():
    # 4 names, k = 2, n_drop = 1, 100 bps per unit traded.
    score = np.array(
        [
            [4.0, 3.0, 2.0, 1.0],  # buy A, B
            [1.0, 3.0, 4.0, 2.0],  # combined A B C (+D): A is the worst of them -> sell A, buy C
            [np.nan, 3.0, 4.0, 2.0],  # B, C stay (the worst of B C D is D, not held)
        ]
    )
    ret = np.array([[0.01, 0.02, 0.0, 0.0], [0.0, 0.01, 0.03, 0.0], [0.0, np.nan, 0.02, 0.0]])
    rets, traded = topk_dropout_returns(score, ret, Book(k=2, n_drop=1, cost_bps=100))
    np.testing.assert_allclose(traded, [1.0, 1.0, 0.0])  # 2 buys / k; 1 sell + 1 buy / k; nothing
    np.testing.assert_allclose(rets, [0.015 - 0.01, 0.02 - 0.01, 0.01])  # a missing return counts 0


def test_excess_summary_by_hand():
    out = excess_summary(np.array([0.01, -0.02, 0.01]))
    assert out["annualized_excess_return"] == pytest.approx(0.0)
    assert out["max_drawdown"] == pytest.approx(-0.02)  # summed: 0.01, -0.01, 0.00
    x = np.array([0.01, 0.0, 0.02, -0.01])
    assert excess_summary(x)["information_ratio"] == pytest.approx(x.mean() / x.std(ddof=1) * np.sqrt(252))


@pytest.fixture(scope="module")
def planted():
    features, labels = planted_data(n_symbols=100, start="2016-01-04", end="2017-06-30", seed=4)
    common = {"features": tuple(f"f{j}" for j in range(6)), "label": "fwd_ret_1", "train_sessions": 120}
    models = {
        "ridge": RidgeModel(**common, refit_every=42),
        "elastic_net": ElasticNetModel(kind="elastic_net", **common, refit_every=42),
        "lightgbm": LightGBMModel(kind="lightgbm", **common, refit_every=42, num_leaves=7, n_estimators=60),
    }
    return compare_models(features, labels, models, "2016-09-01", "2017-06-30", Book(10, 2, 10.0))


def test_trees_find_the_planted_interaction_that_linear_models_cannot(planted):
    t = planted.table.set_index("model")
    for linear in ("ridge", "elastic_net"):
        assert t.loc["lightgbm", "IC"] >= t.loc[linear, "IC"] + MARGIN, t
        assert t.loc["lightgbm", "Rank IC"] >= t.loc[linear, "Rank IC"] + MARGIN, t
        assert t.loc["lightgbm", "annualized_excess_return"] > t.loc[linear, "annualized_excess_return"], t
        assert abs(t.loc[linear, "IC"]) < 0.05  # nothing linear to find
    assert t.loc["lightgbm", "ICIR"] > 1.0 and t.loc["lightgbm", "information_ratio"] > 0
    assert list(t.columns) == [
        "IC",
        "ICIR",
        "Rank IC",
        "Rank ICIR",
        "annualized_excess_return",
        "information_ratio",
        "max_drawdown",
    ]


def test_compare_refuses_models_on_different_labels():
    features, labels = planted_data(n_symbols=20, start="2017-01-03", end="2017-03-31")
    models = {
        "a": RidgeModel(features=("f0",), label="fwd_ret_1", train_sessions=20),
        "b": RidgeModel(features=("f0",), label="fwd_ret_5", train_sessions=20),
    }
    with pytest.raises(ValueError, match="one label"):
        compare_models(features, labels, models, "2017-03-01", "2017-03-31")


def test_the_command_prints_the_table(capsys, lab_env):
    from quantlab_assets.batch_orchestrator.cli import main

    argv = ["models", "compare", "--source", "planted", "--names", "40", "--start", "2017-03-01"]
    argv += ["--end", "2017-05-31", "--train-sessions", "40", "--refit-every", "21", "--models", "ridge,lightgbm"]
    assert main([*argv, "--record"]) == 0
    out = capsys.readouterr().out
    assert "| model | IC | ICIR | Rank IC | Rank ICIR |" in out and "| ridge |" in out and "| lightgbm |" in out
    assert "recorded" in out
    import duckdb

    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        kinds = con.execute("SELECT name, count(*) FROM experiments WHERE kind = 'model' GROUP BY name").df()
    assert set(kinds["name"]) == {"compare:ridge", "compare:lightgbm"} and (kinds["count_star()"] >= 3).all()
    assert main([*argv[:-2], "--models", "xgboost"]) == 2
    assert "unknown kind 'xgboost'" in capsys.readouterr().err
