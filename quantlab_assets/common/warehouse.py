"""DuckDB warehouse: declared table schemas and atomic, by-name partition writes.

Why not the stock DuckDB IO manager: it deletes a partition's rows and inserts outside one
transaction, inserts positionally and deletes without writing on an empty frame. Here a
slice replacement is one transaction (a crash leaves the previous state), columns are
matched by name against a declared schema, and dates are DATE.

Opening the file (path check, bounded lock wait, the refusals) and reading it back whole live in
``warehouse_file``; their names are imported here, so ``warehouse.connect`` and the error classes
keep their place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, TypeGuard

import duckdb
import pandas as pd

from quantlab_assets.common.warehouse_errors import SchemaMismatchError as SchemaMismatchError
from quantlab_assets.common.warehouse_file import (
    RESTORE_HINT,
    NotADuckDBFile,
    WarehouseDamaged,
    WarehouseError,
    WarehouseLocked,
    WarehouseMissing,
    connect,
    file_identity,
    stored_tables,
    table_checksum,
    table_columns,
    validate_database_path,
    verify_readable,
)

if TYPE_CHECKING:  # the Delta backend needs the `scale` extra; the DuckDB file does not
    from quantlab_assets.common.delta_store import DeltaSession

__all__ = [
    "RESTORE_HINT",
    "Column",
    "NotADuckDBFile",
    "SchemaMismatchError",
    "TableSchema",
    "WarehouseDamaged",
    "WarehouseError",
    "WarehouseLocked",
    "WarehouseMissing",
    "append_rows",
    "append_rows_in_transaction",
    "conform",
    "connect",
    "ensure_table",
    "file_identity",
    "read_slice",
    "read_strategy_slice",
    "replace_slice",
    "replace_slice_in_transaction",
    "replace_strategy_slice",
    "replace_table_in_transaction",
    "stored_tables",
    "table_checksum",
    "table_columns",
    "transaction",
    "validate_database_path",
    "verify_readable",
]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    nullable: bool = True
    description: str = ""


@dataclass(frozen=True)
class TableSchema:
    """A table's declared columns; the only place a table or column name comes from."""

    name: str
    columns: tuple[Column, ...]
    date_column: str = "date"
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        cols = ", ".join(f'"{c.name}" {c.sql_type}{"" if c.nullable else " NOT NULL"}' for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" ({cols})'


def _is_delta(con: object) -> TypeGuard[DeltaSession]:
    """A Delta session (QUANTLAB_WAREHOUSE_BACKEND=delta, common/delta_store.py), not a DuckDB file."""
    return getattr(con, "backend", None) == "delta"


def ensure_table(con: duckdb.DuckDBPyConnection, schema: TableSchema) -> None:
    if _is_delta(con):  # the Delta backend (QUANTLAB_WAREHOUSE_BACKEND=delta)
        missing = con.ensure(schema)
        if missing:
            raise SchemaMismatchError(
                f"Delta table {con.store.uri(schema.name)} lacks declared columns {missing}; "
                "it was created by an older schema: migrate it or restore a version that has them"
            )
        return
    con.execute(schema.ddl())
    existing = table_columns(con, schema.name)
    missing = [c for c in schema.column_names if c not in existing]
    if missing:
        raise SchemaMismatchError(
            f"table {schema.name!r} in the warehouse lacks declared columns {missing}; "
            "it was created by an older schema: migrate or drop it"
        )


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection):
    if _is_delta(con):  # writes queued, one Delta commit per table at the end
        with con.transaction():
            yield con
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def conform(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Columns in declared order; any missing or extra column is an error, not a guess."""
    have, want = set(frame.columns), set(schema.column_names)
    if have != want:
        raise SchemaMismatchError(
            f"frame for table {schema.name!r}: missing columns {sorted(want - have)}, "
            f"unexpected columns {sorted(have - want)}"
        )
    # The caller's columns, not copies (a 10-year slice is hundreds of MB): only the date column
    # is replaced, on this frame, so the caller's frame is left as it was.
    out = pd.DataFrame({c: frame[c] for c in schema.column_names}, copy=False)
    out[schema.date_column] = pd.to_datetime(out[schema.date_column]).dt.normalize()
    return out


def replace_slice(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    frame: pd.DataFrame,
    start: date | pd.Timestamp,
    end: date | pd.Timestamp,
    *,
    key_column: str | None = None,
    keys: Iterable[str] | None = None,
) -> int:
    """Atomically replace the rows of ``schema`` dated in [start, end] with ``frame``.

    With ``key_column``/``keys``, only rows whose key is in ``keys`` are deleted first, so a
    partial refresh (some symbols failed to download) keeps the others' previous rows.
    Rows of ``frame`` outside [start, end] are an error: a partition writes only itself.
    Returns the number of rows inserted.
    """
    return _replace_slice(con, schema, frame, start, end, key_column, keys, own_transaction=True)


def replace_slice_in_transaction(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    frame: pd.DataFrame,
    start: date | pd.Timestamp,
    end: date | pd.Timestamp,
    *,
    key_column: str | None = None,
    keys: Iterable[str] | None = None,
) -> int:
    """:func:`replace_slice` inside a transaction the caller has opened (and commits), so
    an audit, the publish and its log commit together or not at all."""
    return _replace_slice(con, schema, frame, start, end, key_column, keys, own_transaction=False)


def _replace_slice(con, schema, frame, start, end, key_column, keys, *, own_transaction: bool) -> int:
    data = conform(frame, schema)
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    dcol = data[schema.date_column]
    outside = data[(dcol < lo) | (dcol > hi)]
    if len(outside):
        raise ValueError(f"{len(outside)} rows for {schema.name!r} fall outside the slice {lo.date()}..{hi.date()}")
    ensure_table(con, schema)
    if _is_delta(con):  # one Delta commit replacing exactly the slice (replaceWhere)
        key_list = sorted(set(keys or ())) if key_column is not None else []
        _check_keys(schema, data, key_column, key_list)
        from quantlab_assets.common.delta_store import slice_predicate

        con.replace(schema, data, slice_predicate(schema.date_column, lo, hi, key_column, key_list))
        return len(data)
    delete = f'DELETE FROM "{schema.name}" WHERE "{schema.date_column}" BETWEEN ? AND ?'
    params: list = [lo.date(), hi.date()]
    if key_column is not None:
        key_list = sorted(set(keys or ()))
        _check_keys(schema, data, key_column, key_list)
        delete += f' AND "{key_column}" IN (SELECT unnest(?::VARCHAR[]))'
        params.append(key_list)
    cols = ", ".join(f'"{c}"' for c in schema.column_names)
    # Unregister only after the transaction ended: inside an aborted one it would raise and
    # hide the real error.
    con.register("_incoming", data)
    try:
        if own_transaction:
            with transaction(con):
                _delete_insert(con, schema, delete, params, cols, len(data))
        else:
            _delete_insert(con, schema, delete, params, cols, len(data))
    finally:
        if own_transaction:
            con.unregister("_incoming")
    return len(data)


def _check_keys(schema: TableSchema, data: pd.DataFrame, key_column: str | None, key_list: list) -> None:
    if key_column is None:
        return
    if key_column not in schema.column_names:
        raise SchemaMismatchError(f"{key_column!r} is not a column of {schema.name!r}")
    strays = sorted(set(data[key_column]) - set(key_list))
    if strays:
        # Their old rows would not be deleted first, so a re-run would duplicate them.
        raise ValueError(f"rows for {key_column} {strays[:5]} are not among the keys being replaced")


def _delete_insert(con, schema: TableSchema, delete: str, params: list, cols: str, n: int) -> None:
    con.execute(delete, params)
    if n:
        con.execute(f'INSERT INTO "{schema.name}" ({cols}) SELECT {cols} FROM _incoming')


def append_rows(con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame) -> int:
    """Insert ``frame`` by column name in one transaction (for append-only logs)."""
    ensure_table(con, schema)
    if _is_delta(con):
        con.append(schema, frame[schema.column_names])
        return len(frame)
    cols = ", ".join(f'"{c}"' for c in schema.column_names)
    con.register("_rows", frame[schema.column_names])
    try:
        with transaction(con):
            con.execute(f'INSERT INTO "{schema.name}" ({cols}) SELECT {cols} FROM _rows')
    finally:
        con.unregister("_rows")
    return len(frame)


def append_rows_in_transaction(con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame) -> int:
    """:func:`append_rows` inside a transaction the caller has opened."""
    if not len(frame):
        return 0
    if _is_delta(con):
        ensure_table(con, schema)  # type: ignore[arg-type]  # (a DeltaSession stands in for the connection)
        con.append(schema, frame[schema.column_names])
        return len(frame)
    cols = ", ".join(f'"{c}"' for c in schema.column_names)
    con.register("_rows", frame[schema.column_names])
    con.execute(f'INSERT INTO "{schema.name}" ({cols}) SELECT {cols} FROM _rows')
    return len(frame)


def replace_table_in_transaction(con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame) -> int:
    """Replace every row of ``schema`` (a small reference table) inside the caller's transaction."""
    ensure_table(con, schema)
    if _is_delta(con):
        con.replace(schema, frame[schema.column_names], None)
        return len(frame)
    con.execute(f'DELETE FROM "{schema.name}"')
    return append_rows_in_transaction(con, schema, frame)


def read_slice(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    start: date | pd.Timestamp,
    end: date | pd.Timestamp,
    columns: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    ensure: bool = True,
) -> pd.DataFrame:
    """Rows dated in [start, end], ordered by (symbol, date) when there is a symbol column.

    ``ensure=False`` reads without creating the table first (a read-only connection cannot)."""
    return _read(con, schema, start, end, columns, symbols, ensure)


def _read(con, schema: TableSchema, start, end, columns, symbols, ensure, strategy: str | None = None) -> pd.DataFrame:
    cols = list(columns or schema.column_names)
    unknown = [c for c in cols if c not in schema.column_names]
    if unknown:
        raise SchemaMismatchError(f"unknown columns {unknown} for table {schema.name!r}")
    if ensure:
        ensure_table(con, schema)
    order = ['"symbol"', f'"{schema.date_column}"'] if "symbol" in schema.column_names else [f'"{schema.date_column}"']
    sql = (
        f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "{schema.name}" '
        f'WHERE "{schema.date_column}" BETWEEN ? AND ?'
    )
    params: list = [pd.Timestamp(start).date(), pd.Timestamp(end).date()]
    if symbols is not None:
        sql += ' AND "symbol" IN (SELECT unnest(?::VARCHAR[]))'
        params.append(list(symbols))
    if strategy is not None:
        sql += ' AND "strategy" = ?'
        params.append(strategy)
    sql += " ORDER BY " + ", ".join(order)
    out = con.execute(sql, params).df()
    if schema.date_column in out.columns:
        out[schema.date_column] = pd.to_datetime(out[schema.date_column])
    return out


def read_strategy_slice(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, strategy: str, start, end, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """``read_slice`` of one strategy's rows of a table shared by strategies, without the key
    (``columns``: only those, e.g. the three a tearsheet needs of a million position rows).

    The strategy is filtered in SQL: reading every strategy's rows and filtering in pandas made a
    10-year backfill's reads grow with the number of strategies (issue 10)."""
    columns = [c for c in (columns or schema.column_names) if c != "strategy"]
    return _read(con, schema, start, end, columns, None, True, strategy=strategy)


def replace_strategy_slice(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame, strategy: str, start, end
) -> int:
    """``replace_slice`` of one strategy's rows of a table shared by strategies: the other
    strategies' rows in [start, end] stay untouched."""
    return replace_slice(
        con, schema, frame.assign(strategy=strategy), start, end, key_column="strategy", keys=[strategy]
    )
