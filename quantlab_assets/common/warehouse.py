"""DuckDB warehouse: declared table schemas and atomic, by-name partition writes.

Why not the stock DuckDB IO manager: it deletes a partition's rows and inserts outside one
transaction, inserts positionally and deletes without writing on an empty frame. Here a
slice replacement is one transaction (a crash leaves the previous state), columns are
matched by name against a declared schema, and dates are DATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd


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
        cols = ", ".join(
            f'"{c.name}" {c.sql_type}{"" if c.nullable else " NOT NULL"}' for c in self.columns
        )
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" ({cols})'


class SchemaMismatchError(ValueError):
    """A frame's columns do not match the table's declared schema."""


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Stored column names of ``table`` in this database (never an attached one's), in order."""
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = current_schema() AND table_catalog = current_database() "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()]


def ensure_table(con: duckdb.DuckDBPyConnection, schema: TableSchema) -> None:
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
    out = frame[schema.column_names].copy()
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
    data = conform(frame, schema)
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    dcol = data[schema.date_column]
    outside = data[(dcol < lo) | (dcol > hi)]
    if len(outside):
        raise ValueError(
            f"{len(outside)} rows for {schema.name!r} fall outside the slice {lo.date()}..{hi.date()}"
        )
    ensure_table(con, schema)
    delete = f'DELETE FROM "{schema.name}" WHERE "{schema.date_column}" BETWEEN ? AND ?'
    params: list = [lo.date(), hi.date()]
    if key_column is not None:
        if key_column not in schema.column_names:
            raise SchemaMismatchError(f"{key_column!r} is not a column of {schema.name!r}")
        key_list = sorted(set(keys or ()))
        strays = sorted(set(data[key_column]) - set(key_list))
        if strays:
            # Their old rows would not be deleted first, so a re-run would duplicate them.
            raise ValueError(f"rows for {key_column} {strays[:5]} are not among the keys being replaced")
        delete += f' AND "{key_column}" IN (SELECT unnest(?::VARCHAR[]))'
        params.append(key_list)
    cols = ", ".join(f'"{c}"' for c in schema.column_names)
    # Unregister only after the transaction ended: inside an aborted one it would raise and
    # hide the real error.
    con.register("_incoming", data)
    try:
        with transaction(con):
            con.execute(delete, params)
            if len(data):
                con.execute(f'INSERT INTO "{schema.name}" ({cols}) SELECT {cols} FROM _incoming')
    finally:
        con.unregister("_incoming")
    return len(data)


def append_rows(con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame) -> int:
    """Insert ``frame`` by column name in one transaction (for append-only logs)."""
    ensure_table(con, schema)
    cols = ", ".join(f'"{c}"' for c in schema.column_names)
    con.register("_rows", frame[schema.column_names])
    try:
        with transaction(con):
            con.execute(f'INSERT INTO "{schema.name}" ({cols}) SELECT {cols} FROM _rows')
    finally:
        con.unregister("_rows")
    return len(frame)


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
    cols = list(columns or schema.column_names)
    unknown = [c for c in cols if c not in schema.column_names]
    if unknown:
        raise SchemaMismatchError(f"unknown columns {unknown} for table {schema.name!r}")
    if ensure:
        ensure_table(con, schema)
    order = ['"symbol"', f'"{schema.date_column}"'] if "symbol" in schema.column_names else [
        f'"{schema.date_column}"']
    sql = (f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in cols)} FROM "{schema.name}" '
           f'WHERE "{schema.date_column}" BETWEEN ? AND ?')
    params: list = [pd.Timestamp(start).date(), pd.Timestamp(end).date()]
    if symbols is not None:
        sql += ' AND "symbol" IN (SELECT unnest(?::VARCHAR[]))'
        params.append(list(symbols))
    sql += " ORDER BY " + ", ".join(order)
    out = con.execute(sql, params).df()
    if schema.date_column in out.columns:
        out[schema.date_column] = pd.to_datetime(out[schema.date_column])
    return out


def read_strategy_slice(con: duckdb.DuckDBPyConnection, schema: TableSchema, strategy: str,
                        start, end) -> pd.DataFrame:
    """``read_slice`` of one strategy's rows of a table shared by strategies, without the key."""
    rows = read_slice(con, schema, start, end)
    return rows[rows["strategy"] == strategy].drop(columns=["strategy"]).reset_index(drop=True)


def replace_strategy_slice(con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pd.DataFrame,
                           strategy: str, start, end) -> int:
    """``replace_slice`` of one strategy's rows of a table shared by strategies: the other
    strategies' rows in [start, end] stay untouched."""
    return replace_slice(con, schema, frame.assign(strategy=strategy), start, end,
                         key_column="strategy", keys=[strategy])


def table_checksum(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> tuple[int, int]:
    """(row count, order-independent content hash) of a table over ``columns``."""
    cols = ", ".join(f'"{c}"' for c in columns)
    row = con.execute(
        f'SELECT count(*), coalesce(sum(hash({cols})), 0) FROM "{table}"'
    ).fetchall()[0]  # fetchone() leaves the result open on DuckDB 2.0
    return int(row[0]), int(row[1])
