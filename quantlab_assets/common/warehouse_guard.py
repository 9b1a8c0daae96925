"""Guards a run puts around the warehouse file: it is never written when damaged, and a run never
continues on a file other than the one it started with.

- **read back before use**: a file this process has not read back since it last changed (size,
  mtime or inode differ from what this process saw when it last closed it) is read back whole
  (:func:`common.warehouse_file.verify_readable`: every value of every table, so DuckDB checks every
  block's checksum) before a step may write into it. Consecutive steps in one process pay it once.
- **the file the run started with**: a warehouse carries an id written once when the ingest
  creates it (table ``warehouse_identity``, never rewritten). The first connection of a run
  records that id and the file's ``device:inode`` in the run's tags (:data:`RUN_TAG`); a later
  step that finds no file, another warehouse's id or another inode (deleted, copied over,
  replaced or restored mid-run) fails naming both. (A byte-identical copy that reuses the
  freed inode is indistinguishable, and harmless: the data is the same.)

Pure Python + DuckDB; the Dagster instance is only passed in (``add_run_tags``/``get_run_by_id``).
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from quantlab_assets.common.warehouse_file import (
    RESTORE_HINT,
    WarehouseDamaged,
    WarehouseMissing,
    file_identity,
    verify_readable,
)

RUN_TAG = "quantlab/warehouse_file"
IDENTITY_TABLE = "warehouse_identity"
_good: dict[str, tuple[str, int, int]] = {}  # resolved path -> (identity, size, mtime_ns) last seen good
_lock = threading.Lock()


def _stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return f"{st.st_dev}:{st.st_ino}", st.st_size, st.st_mtime_ns


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def read_back_if_changed(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read the whole file back through ``con`` unless this process saw it good, unchanged, already."""
    stamp = _stamp(path)
    with _lock:
        known = _good.get(_key(path))
    if stamp is not None and known == stamp:
        return
    verify_readable(con, path)


def remember_good(path: Path) -> None:
    """After this process closed its connection: the file as it is now is known good."""
    stamp = _stamp(path)
    with _lock:
        if stamp is None:
            _good.pop(_key(path), None)
        else:
            _good[_key(path)] = stamp


def forget(path: Path) -> None:
    with _lock:
        _good.pop(_key(path), None)


def warehouse_id(con: duckdb.DuckDBPyConnection, *, create: bool) -> str:
    """The warehouse's id ("-" for a warehouse from before ids, when ``create`` is False)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema() "
        "AND table_catalog = current_database()",
        [IDENTITY_TABLE],
    ).fetchall()[0][0]
    if exists:
        rows = con.execute(f"SELECT id FROM {IDENTITY_TABLE} ORDER BY created_at LIMIT 1").fetchall()
        if rows:
            return str(rows[0][0])
    if not create:
        return "-"
    new = uuid.uuid4().hex
    con.execute(f"CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)")
    con.execute(f"INSERT INTO {IDENTITY_TABLE} VALUES (?, ?)", [new, datetime.now(timezone.utc).replace(tzinfo=None)])
    return new


def run_identity(instance, run_id: str) -> str | None:
    """``path|device:inode`` the run started with (None before its first connection)."""
    run = instance.get_run_by_id(run_id)
    return run.tags.get(RUN_TAG) if run is not None else None


def record_run_identity(instance, run_id: str, path: Path, wid: str) -> None:
    identity = file_identity(path)
    if identity is not None:
        instance.add_run_tags(run_id, {RUN_TAG: f"{_key(path)}|{wid}|{identity}"})


def check_same_warehouse(path: Path, started_with: str | None, wid: str) -> None:
    """After connecting: the warehouse id must be the one the run started with."""
    if not started_with:
        return
    was = started_with.split("|")[-2]
    if was != wid:
        forget(path)
        raise WarehouseDamaged(
            f"the warehouse {path} is not the one this run started with (warehouse id {wid}, was {was}: "
            "copied over or restored during the run); nothing was written to it: check which file is right, "
            "then re-run"
        )


def check_same_file(path: Path, started_with: str | None) -> None:
    """Fail when the run started with a warehouse file that is now missing or another file."""
    if not started_with:
        return
    where, _, identity = started_with.rpartition("|")
    where, _, _wid = where.rpartition("|")
    now = file_identity(path)
    if where != _key(path):
        raise WarehouseMissing(
            f"this run started with the warehouse {where}, this step would use {path}: "
            "QUANTLAB_DB changed during the run; re-run with one QUANTLAB_DB"
        )
    if now is None:
        raise WarehouseMissing(
            f"the warehouse {path} vanished during this run (it existed when the run started); "
            f"nothing was created in its place: {RESTORE_HINT}, then re-run"
        )
    if now != identity:
        forget(path)
        raise WarehouseDamaged(
            f"the warehouse {path} is not the file this run started with (replaced during the run: "
            f"file id {now}, was {identity}); nothing was written to it: check which file is right, then re-run"
        )
