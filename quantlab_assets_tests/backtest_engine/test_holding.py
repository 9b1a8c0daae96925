"""Holding rules (hold until the signal changes, a no-trade band): by hand in the engine, resumed
runs equal one run, and the research API equals the sweep's kernel path."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets import research
from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.backtest_engine.core import nb
from quantlab_assets.backtest_engine.core.engine import BacktestState, run_backtest, simulate
from quantlab_assets.backtest_engine.core.holding import holding_of, keep_array, keep_flags
from quantlab_assets.common.calendar import shift_sessions, trading_days
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.definitions import defs
from quantlab_assets.feature_store.assets import features
from quantlab_assets.feature_store.core.features import compute_features, load_preset
from quantlab_assets.research.api import ResearchData
from quantlab_assets.research.sweep import SharedArrays, load_sweep, run_sweep, run_variant
from quantlab_assets.strategy_lab.assets import build_targets_asset, strategy_key
from quantlab_assets.strategy_lab.core.spec import StrategySpec


@pytest.mark.parametrize(
    "weight,held,keep,band,price,eo,still",
    [
        (0.5, 10.0, True, np.nan, 10.0, 100.0, True),  # unchanged target, same side: hold
        (0.5, 0.0, True, np.nan, 10.0, 100.0, False),  # not held yet: enter even if "unchanged"
        (-0.5, 10.0, True, np.nan, 10.0, 100.0, False),  # a flip always trades
        (0.0, 10.0, True, np.nan, 10.0, 100.0, False),  # an exit always trades
        (0.5, 10.0, False, np.nan, 10.0, 100.0, False),  # changed target, no band: trade
        (0.5, 5.5, False, 0.1, 10.0, 100.0, True),  # weight 0.55, within 0.1 of 0.5
        (0.5, 6.5, False, 0.1, 10.0, 100.0, False),  # weight 0.65, beyond the band
        (-0.5, -4.2, False, 0.1, 10.0, 100.0, True),  # short -0.42, within the band
    ],
)
def test_held_still_by_hand(weight, held, keep, band, price, eo, still):
    assert nb.held_still_nb(weight, held, keep, band, price, eo) is still


def _short_one_name(**holding):
    # One name shorted at -1 and kept at -1: prices 10, 8, 12, 9 (open = close).
    px = np.array([[10.0], [8.0], [12.0], [9.0]])
    decisions = np.array([[-1.0], [-1.0], [-1.0], [-1.0]])
    return simulate(BacktestState.initial(1, 1000.0), px, px, decisions, **holding)


def test_hold_until_change_keeps_the_shares_of_an_unchanged_short():
    _, rebal = _short_one_name()
    _, held = _short_one_name(keep=np.array([[False], [True], [True], [True]]))
    # Rebalancing resizes the short at every open (sessions 1, 2, 3 after the entry at 1).
    assert (rebal.traded_notional[1:] > 0).all()
    # Holding: one sale of 1000 / 8 = 125 shares at the open of session 1, then nothing.
    assert held.traded_notional.tolist() == [0.0, 1000.0, 0.0, 0.0]
    assert held.positions[:, 0].tolist() == [0.0, -125.0, -125.0, -125.0]
    assert held.equity[-1] == 1000.0 + 125.0 * (8.0 - 9.0)


def test_no_trade_band_trades_only_beyond_the_band():
    _, banded = _short_one_name(band=0.5)
    # open 1 (8): enter -125 shares, cash 2000. open 2 (12): equity 2000 - 1500 = 500, weight -3:
    # 2 beyond the target, resized to -500 / 12 shares (buy back 1000 of notional), cash 1000.
    # open 3 (9): equity 1000 - 375 = 625, weight -0.6: 0.4 from the target, inside the band.
    assert banded.traded_notional[1] == 1000.0
    assert banded.traded_notional[2] == pytest.approx(1000.0, rel=1e-12)
    assert banded.traded_notional[3] == 0.0
    assert banded.positions[3, 0] == pytest.approx(-500.0 / 12.0, rel=1e-12)
    _, tight = _short_one_name(band=0.3)
    assert tight.traded_notional[3] > 0  # 0.4 is beyond a band of 0.3


def test_keep_flags_compare_with_the_previous_session():
    days = trading_days("2024-04-01", "2024-04-04")
    t = pd.DataFrame({"date": np.repeat(days, 2), "symbol": ["A", "B"] * 4, "weight": [1, 0, 1, 0, 0.5, 0.5, 0.5, 0.5]})
    flags = keep_flags(t).set_index(["symbol", "date"])["keep"]
    assert flags.loc["A"].tolist() == [False, True, False, True]
    assert flags.loc["B"].tolist() == [False, True, False, True]
    book = t.pivot(index="date", columns="symbol", values="weight").to_numpy()
    np.testing.assert_array_equal(
        keep_array(book),
        t.pivot(index="date", columns="symbol", values="weight").pipe(lambda w: (w == w.shift(1)).to_numpy()),
    )


# --------------------------------------------------------------------------- API, sweep, resume

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = {"AAA": "Tech", "BBB": "Energy", "CCC": "Health"}
START, END = "2021-01-04", "2021-12-31"


@pytest.fixture(scope="module")
def data() -> ResearchData:
    bars = SyntheticProvider(seed=3, sectors=SYMBOLS).fetch(list(SYMBOLS), date(2020, 1, 2), date(2021, 12, 31)).bars
    feats = compute_features(bars, load_preset(), START, END)
    bars = bars[pd.to_datetime(bars["date"]) >= shift_sessions(START, -1)]
    return ResearchData(
        pd.Timestamp(START),
        pd.Timestamp(END),
        feats.assign(date=pd.to_datetime(feats["date"])),
        pd.DataFrame(),
        bars.assign(date=pd.to_datetime(bars["date"])).reset_index(drop=True),
        tuple(SYMBOLS),
        SYMBOLS,
        pd.Timestamp(START),
    )


def _rsi_spec(**holding) -> StrategySpec:
    return StrategySpec.model_validate(
        {
            "name": "rsi_rev",
            "signal": {"kind": "feature", "feature": "rsi_14"},
            "selection": {"kind": "threshold", "feature": "rsi_14", "long_below": 45.0, "short_above": 55.0},
            "rebalance": {"frequency": "daily"},
            "constraints": {"max_weight": 1.0, "gross_exposure": 1.0, "net_exposure": 0.0, "min_names": 1},
            "costs": {"fee_bps": 1.0, "slippage_bps": 2.0},
            **({"holding": holding} if holding else {}),
        }
    )


@pytest.mark.parametrize("holding", [{}, {"kind": "until_change"}, {"kind": "band", "band": 0.05}])
def test_research_api_equals_the_sweep_path(data, holding):
    spec = _rsi_spec(**holding)
    alone = research.backtest(spec, START, END, data=data)
    swept = run_variant(SharedArrays.build(data, START, END), spec)
    np.testing.assert_array_equal(swept["ret"], alone.equity["ret"].to_numpy())
    assert (alone.targets.targets["weight"] != 0).any() and (alone.targets.targets["weight"] < 0).any()


def test_holding_trades_less_and_differs_from_rebalancing(data):
    runs = {
        k: research.backtest(_rsi_spec(**h), START, END, data=data)
        for k, h in {"rebalance": {}, "until": {"kind": "until_change"}, "band": {"kind": "band", "band": 0.05}}.items()
    }
    trades = {k: len(r.trades) for k, r in runs.items()}
    assert trades["until"] < trades["rebalance"] and trades["band"] < trades["rebalance"]
    # Under until_change a name trades only after its target changed, or to finish an exit (a
    # buy-to-cover the cash floor trimmed: its target stays 0 and the rest is bought later).
    r = runs["until"]
    t = r.targets.targets.assign(date=lambda f: pd.to_datetime(f["date"]))
    flags = keep_flags(t).assign(date=lambda f: pd.to_datetime(f["date"])).set_index(["date", "symbol"])
    target = t.set_index(["date", "symbol"])["weight"]
    traded = r.trades.set_index(["decision_date", "symbol"]).index
    kept = flags["keep"].reindex(traded).to_numpy(dtype=bool)
    assert kept.sum() < 5 and (target.reindex(traded[kept]) == 0).all()


def test_until_change_resumed_equals_one_run(data):
    spec = _rsi_spec(kind="until_change")
    result = research.backtest(spec, START, END, data=data).targets
    targets = result.targets[result.targets["rebalance"]][["date", "symbol", "weight"]]
    bars = data.bars
    whole = run_backtest(bars, targets, START, END, holding=holding_of(spec, result.targets))
    mid = pd.Timestamp("2021-06-15")
    first = run_backtest(bars, targets, START, mid, holding=holding_of(spec, result.targets))
    after = shift_sessions(mid, 1)
    # The resumed run sees only the targets from two sessions before its start, as the asset does.
    recent = result.targets[pd.to_datetime(result.targets["date"]) >= shift_sessions(after, -2)]
    second = run_backtest(bars, targets, after, END, state=first.state_frame(), holding=holding_of(spec, recent))
    joined = pd.concat([first.equity, second.equity], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole.equity)
    assert len(whole.trades) == len(first.trades) + len(second.trades)


def test_holding_fields_are_checked():
    with pytest.raises(ValueError, match="holding 'band' needs band"):
        _rsi_spec(kind="band")
    with pytest.raises(ValueError, match=r"holding 'until_change' does not use \['band'\]"):
        _rsi_spec(kind="until_change", band=0.1)


def test_strategies_without_the_new_fields_keep_their_code_version():
    spec = _rsi_spec()
    trend = StrategySpec.model_validate(
        {
            **spec.model_dump(),
            "selection": {"kind": "threshold", "feature": "rsi_14", "long_above": 55.0, "short_below": 45.0},
        }
    )
    raw = json.loads(trend.model_dump_json())
    del raw["holding"], raw["selection"]["long_below"], raw["selection"]["short_above"], raw["selection"]["between"]
    assert json.loads(trend.version_json()) == raw  # the JSON a version was hashed from before
    assert "holding" in json.loads(_rsi_spec(kind="until_change").version_json())


# --------------------------------------------------------------------------- through the assets


def test_rsi_reversion_with_holding_rules_through_the_assets(lab_env, small_universe):
    """RSI mean reversion under hold-until-change and under a no-trade band: the assets run day
    by day equal the research API (one kernel), and resuming from the stored state equals one run."""
    specs = [
        StrategySpec.model_validate({**_rsi_spec(**h).model_dump(), "name": name})
        for name, h in (("rsi_until", {"kind": "until_change"}), ("rsi_band", {"kind": "band", "band": 0.05}))
    ]
    lab = dg.Definitions(
        assets=[symbols, ohlcv, features, *(b(s) for s in specs for b in (build_targets_asset, build_backtest_assets))],
        asset_checks=[ohlcv_quality_gate],
        resources=defs.resources,
        executor=dg.in_process_executor,
    )
    job = lab.resolve_implicit_global_asset_job_def()

    def run(keys, start, end):
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        result = job.execute_in_process(
            instance=dg.DagsterInstance.get(), tags=tags, asset_selection=keys, raise_on_error=False
        )
        assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        bad = [
            e.check_name for e in result.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"
        ]
        assert bad == []

    start, mid, end = "2024-03-01", "2024-03-15", "2024-04-12"
    run([dg.AssetKey("ohlcv")], str(shift_sessions(start, -260).date()), end)
    run([dg.AssetKey("features")], start, end)
    chain = [strategy_key(s.name, part) for s in specs for part in ("targets", "backtest")]
    run(chain, start, mid)  # then resumed from the stored state and targets
    run(chain, str(shift_sessions(mid, 1).date()), end)
    db = lab_env["QUANTLAB_DB"]
    for spec in specs:
        with duckdb.connect(str(db), read_only=True) as con:
            stored = con.execute(
                "SELECT equity FROM backtest_equity WHERE strategy = ? ORDER BY date", [spec.name]
            ).df()
        alone = research.backtest(spec, start, end, db=db)
        np.testing.assert_array_equal(stored["equity"].to_numpy(), alone.equity["equity"].to_numpy())
        rebalanced = research.backtest(_rsi_spec(), start, end, db=db)
        assert len(alone.trades) < len(rebalanced.trades)


def test_a_sweep_grid_varies_the_holding_rule(data, tmp_path):
    path = tmp_path / "rsi_hold.yaml"
    path.write_text(
        f"name: rsi_hold\nstrategy: {ROOT / 'strategies' / 'trend_sma50.yaml'}\n"
        "grid:\n  holding.kind: [rebalance, until_change]\n"
        "in_sample: {start: 2021-01-04, end: 2021-06-30}\nout_of_sample: {start: 2021-07-01, end: 2021-12-31}\n"
    )
    sweep = load_sweep(path)
    assert [v.spec.holding.kind for v in sweep.variants] == ["rebalance", "until_change"]
    result = run_sweep(sweep, data)
    for v in sweep.variants:
        alone = research.backtest(v.spec, START, END, data=data)
        np.testing.assert_array_equal(result.returns[v.id].to_numpy(), alone.equity["ret"].to_numpy())
    assert not np.array_equal(result.returns.iloc[:, 0].to_numpy(), result.returns.iloc[:, 1].to_numpy())
