"""The research API equals the assets bit for bit, validates like the strategy files, reads
read-only and writes nothing."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets import research
from quantlab_assets.strategy_lab.core.spec import StrategyError
from quantlab_assets_tests.research.conftest import END, ROOT, START, STRATEGIES


def _stored(db, table, strategy):
    with duckdb.connect(str(db), read_only=True) as con:
        frame = con.execute(
            f"SELECT * EXCLUDE (strategy) FROM {table} WHERE strategy = ? ORDER BY ALL", [strategy]
        ).df()
    for col in frame.columns:
        if "date" in col:
            frame[col] = pd.to_datetime(frame[col])
    return frame


def _sorted(frame: pd.DataFrame, columns) -> pd.DataFrame:
    frame = frame[list(columns)]
    return frame.sort_values(list(columns)).reset_index(drop=True)


@pytest.mark.parametrize("name", STRATEGIES)
def test_api_equals_assets_bit_for_bit(materialized, name):
    stored = {
        t: _stored(materialized, t, name)
        for t in ("targets", "backtest_equity", "backtest_positions", "backtest_trades", "backtest_kpis")
    }
    before = materialized.stat().st_mtime_ns
    out = research.backtest(ROOT / "strategies" / f"{name}.yaml", START, END, db=materialized)
    assert materialized.stat().st_mtime_ns == before  # nothing written
    pairs = {
        "targets": out.targets.targets.drop(columns=["strategy"]),
        "backtest_equity": out.equity,
        "backtest_positions": out.positions,
        "backtest_trades": out.trades,
        "backtest_kpis": out.kpis,
    }
    for table, mine in pairs.items():
        theirs = stored[table]
        assert len(theirs) > 0, table
        cols = list(theirs.columns)
        pd.testing.assert_frame_equal(
            _sorted(mine.assign(**{c: mine[c] for c in cols}), cols),
            _sorted(theirs, cols),
            check_exact=True,
            check_dtype=False,
            obj=table,
        )
    assert out.trades["notional"].abs().sum() > 0 and np.isfinite(out.kpis_last["sharpe_ratio"])


def test_one_read_serves_several_variants(materialized):
    data = research.load_data(START, END, db=materialized)
    a = research.backtest(ROOT / "strategies" / "low_volatility.yaml", data=data)
    b = research.backtest(ROOT / "strategies" / "low_volatility.yaml", data=data, overrides=["selection.k=12"])
    direct = research.backtest(
        ROOT / "strategies" / "low_volatility.yaml", START, END, db=materialized, overrides={"selection.k": 12}
    )
    assert b.spec.selection.k == 12 and a.final_equity != b.final_equity
    pd.testing.assert_frame_equal(b.equity, direct.equity, check_exact=True)


@pytest.mark.parametrize(
    "overrides,field",
    [
        (["selection.k=abc"], "selection.k"),
        (["selection.kk=3"], "selection.kk"),
        (["constraints.max_weight=2"], "constraints.max_weight"),
        (["name.x=1"], "name"),
    ],
)
def test_overrides_validate_like_the_yaml_path(overrides, field):
    with pytest.raises(StrategyError, match=f"momentum_topk.yaml.*'{field}'"):
        research.load_spec(ROOT / "strategies" / "momentum_topk.yaml", overrides)


def test_a_dict_spec_and_targets_without_the_flag():
    spec = research.load_spec(
        {
            "name": "x",
            "signal": {"kind": "feature", "feature": "ret_5"},
            "selection": {"kind": "top_k", "k": 5},
            "constraints": {"max_weight": 0.2},
        }
    )
    assert spec.selection.k == 5
    with pytest.raises(ValueError, match="rebalance"):
        research.decisions_of(pd.DataFrame({"date": [], "symbol": [], "weight": []}))


def test_the_read_releases_the_file(materialized):
    research.load_data(START, END, ["vol_60"], db=materialized)
    with duckdb.connect(str(materialized)) as con:  # a writer gets the file right after the read
        assert con.execute("SELECT count(*) FROM features").fetchone()[0] > 0


def test_evaluate_is_the_fast_path_of_backtest(materialized):
    data = research.load_data(START, END, db=materialized)
    for over in ([], ["selection.k=12"], ["rebalance.frequency=daily", "costs.fee_bps=3"]):
        full = research.backtest(ROOT / "strategies" / "low_volatility.yaml", data=data, overrides=over)
        fast = research.evaluate(ROOT / "strategies" / "low_volatility.yaml", data, overrides=over)
        np.testing.assert_array_equal(fast.ret, full.equity["ret"].to_numpy())
        # Issue 22 point 8: the fast path's equity carries its dates, and equals the full backtest's.
        assert list(fast.equity.index) == list(pd.to_datetime(full.equity["date"]))
        np.testing.assert_allclose(fast.equity.to_numpy(), full.equity["equity"].to_numpy(), rtol=1e-12)
        np.testing.assert_array_equal(fast.costs, full.equity["costs"].to_numpy())
        for key in ("sharpe_ratio", "cagr", "max_drawdown", "turnover"):
            assert fast.kpis[key] == full.kpis_last[key]


def test_a_named_benchmark_is_the_assets_convention(materialized):
    """Issue 22 point 2: a spec's ``benchmark: T05`` (a registry symbol) is credited as the asset
    credits it: nothing before the first invested session, open to close on it, close to close
    after; a symbol without bars is one line naming it, the range and what to do."""
    from quantlab_assets.backtest_engine.core.kpis import first_invested

    spec = ROOT / "strategies" / "low_volatility.yaml"
    out = research.backtest(spec, START, END, overrides={"benchmark": "T05"}, db=materialized)
    with duckdb.connect(str(materialized), read_only=True) as con:
        px = con.execute("SELECT date, open, close, adj_close FROM ohlcv WHERE symbol = 'T05' ORDER BY date").df()
    px = px.assign(date=pd.to_datetime(px["date"])).set_index("date")
    b = out.equity.set_index("date")["benchmark_ret"]
    first = first_invested(out.equity)
    assert b[:first].iloc[:-1].isna().all()
    assert b[first] == pytest.approx(px["close"][first] / px["open"][first] - 1.0, abs=1e-15)
    after = b[b.index > first]
    expected = (px["adj_close"] / px["adj_close"].shift(1) - 1.0).reindex(after.index)
    np.testing.assert_allclose(after.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-15)
    assert out.kpis_last["information_ratio"] == out.kpis_last["information_ratio"]  # finite, not NaN
    with pytest.raises(ValueError, match=r"field 'benchmark': QQQ has no ohlcv bar on \d+ of \d+ sessions of "):
        research.backtest(spec, START, END, overrides={"benchmark": "QQQ"}, db=materialized)


def test_an_empty_book_says_why_in_the_api_and_the_cli(materialized, capsys, monkeypatch):
    """Issue 22 point 4 for a researcher: three names for a strategy with min_names 8 hold
    nothing; the API and ``quantlab backtest`` say why, as the targets asset's warning does."""
    from quantlab_assets.batch_orchestrator.cli import main

    spec = ROOT / "strategies" / "momentum_topk.yaml"
    three = {"universe.include": ["T00", "T01", "T02"]}
    out = research.backtest(spec, START, END, overrides=three, db=materialized)
    why = research.empty_book_reason(out, db=materialized)
    assert why.startswith(f"EMPTY BOOK: held nothing on any of {len(out.equity)} session(s) of {START}..{END}: ")
    assert why.endswith(f"3 scorable names < min_names {out.spec.constraints.min_names}: flat"), why
    assert research.empty_book_reason(research.backtest(spec, START, END, db=materialized), db=materialized) == ""
    monkeypatch.setenv("QUANTLAB_DB", str(materialized))
    assert main(["backtest", str(spec), "--start", START, "--end", END, "--set", "universe.include=[T00,T01,T02]"]) == 0
    printed = capsys.readouterr().out
    assert "EMPTY BOOK: the strategy held nothing over the range" in printed and why in printed, printed
