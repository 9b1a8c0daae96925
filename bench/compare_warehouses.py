"""Are two warehouses' stored rows the same? Every table both have, compared both ways.

A speed change must not change a stored row: run the chain on two code versions with
``bench_chain.py --baseline DIR --keep KEEP``, then

    python bench/compare_warehouses.py KEEP/chain0-500x10y/lab.duckdb KEEP/chain1-500x10y/lab.duckdb

prints, per table, the row counts and the rows of each side missing from the other
(``EXCEPT ALL``, so duplicates count), leaving out what differs by design between two runs:
run ids and ``*_at`` timestamps. Exit status 1 if any table differs.

Either side may be a Delta warehouse (``QUANTLAB_WAREHOUSE_BACKEND=delta``): a folder of Delta
tables or an ``s3://bucket/prefix`` (its S3 options from the AWS_* variables), e.g.

    python bench/compare_warehouses.py lab.duckdb s3://quantlab/warehouse

A Delta side's tables are read through Arrow into an in-memory DuckDB database, so the same
``EXCEPT ALL`` comparison runs on both backends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from quantlab_assets.common import settings

# Columns that differ between two runs of the same code.
RUN_COLUMNS = {"run_id"}
# Tables that differ between two warehouses by design: each warehouse's own id (issue 24).
OWN_TABLES = {("main", "warehouse_identity")}


def _tables(con: duckdb.DuckDBPyConnection, db: str) -> set[tuple[str, str]]:
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [db]).fetchall()
    return {(schema, table) for schema, table in rows} - OWN_TABLES


def _columns(con: duckdb.DuckDBPyConnection, db: str, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [db, schema, table],
    ).fetchall()
    return [name for (name,) in rows]


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    assert row is not None  # a count always returns a row
    return int(row[0])


def is_delta_location(location: str) -> bool:
    """An ``s3://`` URL or a folder (a DuckDB warehouse is one file)."""
    return "://" in location or Path(location).is_dir()


def attach(con: duckdb.DuckDBPyConnection, alias: str, location: str) -> None:
    """``location`` as database ``alias``: a DuckDB file read-only, or a Delta warehouse's tables
    copied through Arrow into an in-memory database."""
    if not is_delta_location(location):
        con.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [location])
        return
    from quantlab_assets.common.delta_store import DeltaStore  # the `scale` extra

    store = DeltaStore(location, settings.delta_storage_options(location))
    con.execute(f"ATTACH ':memory:' AS {alias}")
    for name in store.tables():
        table = store.table(name)
        assert table is not None  # listed just now
        con.register("_delta_scan", table.to_pyarrow_dataset())
        con.execute(f'CREATE TABLE {alias}.main."{name}" AS SELECT * FROM _delta_scan')
        con.unregister("_delta_scan")


def compare(baseline: str, candidate: str) -> bool:
    con = duckdb.connect()
    attach(con, "a", baseline)
    attach(con, "b", candidate)
    left, right = _tables(con, "a"), _tables(con, "b")
    print(f"only in {baseline}: {sorted(left - right)}\nonly in {candidate}: {sorted(right - left)}")
    same = True
    for schema, table in sorted(left & right):
        a_cols, b_cols = _columns(con, "a", schema, table), _columns(con, "b", schema, table)
        cols = [c for c in a_cols if c in b_cols and c not in RUN_COLUMNS and not c.endswith("_at")]
        select = ", ".join(f'"{c}"' for c in cols)
        a_rel, b_rel = f'a."{schema}"."{table}"', f'b."{schema}"."{table}"'
        rows = _count(con, f"SELECT count(*) FROM {a_rel}"), _count(con, f"SELECT count(*) FROM {b_rel}")
        only_a = _count(
            con, f"SELECT count(*) FROM (SELECT {select} FROM {a_rel} EXCEPT ALL SELECT {select} FROM {b_rel})"
        )
        only_b = _count(
            con, f"SELECT count(*) FROM (SELECT {select} FROM {b_rel} EXCEPT ALL SELECT {select} FROM {a_rel})"
        )
        extra = sorted(set(a_cols) ^ set(b_cols))
        same &= only_a == only_b == 0 and rows[0] == rows[1] and not extra
        print(f"{schema}.{table}: rows {rows[0]} vs {rows[1]}; only in one side: {only_a} / {only_b}", end="")
        print(f"; columns in one side only: {extra}" if extra else "")
    con.close()
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(0 if compare(sys.argv[1], sys.argv[2]) else 1)
