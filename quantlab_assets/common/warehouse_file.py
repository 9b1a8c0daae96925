"""Opening the warehouse file and reading it back: the path checked to be a DuckDB file (DuckDB
would open a CSV as an empty database), a lock held by another process waited for within a bound
and then named, a missing or damaged file refused in one line saying what to do
(``WarehouseError`` and its kinds); ``verify_readable`` reads every value of every table back so
DuckDB checks each block's checksum, ``table_checksum`` gives a table's rows and content hash.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from quantlab_assets.common import settings

# The public module's name, as before the warehouse's file handling moved here.
logger = logging.getLogger("quantlab_assets.common.warehouse")

# Every DuckDB database file carries this magic at byte 8 (after the header checksum).
_DUCKDB_MAGIC = b"DUCK"
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


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
        except duckdb.Error as exc:  # a corrupt header or catalog: DuckDB says so at open
            raise WarehouseDamaged(
                f"the warehouse {path} is damaged ({' '.join(str(exc).split())[:200]}): {RESTORE_HINT}"
            ) from None


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


def table_checksum(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> tuple[int, int]:
    """(row count, order-independent content hash) of a table over ``columns``."""
    cols = ", ".join(f'"{c}"' for c in columns)
    row = con.execute(f'SELECT count(*), coalesce(sum(hash({cols})), 0) FROM "{table}"').fetchall()[
        0
    ]  # fetchone() leaves the result open on DuckDB 2.0
    return int(row[0]), int(row[1])
