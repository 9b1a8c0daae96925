"""The registry drifting is said out loud (issue 24): bars after a name's ``last_date`` are not
published (they go to ohlcv_rejects as ``listing``), and a registry that lost names since the
last ingest is a warning naming them, in the log and the materialization's metadata."""

from __future__ import annotations

import dagster as dg
import duckdb

from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.definitions import defs

TAGS = {"dagster/asset_partition_range_start": "2024-03-04", "dagster/asset_partition_range_end": "2024-03-08"}


def _run(instance):
    return dg.materialize([symbols, ohlcv], instance=instance, resources=defs.resources, tags=TAGS)


def _warnings(instance, run_id) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level == 30 and e.user_message]


def test_a_shrinking_registry_and_bars_after_last_date(lab_env, small_universe, tmp_path, monkeypatch):
    db = lab_env["QUANTLAB_DB"]
    with dg.DagsterInstance.get() as instance:
        first = _run(instance)
        assert first.success and not [w for w in _warnings(instance, first.run_id) if "registry" in w]
        registry = tmp_path / "three.yaml"
        registry.write_text(
            "universe: test3\nsymbols:\n  - {symbol: AAA}\n  - {symbol: BBB}\n"
            "  - {symbol: CCC, last_date: 2024-03-06}\n"
        )
        monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
        second = _run(instance)
        warnings = _warnings(instance, second.run_id)
        meta = second.asset_materializations_for_node("ohlcv")[-1].metadata
    assert second.success
    assert any(
        "2 of the 5 names of the last ingest's registry left it (DDD, EEE): they are no longer fetched" in w
        for w in warnings
    ), warnings
    assert any("CCC: 2 bars outside its registry listing window were not published" in w for w in warnings)
    assert meta["registry_names_dropped"].value == 2 and meta["rows_outside_listing"].value == 2
    with duckdb.connect(str(db), read_only=True) as con:
        ccc = [
            str(d)
            for (d,) in con.execute(
                "SELECT date FROM ohlcv WHERE symbol = 'CCC' AND run_id = ? ORDER BY date", [second.run_id]
            ).fetchall()
        ]
        rejects = con.execute(
            "SELECT symbol, CAST(date AS VARCHAR), check_name, reason FROM ohlcv_rejects "
            "WHERE run_id = ? ORDER BY date",
            [second.run_id],
        ).fetchall()
    assert ccc == ["2024-03-04", "2024-03-05", "2024-03-06"]
    assert rejects == [
        ("CCC", "2024-03-07", "listing", "after the registry's last_date 2024-03-06"),
        ("CCC", "2024-03-08", "listing", "after the registry's last_date 2024-03-06"),
    ]


def test_outside_listing_by_hand_for_every_kind_of_window():
    """first only, last only, both, none, and a symbol the registry lacks; a registry without any
    window keeps every row without looking at one."""
    from datetime import date

    import pandas as pd

    from quantlab_assets.data_curator.core.registry import SymbolEntry, SymbolRegistry
    from quantlab_assets.data_curator.core.step import outside_listing

    days = pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06"])
    names = ["IPO", "GONE", "BOTH", "OPEN", "STRAY"]
    rows = pd.DataFrame({"symbol": [s for s in names for _ in days], "date": list(days) * len(names)})
    registry = SymbolRegistry(
        universe="t",
        symbols=(
            SymbolEntry(symbol="IPO", first_date=date(2024, 3, 5)),
            SymbolEntry(symbol="GONE", last_date=date(2024, 3, 5)),
            SymbolEntry(symbol="BOTH", first_date=date(2024, 3, 5), last_date=date(2024, 3, 5)),
            SymbolEntry(symbol="OPEN"),
        ),
    )
    keep, found = outside_listing(rows, registry, {"GONE": "gone.csv"})
    expected = {"IPO": [0, 1, 1], "GONE": [1, 1, 0], "BOTH": [0, 1, 0], "OPEN": [1, 1, 1], "STRAY": [1, 1, 1]}
    assert keep.astype(int).tolist() == [k for s in names for k in expected[s]]
    assert [(r.symbol, r.date, r.source, r.reason) for r in found] == [
        ("IPO", "2024-03-04", "provider reply", "before the registry's first_date 2024-03-05"),
        ("GONE", "2024-03-06", "gone.csv", "after the registry's last_date 2024-03-05"),
        ("BOTH", "2024-03-04", "provider reply", "before the registry's first_date 2024-03-05"),
        ("BOTH", "2024-03-06", "provider reply", "after the registry's last_date 2024-03-05"),
    ]
    plain = SymbolRegistry(universe="t", symbols=tuple(SymbolEntry(symbol=s) for s in names))
    keep, found = outside_listing(rows, plain, {})
    assert keep.all() and len(keep) == len(rows) and found == []
