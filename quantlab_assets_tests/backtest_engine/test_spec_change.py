"""A strategy file edited between two daily runs (k 10 -> 3) never resumes from a state built under
the old spec (issue 24): the backtest step is refused naming the spec change and the fields, every
stored table stays bit for bit; a backfill from the first session rebuilds the history under the
new spec (the stated rule, docs/operations.md)."""

from __future__ import annotations

import dagster as dg
import duckdb

from quantlab_assets.backtest_engine.assets import build_backtest_assets
from quantlab_assets.backtest_engine.core.schema import BACKTEST_SPEC
from quantlab_assets.definitions import STRATEGIES, defs
from quantlab_assets_tests.backtest_engine.test_backtest_wap_e2e import STRATEGY, _run, _seed_targets, _snapshot


def _backtest(spec, start, end):
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(
        [build_backtest_assets(spec)],
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
        tags=tags,
        raise_on_error=False,
    )


def _versions(db) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            f'SELECT CAST(date AS VARCHAR), spec_version FROM "{BACKTEST_SPEC.name}" WHERE strategy = ? ORDER BY date',
            [STRATEGY],
        ).fetchall()


def test_an_edited_strategy_is_refused_then_rebuilt_by_a_backfill(lab_env, small_universe):
    db = lab_env["QUANTLAB_DB"]
    assert _run([dg.AssetKey("ohlcv")], "2024-03-28", "2024-04-12").success
    _seed_targets(db, small_universe)
    old = next(s for s in STRATEGIES if s.name == STRATEGY)
    new = old.model_copy(update={"capital": old.capital * 2})
    assert _backtest(old, "2024-04-01", "2024-04-05").success
    versions = _versions(db)
    assert len(versions) == 5 and len({v for _, v in versions}) == 1
    before = _snapshot(db)

    refused = _backtest(new, "2024-04-08", "2024-04-08")
    assert not refused.success
    check = next(e for e in refused.get_asset_check_evaluations() if e.check_name == "upstream_complete")
    assert not check.passed
    assert f"{STRATEGY}'s strategy spec changed since the state of 2024-04-05 was built" in check.description
    assert f"capital {old.capital!r} -> {new.capital!r}" in check.description
    assert "backfill" in check.description and "nothing was written" in check.description
    assert _snapshot(db) == before and _versions(db) == versions

    # The stated way forward: a backfill from the first session (no earlier state to resume).
    rebuilt = _backtest(new, "2024-04-01", "2024-04-08")
    assert rebuilt.success
    after = _versions(db)
    assert len(after) == 6 and len({v for _, v in after}) == 1 and after[0][1] != versions[0][1]
    assert _backtest(new, "2024-04-09", "2024-04-09").success  # and daily runs resume under it


def test_a_name_that_left_the_registry_is_flagged_while_held(lab_env, small_universe, tmp_path, monkeypatch):
    db = lab_env["QUANTLAB_DB"]
    assert _run([dg.AssetKey("ohlcv")], "2024-03-28", "2024-04-12").success
    _seed_targets(db, small_universe)
    spec = next(s for s in STRATEGIES if s.name == STRATEGY)
    assert _backtest(spec, "2024-04-01", "2024-04-05").success
    registry = tmp_path / "four.yaml"
    registry.write_text("universe: test4\nsymbols:\n" + "".join(f"  - {{symbol: {s}}}\n" for s in small_universe[:4]))
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    result = _backtest(spec, "2024-04-08", "2024-04-08")
    assert result.success
    warnings = [e.user_message for e in dg.DagsterInstance.get().all_logs(result.run_id) if e.level == 30]
    flagged = [w for w in warnings if "no longer in the symbol registry" in w]
    assert (
        len(flagged) == 1 and flagged[0].startswith(f"{STRATEGY}: EEE: ") and "of the book on 2024-04-08" in flagged[0]
    )


def test_a_named_benchmark_state_from_before_its_convention_is_not_resumed():
    """A named-symbol benchmark stored close to close (before 2026-12-06) under the same spec: the
    version differs, so a daily run refuses to continue that history with aligned rows, naming the
    field; an equal-weight spec keeps its plain version (old warehouses resume as before)."""
    import json

    import pandas as pd

    from quantlab_assets.backtest_engine.core.step import BacktestInputs, spec_changed, spec_version
    from quantlab_assets.common.versions import content_hash

    base = next(s for s in STRATEGIES if s.name == STRATEGY)
    assert base.benchmark == "equal_weight" and spec_version(base) == (
        content_hash(base.model_dump_json()),
        base.model_dump_json(),
    )
    named = base.model_copy(update={"benchmark": "SPY"})
    old_json = named.model_dump_json()  # what a backtest before the convention recorded
    assert "benchmark_convention" not in json.loads(old_json)
    inputs = BacktestInputs(
        bars=pd.DataFrame(),
        targets=pd.DataFrame(),
        state=pd.DataFrame({"symbol": ["A"]}),
        state_spec=(content_hash(old_json), old_json),
    )
    refused = spec_changed(inputs, named, pd.Timestamp("2024-04-08"))
    assert refused is not None and not refused.passed
    assert "benchmark_convention None -> 'strategy_fills'" in refused.description, refused.description
    now = spec_version(named)
    assert (
        spec_changed(
            BacktestInputs(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), state_spec=now), named, "2024-04-08"
        )
        is None
    )
