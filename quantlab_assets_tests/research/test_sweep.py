"""Sweeps: the overfitting statistics on hand-worked cases, bad sweep files name the file and the
field, a sweep's rows equal the same variants run one by one, promotion writes a valid strategy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from quantlab_assets import research
from quantlab_assets.backtest_engine.core.kpis import sharpe_ratio
from quantlab_assets.research import overfitting as of
from quantlab_assets.research.sweep import SweepError, leaderboard_markdown, load_sweep, promote, run_sweep
from quantlab_assets.strategy_lab.core.spec import load_strategy
from quantlab_assets_tests.research.conftest import END, ROOT, START


def test_deflated_sharpe_ratio_reproduces_the_papers_example():
    # Bailey & López de Prado (2014), section "A numerical example": 100 trials whose annualized
    # Sharpe ratios have variance 1/2, the best 2.5 annualized, 5 years of daily returns (1250),
    # skewness -3, kurtosis 10: E[max SR] = 0.1132 per day and DSR = 0.9004.
    sr0 = of.expected_max_sharpe(0.5 / 250, 100)
    assert round(sr0, 4) == 0.1132
    dsr = of.deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 0.5 / 250, 100)
    assert round(dsr, 3) == 0.900


def test_one_trial_and_normal_returns_is_the_probabilistic_sharpe_ratio():
    # SR0 = 0, skew 0, kurt 3: Z(0.1 * sqrt(100) / sqrt(1 + 0.5 * 0.01)) = Z(0.997509)
    # = Z(1) - 0.002491 * phi(1) = 0.841345 - 0.002491 * 0.241971 = 0.84074.
    assert of.expected_max_sharpe(0.3, 1) == 0.0
    assert round(of.deflated_sharpe_ratio(0.1, 101, 0.0, 3.0, 0.0, 1), 5) == 0.84074


def test_moments_sharpe_and_rank_correlation_by_hand():
    assert of.moments([-1.0, 0.0, 1.0]) == (0.0, 1.5)  # E[d^4] / var^2 = (2/3) / (4/9)
    # mean 0.005, sample std sqrt(0.0005 / 3)
    assert math.isclose(of.per_period_sharpe([0.01, -0.01, 0.02, 0.0]), 0.005 / math.sqrt(0.0005 / 3))
    assert of.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert math.isclose(of.rank_correlation([1, 2, 3], [1, 3, 2]), 0.5)


def _write(tmp_path, body: str):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    return path


BASE = "name: s\nstrategy: {str(ROOT / 'strategies' / 'momentum_topk.yaml')}\n"


@pytest.mark.parametrize(
    "body,field",
    [
        (
            "grid: {selection.kk: [3]}\nin_sample: {start: 2020-01-02, end: 2020-12-31}\n"
            "out_of_sample: {start: 2021-01-04, end: 2021-12-31}\n",
            "selection.kk",
        ),
        (
            "grid: {}\nin_sample: {start: 2020-01-02, end: 2020-12-31}\n"
            "out_of_sample: {start: 2021-01-04, end: 2021-12-31}\n",
            "grid",
        ),
        (
            "grid: {selection.k: []}\nin_sample: {start: 2020-01-02, end: 2020-12-31}\n"
            "out_of_sample: {start: 2021-01-04, end: 2021-12-31}\n",
            "grid.selection.k",
        ),
        (
            "grid: {selection.k: [10]}\nin_sample: {start: 2020-01-02, end: 2021-06-30}\n"
            "out_of_sample: {start: 2021-01-04, end: 2021-12-31}\n",
            "overlaps in_sample",
        ),
        ("grid: {selection.k: [10]}\nin_sample: {start: 2020-01-02, end: 2020-12-31}\n", "out_of_sample"),
    ],
)
def test_bad_sweep_files_name_the_file_and_the_field(tmp_path, body, field):
    path = _write(tmp_path, eval(f'f"""{BASE}"""') + body)
    with pytest.raises(SweepError, match=str(path)) as err:
        load_sweep(path)
    assert field in str(err.value)


def test_shipped_sweeps_load():
    sweep = load_sweep(ROOT / "sweeps" / "momentum_grid.yaml")
    assert len(sweep.variants) == 18 and len({v.spec_hash for v in sweep.variants}) == 18


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "lowvol_k.yaml"
    path.write_text(
        f"name: lowvol_k\nstrategy: {ROOT / 'strategies' / 'low_volatility.yaml'}\n"
        "grid:\n  selection.k: [10, 12, 15]\n  costs.slippage_bps: [3.0, 10.0]\n"
        "in_sample: {start: 2024-02-01, end: 2024-03-15}\nout_of_sample: {start: 2024-03-18, end: 2024-04-30}\n"
    )
    return path


def test_sweep_rows_equal_the_variants_run_one_by_one(materialized, sweep_file):
    sweep = load_sweep(sweep_file)
    assert (sweep.start, sweep.end) == (np.datetime64(START), np.datetime64(END))
    data = research.load_data(START, END, db=materialized)
    result = run_sweep(sweep, data)
    fold = sweep.folds[0]
    for v, row in zip(sweep.variants, result.results.itertuples()):
        alone = research.backtest(v.spec, START, END, data=data)
        ret = alone.equity.set_index("date")["ret"]
        np.testing.assert_array_equal(result.returns[v.id].to_numpy(), ret.to_numpy())
        is_ret = ret[(ret.index >= fold.in_sample[0]) & (ret.index <= fold.in_sample[1])].to_numpy()
        oos_ret = ret[(ret.index >= fold.out_of_sample[0]) & (ret.index <= fold.out_of_sample[1])].to_numpy()
        assert row.is_sharpe == sharpe_ratio(is_ret) and row.oos_sharpe == sharpe_ratio(oos_ret)
        assert row.costs == alone.equity["costs"].sum() and json.loads(row.params) == v.params
    stats = result.statistics[0]
    assert stats["best"] == result.results.loc[result.results["is_rank"] == 1, "variant"].item()
    assert 0.0 <= stats["dsr"] <= 1.0 and -1.0 <= stats["rank_corr"] <= 1.0
    assert "deflated Sharpe ratio" in leaderboard_markdown(sweep, result)


def test_promote_writes_a_strategy_file(sweep_file, tmp_path):
    sweep = load_sweep(sweep_file)
    path = promote(sweep, "v003", tmp_path / "lowvol_best.yaml")
    spec = load_strategy(path)
    assert spec.name == "lowvol_best" and spec.selection.k == 12 and spec.costs.slippage_bps == 10.0
    with pytest.raises(FileExistsError):
        promote(sweep, "v003", path)
    with pytest.raises(KeyError, match="no variant 'v099'"):
        promote(sweep, "v099", tmp_path / "x.yaml")
