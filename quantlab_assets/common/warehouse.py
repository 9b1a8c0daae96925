"""DuckDB warehouse: declared table schemas and atomic, by-name partition writes.

Why not the stock DuckDB IO manager: it deletes a partition's rows and inserts outside one
transaction, inserts positionally and deletes without writing on an empty frame. Here a
slice replacement is one transaction (a crash leaves the previous state), columns are
matched by name against a declared schema, and dates are DATE.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

import duckdb
import pandas as pd

from quantlab_assets.common import settings
from quantlab_assets.common.warehouse_errors import SchemaMismatchError as SchemaMismatchError

if TYPE_CHECKING:  # the Delta backend needs the `scale` extra; the DuckDB file does not
    from quantlab_assets.common.delta_store import DeltaSession

logger = logging.getLogger(__name__)

# Every DuckDB database file carries this magic at byte 8 (after the header checksum).
_DUCKDB_MAGIC = b"DUCK"
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


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


class WarehouseError(RuntimeError):
    """The warehouse file cannot be used (not a DuckDB database, locked too long)."""


class NotADuckDBFile(WarehouseError):
    """``QUANTLAB_DB`` names a directory, a CSV, a Parquet file... anything but a DuckDB file."""


class WarehouseLocked(WarehouseError):
    """Another process kept DuckDB's lock on the file for the whole allowed wait."""


class WarehouseMissing(WarehouseError):
    """No warehouse file where one must exist (only the first ingest creates it)."""


class WarehouseDamaged(WarehouseError):
    """The file is a DuckDB database that cannot be read back (checksum mismatch, truncated)."""


RESTORE_HINT = "restore the last good backup (`quantlab warehouse restore`, docs/operations.md)"


def validate_database_path(path: str | Path) -> Path:
    """``path`` if it is a DuckDB file or can become one; otherwise :class:`NotADuckDBFile`.

    DuckDB opens a CSV or Parquet file as an empty in-memory database without complaint, so
    a run would "succeed" and keep nothing: the file's magic bytes are checked instead.
    """
    path = Path(path)
    if path.is_dir():
        raise NotADuckDBFile(
            f"the warehouse path {path} is a directory, not a DuckDB file "
            "(set QUANTLAB_DB to a file such as data/quantlab.duckdb)"
        )
    if path.exists():
        with open(path, "rb") as handle:
            head = handle.read(12)
        if head[8:12] != _DUCKDB_MAGIC:
            kind = (
                "an empty file"
                if not head
                else "a Parquet file"
                if head[:4] == b"PAR1"
                else "a SQLite file"
                if head.startswith(b"SQLite")
                else "not a DuckDB database"
            )
            raise NotADuckDBFile(
                f"the warehouse path {path} is {kind} (first bytes {head[:8]!r}); "
                "point QUANTLAB_DB at a DuckDB file (a new path creates one)"
            )
    else:
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise NotADuckDBFile(f"the warehouse path {path} lies under {parent}, which is a file")
    return path


def _lock_holder(message: str) -> str:
    match = _LOCK_PID.search(message)
    if not match:
        return "another process"
    pid = match.group(1)
    try:  # Linux: name the program so the user knows which window to close
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmd = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        return f"PID {pid} ({cmd[:120]})" if cmd else f"PID {pid}"
    except OSError:
        return f"PID {pid}"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(
    path: str | Path,
    read_only: bool = False,
    *,
    create: bool = True,
    wait_s: float | None = None,
    config: dict | None = None,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = 0.25,
    log_every_s: float = 5.0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting at most ``wait_s`` for another process's lock.

    The path is validated first (:func:`validate_database_path`). While another process
    holds the file (DuckDB admits one writer process, and a writer excludes readers), this
    polls and reports through ``on_wait`` (default: this module's logger) every
    ``log_every_s``: "waiting for the DuckDB lock held by PID n, 12 s of 60". After
    ``wait_s`` (default ``settings.db_lock_wait_s()``) it raises :class:`WarehouseLocked` naming the
    holder and what to close. ``create=False``: a missing file is :class:`WarehouseMissing` (DuckDB
    would silently create an empty one).
    """
    path = validate_database_path(path)
    if not create and not path.exists():
        raise WarehouseMissing(
            f"no warehouse at {path}: only the first ingest (ohlcv) creates it; run ohlcv first, "
            f"point QUANTLAB_DB at the right file, or {RESTORE_HINT}"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    budget = settings.db_lock_wait_s() if wait_s is None else wait_s
    report = on_wait or logger.warning
    started = time.monotonic()
    next_report = started
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc):
                raise WarehouseDamaged(
                    f"cannot open the warehouse {path} ({' '.join(str(exc).split())[:200]}): {RESTORE_HINT}"
                ) from None
        except duckdb.Error as exc:  # a corrupt header or catalog: DuckDB says so at open
            raise WarehouseDamaged(
                f"the warehouse {path} is damaged ({' '.join(str(exc).split())[:200]}): {RESTORE_HINT}"
            ) from None
            holder = _lock_holder(str(exc))
            waited = time.monotonic() - started
            if waited >= budget:
                raise WarehouseLocked(
                    f"the warehouse {path} stayed locked by {holder} for {waited:.0f} s (limit "
                    f"{budget:.0f} s): close that process's DuckDB connection (a notebook's "
                    f"duckdb.connect, a DBeaver/duckdb CLI session) and run again, or raise "
                    f"{settings.DB_LOCK_WAIT_S}"
                ) from None
            if time.monotonic() >= next_report:
                report(f"waiting for the DuckDB lock held by {holder} on {path}, {waited:.0f} s of {budget:.0f}")
                next_report = time.monotonic() + log_every_s
            time.sleep(min(poll_s, max(budget - waited, 0.0)) or poll_s)


def file_identity(path: str | Path) -> str | None:
    """``device:inode`` of the file (None when absent): a replaced or re-created file differs,
    while DuckDB's own writes keep it (it writes in place)."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def stored_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Base tables of this database's main schema, by name."""
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = current_schema() AND table_catalog = current_database() ORDER BY table_name"
        ).fetchall()
    ]


def verify_readable(con: duckdb.DuckDBPyConnection, path: str | Path) -> dict[str, tuple[int, int]]:
    """Read every stored value of every table back (DuckDB checks each block's checksum as it reads
    it) and return ``{table: (rows, content hash)}``; any read error is :class:`WarehouseDamaged`
    naming the file and the table.

    Call it on a connection that has read nothing yet (a fresh database instance), so blocks come
    from the file and not from DuckDB's buffer pool.
    """
    out: dict[str, tuple[int, int]] = {}
    table = "(catalog)"
    try:
        for table in stored_tables(con):
            out[table] = table_checksum(con, table, table_columns(con, table))
    except duckdb.Error as exc:
        raise WarehouseDamaged(
            f"the warehouse {path} cannot be read back (table {table}: {' '.join(str(exc).split())[:200]}); "
            f"nothing was written to it: {RESTORE_HINT}"
        ) from None
    return out


def _is_delta(con: object) -> TypeGuard[DeltaSession]:
    """A Delta session (QUANTLAB_WAREHOUSE_BACKEND=delta, common/delta_store.py), not a DuckDB file."""
    return getattr(con, "backend", None) == "delta"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Stored column names of ``table`` in this database (never an attached one's), in order."""
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() AND table_catalog = current_database() "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


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


def table_checksum(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> tuple[int, int]:
    """(row count, order-independent content hash) of a table over ``columns``."""
    cols = ", ".join(f'"{c}"' for c in columns)
    row = con.execute(f'SELECT count(*), coalesce(sum(hash({cols})), 0) FROM "{table}"').fetchall()[
        0
    ]  # fetchone() leaves the result open on DuckDB 2.0
    return int(row[0]), int(row[1])
