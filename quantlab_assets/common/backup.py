"""Warehouse snapshots: ``quantlab warehouse backup / verify / restore`` (docs/operations.md).

A snapshot is a copy of the DuckDB file taken while this process holds the file's write lock, after
a CHECKPOINT (the write-ahead log folded into the file), so no run writes during the copy. The
source is read back whole first (a damaged warehouse is never snapshotted as if it were good), the
copy is read back whole after, and both must give the same row counts and content hashes per
table; those figures go to a ``<snapshot>.json`` manifest that ``verify`` checks again later.
``keep`` newest snapshots are kept; older ones are deleted after a new one verified.

``restore`` verifies the snapshot, moves the current file (and its ``.wal``) aside as
``<file>.replaced-<UTC time>`` (kept, never deleted: it may hold the only copy of something),
copies the snapshot in under a temporary name and renames it over the warehouse path.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from quantlab_assets.common import warehouse_file
from quantlab_assets.common.warehouse_file import WarehouseDamaged, WarehouseError, WarehouseMissing

SUFFIX = ".duckdb"
MANIFEST = ".json"


class BackupError(WarehouseError):
    """A snapshot cannot be taken, verified or restored; the message names the file."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    tables: dict[str, tuple[int, int]]

    @property
    def rows(self) -> int:
        return sum(n for n, _ in self.tables.values())


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def snapshots(folder: Path, db: Path) -> list[Path]:
    """Snapshots of ``db`` in ``folder``, oldest first (names sort by their UTC time)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{db.stem}-*{SUFFIX}") if p.is_file())


def _read_back(path: Path) -> dict[str, tuple[int, int]]:
    """Every table's (rows, hash) of a file opened read-only in a fresh DuckDB instance."""
    warehouse_file.validate_database_path(path)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseDamaged(f"{path} cannot be opened ({' '.join(str(exc).split())[:200]})") from None
    try:
        return warehouse_file.verify_readable(con, path)
    finally:
        con.close()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def backup(db: Path, folder: Path, keep: int, *, wait_s: float | None = None) -> tuple[Snapshot, list[Path]]:
    """Snapshot ``db`` into ``folder``; returns the snapshot and the old snapshots deleted."""
    if keep < 1:
        raise BackupError(f"keep={keep}: a backup keeps at least 1 snapshot")
    if not db.exists():
        raise WarehouseMissing(f"no warehouse at {db} to back up (QUANTLAB_DB)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {folder}: {exc.strerror} (QUANTLAB_BACKUP_DIR)") from None
    if not os.access(folder, os.W_OK):
        raise BackupError(f"the backup folder {folder} is not writable (QUANTLAB_BACKUP_DIR)")
    target = folder / f"{db.stem}-{_stamp()}{SUFFIX}"
    partial = target.with_name(target.name + ".part")
    con = warehouse_file.connect(db, create=False, wait_s=wait_s)  # holds the write lock during the copy
    try:
        source = warehouse_file.verify_readable(con, db)
        con.execute("CHECKPOINT")
        shutil.copyfile(db, partial)
        _fsync(partial)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write the snapshot {partial}: {exc.strerror}") from None
    finally:
        con.close()
    copy = _read_back(partial)
    if copy != source:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the snapshot of {db} did not read back equal to it; nothing kept (disk full or failing?)")
    os.replace(partial, target)
    target.with_suffix(MANIFEST).write_text(
        json.dumps({"source": str(db), "taken_at": _stamp(), "tables": {k: list(v) for k, v in copy.items()}}),
        encoding="utf-8",
    )
    removed = []
    for old in snapshots(folder, db)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(MANIFEST).unlink(missing_ok=True)
        removed.append(old)
    return Snapshot(target, copy), removed


def verify_snapshot(path: Path) -> Snapshot:
    """Read ``path`` back whole and compare it with its manifest (when it has one)."""
    tables = _read_back(path)
    manifest = path.with_suffix(MANIFEST)
    if manifest.exists():
        try:
            want = {k: tuple(v) for k, v in json.loads(manifest.read_text(encoding="utf-8"))["tables"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(
                f"the manifest {manifest} is unreadable ({exc}); the snapshot itself reads back"
            ) from None
        if want != tables:
            changed = sorted(k for k in set(want) | set(tables) if want.get(k) != tables.get(k))
            raise BackupError(
                f"the snapshot {path} differs from its manifest in tables {changed[:5]}: do not restore it"
            )
    return Snapshot(path, tables)


def restore(snapshot: Path, db: Path, *, wait_s: float | None = None) -> tuple[Snapshot, Path | None]:
    """Put ``snapshot`` in place of ``db``; returns the restored snapshot and where the old file went."""
    good = verify_snapshot(snapshot)
    aside = None
    if db.exists():
        try:  # refuse while a run holds the file; a damaged file is fine to replace
            warehouse_file.connect(db, create=False, wait_s=wait_s).close()
        except WarehouseDamaged:
            pass
        aside = db.with_name(f"{db.name}.replaced-{_stamp()}")
        os.replace(db, aside)
        wal = db.with_name(db.name + ".wal")
        if wal.exists():
            os.replace(wal, aside.with_name(aside.name + ".wal"))
    incoming = db.with_name(db.name + ".restoring")
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot, incoming)
    _fsync(incoming)
    os.replace(incoming, db)
    if _read_back(db) != good.tables:
        raise BackupError(f"{db} did not read back equal to {snapshot} after the copy (disk full or failing?)")
    return good, aside
