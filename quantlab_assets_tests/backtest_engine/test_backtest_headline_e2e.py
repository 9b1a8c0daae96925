"""Issue 22 point 7: the backtest asset's own page carries the headline figures (the Sharpe, return,
drawdown, relative figures and the session they count from), equal to the KPIs asset's rows, and
no raw 16-digit floats."""

from __future__ import annotations

import dagster as dg
import duckdb

from quantlab_assets_tests.backtest_engine.test_backtest_wap_e2e import STRATEGY, _key, _run, _seed_targets


def test_the_backtest_page_shows_the_headline_kpis(lab_env, small_universe):
    assert _run([dg.AssetKey("ohlcv")], "2024-03-28", "2024-04-12").success
    _seed_targets(lab_env["QUANTLAB_DB"], small_universe)
    result = _run([_key(STRATEGY, "backtest"), _key(STRATEGY, "backtest_kpis")], "2024-04-01", "2024-04-05")
    assert result.success
    instance = dg.DagsterInstance.get()
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=_key(STRATEGY, "backtest"), asset_partitions=["2024-04-05"]), limit=1
    ).records
    meta = record.asset_materialization.metadata
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        sharpe, total, first = con.execute(
            "SELECT k.sharpe_ratio, k.total_return, (SELECT min(date) FROM backtest_equity e "
            "WHERE e.strategy = k.strategy AND e.turnover > 0) FROM backtest_kpis k "
            "WHERE k.strategy = ? AND k.date = ? AND k.scope = 'since_start'",
            [STRATEGY, "2024-04-05"],
        ).fetchone()
    assert meta["sharpe_ratio"].value == round(sharpe, 6)
    assert meta["total_return"].value == round(total, 6)
    text = meta["headline"].value
    assert text.startswith(f"Sharpe {sharpe:.2f} · total return {total:.2%}"), text
    assert f"since {first} (first invested session), as of 2024-04-05" in text, text
    # Money to the cent, returns to 6 decimals: no 995834.6052929464 on the page.
    equity = meta["final_equity"].value
    assert equity == round(equity, 2) and len(repr(equity).split(".")[-1]) <= 2
