"""strategies/sma_cross_10_20.yaml against backtesting.py's own SmaCross(10, 20) on the GOOG.csv
its package ships (2004-08-19..2013-03-01), under matching conventions: fractional shares
(backtesting.py's FractionalBacktest), no commission, fills at the next open, positions held
until the cross flips. The same trade days and the final equity within 1e-6 relative, through
the assets (ohlcv from CSV -> features_toolbox -> targets -> backtest) and the research API.

The assets run in a subprocess: the partitions' first date (QUANTLAB_START_DATE) is read when
the definitions are imported, and GOOG's history starts in 2004.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets import research

backtesting = pytest.importorskip("backtesting")
from backtesting import Strategy  # noqa: E402
from backtesting.lib import FractionalBacktest, crossover  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAME = "sma_cross_10_20"
CAPITAL = 1_000_000.0
START, END = "2004-08-19", "2013-03-01"

_MATERIALIZE = """
import dagster as dg
from quantlab_assets.definitions import defs
from quantlab_assets.strategy_lab.assets import strategy_key
keys = [dg.AssetKey("ohlcv"), dg.AssetKey("features_toolbox")]
keys += [strategy_key("{name}", s) for s in ("targets", "backtest", "backtest_kpis")]
job = defs.resolve_implicit_global_asset_job_def()
tags = {{"dagster/asset_partition_range_start": "{start}", "dagster/asset_partition_range_end": "{end}"}}
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(instance=instance, tags=tags, asset_selection=keys, raise_on_error=False)
failed = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
checks = [(e.asset_key.to_user_string(), e.check_name, e.description) for e in result.get_asset_check_evaluations()
          if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
assert result.success and not checks, (failed, checks)
"""


class SmaCross(Strategy):
    """backtesting.py's README example, verbatim in behaviour."""

    n1, n2 = 10, 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


@pytest.fixture(scope="module")
def reference():
    bt = FractionalBacktest(GOOG, SmaCross, cash=CAPITAL, commission=0.0, fractional_unit=1e-8)
    with warnings.catch_warnings():  # "some trades remain open at the end": ours too, marked at the last close
        warnings.simplefilter("ignore", UserWarning)
        stats = bt.run()
    trades = stats["_trades"]
    # A flip is one fill day in both: the old trade's exit and the new one's entry.
    days = sorted(set(pd.to_datetime(trades["EntryTime"])) | set(pd.to_datetime(trades["ExitTime"])))
    return float(stats["Equity Final [$]"]), pd.DatetimeIndex(days), stats


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("goog")
    csv_dir = tmp / "csv"
    csv_dir.mkdir()
    GOOG.rename_axis("Date").to_csv(csv_dir / "GOOG.csv")
    (tmp / "symbols.yaml").write_text("universe: goog\nsymbols:\n  - {symbol: GOOG, sector: Communication}\n")
    (tmp / "home").mkdir()
    (tmp / "home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "QUANTLAB_DB": str(tmp / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp / "artifacts"),
        "DAGSTER_HOME": str(tmp / "home"),
        "QUANTLAB_DATA_PROVIDER": "csv",
        "QUANTLAB_CSV_DIR": str(csv_dir),
        "QUANTLAB_SYMBOLS": str(tmp / "symbols.yaml"),
        "QUANTLAB_START_DATE": START,
    }
    for key in ("QUANTLAB_STRATEGIES", "QUANTLAB_FEATURE_PRESET", "QUANTLAB_FEATURE_SETS"):
        env.pop(key, None)
    code = _MATERIALIZE.format(name=NAME, start=START, end=END)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return tmp


def _stored(db: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} WHERE strategy = ? ORDER BY date", [NAME]).df()


def test_assets_match_backtesting_py(warehouse, reference):
    final, days, stats = reference
    equity = _stored(warehouse / "lab.duckdb", "backtest_equity")
    trades = _stored(warehouse / "lab.duckdb", "backtest_trades")
    assert len(equity) == len(GOOG) and len(days) > 50
    np.testing.assert_array_equal(pd.DatetimeIndex(sorted(set(pd.to_datetime(trades["date"])))), days)
    ours = float(equity["equity"].iloc[-1])
    assert abs(ours / final - 1) < 1e-6, (ours, final)
    # The whole equity curve, not only its end.
    curve = stats["_equity_curve"]["Equity"].to_numpy()
    np.testing.assert_allclose(equity["equity"].to_numpy(), curve, rtol=1e-6)


def test_research_api_matches_backtesting_py(warehouse, reference, monkeypatch):
    final, days, _ = reference
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(warehouse / "symbols.yaml"))
    monkeypatch.delenv("QUANTLAB_FEATURE_SETS", raising=False)
    out = research.backtest(ROOT / "strategies" / f"{NAME}.yaml", START, END, db=warehouse / "lab.duckdb")
    assert abs(out.final_equity / final - 1) < 1e-6
    np.testing.assert_array_equal(pd.DatetimeIndex(sorted(set(pd.to_datetime(out.trades["date"])))), days)
    # The API and the assets are one kernel: bit for bit.
    stored = _stored(warehouse / "lab.duckdb", "backtest_equity")
    np.testing.assert_array_equal(out.equity["equity"].to_numpy(), stored["equity"].to_numpy())
