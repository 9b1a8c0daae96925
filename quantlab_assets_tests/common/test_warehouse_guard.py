"""A damaged, vanished or replaced warehouse is never written to, and the run fails naming the file
(issue 24). Real DuckDB files damaged the way an operator would (cut in half, 64 KB zeroed, deleted
or swapped mid-run), real Dagster runs; "unchanged" is checked on the file's bytes."""

from __future__ import annotations

import hashlib
import os
import shutil

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from quantlab_assets.common import warehouse
from quantlab_assets.common.warehouse import WarehouseDamaged, WarehouseMissing
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.resources import MarketDataResource
from quantlab_assets.feature_store.assets import features
from quantlab_assets.feature_store.resources import FeatureStoreResource
from quantlab_assets.resources import ArtifactsResource, WarehouseResource

PARTITION = "2024-03-05"


def _resources():
    return {
        "warehouse": WarehouseResource(),
        "market_data": MarketDataResource(),
        "artifacts": ArtifactsResource(),
        "feature_store": FeatureStoreResource(),
    }


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _failure_text(result) -> str:
    texts = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return " ".join(texts)


def _warehouse_with_data(db) -> None:
    """A real warehouse (an ingested day) plus a table filling many blocks, so a cut or a zeroed
    64 KB lands in data DuckDB must read back."""
    assert dg.materialize([symbols, ohlcv], partition_key=PARTITION, resources=_resources()).success
    rng = np.random.default_rng(0)
    filler = pd.DataFrame({"x": rng.standard_normal(600_000), "y": rng.integers(0, 2**62, 600_000)})
    with duckdb.connect(str(db)) as con:
        con.register("filler_df", filler)
        con.execute("CREATE TABLE filler AS SELECT * FROM filler_df")
    warehouse_guard_forget(db)


def warehouse_guard_forget(db) -> None:
    from quantlab_assets.common import warehouse_guard

    warehouse_guard.forget(db)


def _run_ohlcv(partition=PARTITION):
    return dg.materialize([symbols, ohlcv], partition_key=partition, resources=_resources(), raise_on_error=False)


def test_zeroed_64kb_is_detected_before_anything_is_written(lab_env, small_universe):
    db = lab_env["QUANTLAB_DB"]
    _warehouse_with_data(db)
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\0" * 65536)
    before = _digest(db)
    result = _run_ohlcv("2024-03-06")
    assert not result.success
    text = _failure_text(result)
    assert str(db) in text and "cannot be read back" in text and "quantlab warehouse restore" in text
    assert _digest(db) == before  # nothing was written into the damaged file


def test_a_file_cut_in_half_is_refused_naming_it(lab_env, small_universe):
    db = lab_env["QUANTLAB_DB"]
    _warehouse_with_data(db)
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    before = _digest(db)
    result = _run_ohlcv("2024-03-06")
    assert not result.success
    text = _failure_text(result)
    assert str(db) in text and ("damaged" in text or "cannot be read back" in text or "cannot open" in text)
    assert _digest(db) == before


def test_only_the_ingest_creates_the_warehouse(lab_env, small_universe):
    db = lab_env["QUANTLAB_DB"]
    result = dg.materialize(
        [symbols, ohlcv, features],
        selection=[features],
        partition_key=PARTITION,
        resources=_resources(),
        raise_on_error=False,
    )
    assert not result.success
    assert f"no warehouse at {db}" in _failure_text(result)
    assert not db.exists()  # no empty file left behind for the next run to "succeed" on
    with pytest.raises(WarehouseMissing, match="only the first ingest"):
        with WarehouseResource().get_connection():
            pass
    assert not db.exists()


def _swap_asset(action):
    @dg.asset(name="swap", deps=["ohlcv"], partitions_def=ohlcv.partitions_def)
    def swap() -> None:
        action()

    return swap


@dg.asset(name="reader", deps=["swap"], partitions_def=ohlcv.partitions_def)
def reader(warehouse: WarehouseResource) -> None:
    with warehouse.get_connection() as con:
        con.execute("CREATE TABLE IF NOT EXISTS touched (x INTEGER)")


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_warehouse_deleted_or_replaced_mid_run_fails_the_next_step(lab_env, small_universe, tmp_path, how):
    db = lab_env["QUANTLAB_DB"]
    keep = tmp_path / "copy.duckdb"

    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:  # another lab's warehouse (its own id)
        con.execute("CREATE TABLE warehouse_identity AS SELECT 'another-lab' AS id, now()::TIMESTAMP AS created_at")

    def action():
        shutil.copy(db, keep)
        if how == "replaced":
            shutil.copyfile(other, db)  # `cp other.duckdb quantlab.duckdb` mid-run: same inode, other data
        else:
            os.remove(db)

    result = dg.materialize(
        [symbols, ohlcv, _swap_asset(action), reader],
        partition_key=PARTITION,
        resources=_resources(),
        raise_on_error=False,
    )
    assert not result.success
    text = _failure_text(result)
    if how == "deleted":
        assert f"the warehouse {db} vanished during this run" in text
        assert not db.exists()  # not re-created empty
    else:
        assert "is not the one this run started with" in text
        assert _digest(db) == _digest(other)
        with duckdb.connect(str(db), read_only=True) as con:
            assert "touched" not in warehouse.stored_tables(con)


def test_connect_names_a_damaged_file_and_a_missing_one(tmp_path):
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(WarehouseMissing, match=str(missing)):
        warehouse.connect(missing, create=False)
    assert not missing.exists()
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, random() AS v FROM range(2000000)")
    with warehouse.connect(db) as con:
        assert warehouse.verify_readable(con, db)["t"][0] == 2_000_000
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    with pytest.raises(WarehouseDamaged, match=str(db)):
        with warehouse.connect(db) as con:
            warehouse.verify_readable(con, db)
