"""The research API equals the assets bit for bit, validates like the strategy files, reads
read-only and writes nothing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets import research
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets.definitions import defs
from quantlab_assets.strategy_lab.core.spec import StrategyError

ROOT = Path(__file__).resolve().parents[2]
START, END = "2024-02-01", "2024-04-30"
SYMBOLS = [f"T{i:02d}" for i in range(30)]
STRATEGIES = ["low_volatility", "short_term_reversal"]


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    """ohlcv -> features -> targets -> backtest of two strategies over [START, END], in one run
    (260 sessions of history: Wilder's RSI, blended into short_term_reversal, warms up over 219)."""
    tmp = tmp_path_factory.mktemp("lab")
    mp = pytest.MonkeyPatch()
    home = tmp / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    registry = tmp / "symbols.yaml"
    sectors = ["Tech", "Energy", "Health", "Utilities"]
    registry.write_text("universe: test30\nsymbols:\n" + "".join(
        f"  - {{symbol: {s}, sector: {sectors[i % 4]}}}\n" for i, s in enumerate(SYMBOLS)))
    for key, value in {"QUANTLAB_DB": tmp / "lab.duckdb", "QUANTLAB_ARTIFACTS": tmp / "artifacts",
                       "DAGSTER_HOME": home, "QUANTLAB_DATA_PROVIDER": "synthetic",
                       "QUANTLAB_SYMBOLS": registry}.items():
        mp.setenv(key, str(value))
    for key in ("QUANTLAB_CSV_DIR", "ALPHAVANTAGE_API_KEY", "QUANTLAB_FEATURE_PRESET"):
        mp.delenv(key, raising=False)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        def run(keys, start, end):
            tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
            result = job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)
            assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]

        run([dg.AssetKey("ohlcv")], str(shift_sessions(START, -260).date()), str(shift_sessions(START, -1).date()))
        keys = [dg.AssetKey(k) for k in ("ohlcv", "features", "labels")]
        keys += [dg.AssetKey([s, part]) for s in STRATEGIES for part in ("targets", "backtest", "backtest_kpis")]
        run(keys, START, END)
    yield tmp / "lab.duckdb"
    mp.undo()


def _stored(db, table, strategy):
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute(f"SELECT * EXCLUDE (strategy) FROM {table} WHERE strategy = ? ORDER BY ALL",
                            [strategy]).df()
    for col in frame.columns:
        if "date" in col:
            frame[col] = pd.to_datetime(frame[col])
    return frame


def _sorted(frame: pd.DataFrame, columns) -> pd.DataFrame:
    frame = frame[list(columns)]
    return frame.sort_values(list(columns)).reset_index(drop=True)


@pytest.mark.parametrize("name", STRATEGIES)
def test_api_equals_assets_bit_for_bit(materialized, name):
    stored = {t: _stored(materialized, t, name) for t in
              ("targets", "backtest_equity", "backtest_positions", "backtest_trades", "backtest_kpis")}
    before = materialized.stat().st_mtime_ns
    out = research.backtest(ROOT / "strategies" / f"{name}.yaml", START, END, db=materialized)
    assert materialized.stat().st_mtime_ns == before  # nothing written
    pairs = {"targets": out.targets.targets.drop(columns=["strategy"]), "backtest_equity": out.equity,
             "backtest_positions": out.positions, "backtest_trades": out.trades, "backtest_kpis": out.kpis}
    for table, mine in pairs.items():
        theirs = stored[table]
        assert len(theirs) > 0, table
        cols = list(theirs.columns)
        pd.testing.assert_frame_equal(_sorted(mine.assign(**{c: mine[c] for c in cols}), cols),
                                      _sorted(theirs, cols), check_exact=True, check_dtype=False, obj=table)
    assert out.trades["notional"].abs().sum() > 0 and np.isfinite(out.kpis_last["sharpe_ratio"])


def test_one_read_serves_several_variants(materialized):
    data = research.load_data(START, END, db=materialized)
    a = research.backtest(ROOT / "strategies" / "low_volatility.yaml", data=data)
    b = research.backtest(ROOT / "strategies" / "low_volatility.yaml", data=data, overrides=["selection.k=12"])
    direct = research.backtest(ROOT / "strategies" / "low_volatility.yaml", START, END, db=materialized,
                               overrides={"selection.k": 12})
    assert b.spec.selection.k == 12 and a.final_equity != b.final_equity
    pd.testing.assert_frame_equal(b.equity, direct.equity, check_exact=True)


@pytest.mark.parametrize("overrides,field", [
    (["selection.k=abc"], "selection.k"),
    (["selection.kk=3"], "selection.kk"),
    (["constraints.max_weight=2"], "constraints.max_weight"),
    (["name.x=1"], "name"),
])
def test_overrides_validate_like_the_yaml_path(overrides, field):
    with pytest.raises(StrategyError, match=f"momentum_topk.yaml.*'{field}'"):
        research.load_spec(ROOT / "strategies" / "momentum_topk.yaml", overrides)


def test_a_dict_spec_and_targets_without_the_flag():
    spec = research.load_spec({"name": "x", "signal": {"kind": "feature", "feature": "ret_5"},
                               "selection": {"kind": "top_k", "k": 5}, "constraints": {"max_weight": 0.2}})
    assert spec.selection.k == 5
    with pytest.raises(ValueError, match="rebalance"):
        research.decisions_of(pd.DataFrame({"date": [], "symbol": [], "weight": []}))


def test_the_read_releases_the_file(materialized):
    research.load_data(START, END, ["vol_60"], db=materialized)
    with duckdb.connect(str(materialized)) as con:  # a writer gets the file right after the read
        assert con.execute("SELECT count(*) FROM features").fetchone()[0] > 0
