"""``quantlab warehouse backup | verify | restore`` (registered by ``batch_orchestrator.cli``).

backup [--keep N]       snapshot QUANTLAB_DB into QUANTLAB_BACKUP_DIR, read back and checked,
                        keeping the N newest (default QUANTLAB_BACKUP_KEEP, 7)
verify [--snapshots]    read the warehouse back whole (and every snapshot with --snapshots)
restore [SNAPSHOT]      put a snapshot (default: the newest that verifies) in place of QUANTLAB_DB;
                        the current file is moved aside, never deleted

Exit codes: 0 done, 1 the warehouse or a snapshot is damaged, 2 refused input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quantlab_assets.common import backup, settings
from quantlab_assets.common.warehouse import WarehouseDamaged, WarehouseError, WarehouseMissing


def register(sub: argparse._SubParsersAction) -> None:
    wh = sub.add_parser("warehouse", help="snapshots of the warehouse: backup, verify, restore")
    wh_sub = wh.add_subparsers(dest="warehouse_command", required=True)
    b = wh_sub.add_parser("backup", help="snapshot the warehouse (read back and checked), keep the newest N")
    b.add_argument("--keep", type=int, help=f"snapshots to keep (default {settings.BACKUP_KEEP}, else 7)")
    b.set_defaults(handler=_guarded(cmd_backup))
    v = wh_sub.add_parser("verify", help="read the warehouse back whole; --snapshots: every snapshot too")
    v.add_argument("--snapshots", action="store_true")
    v.set_defaults(handler=_guarded(cmd_verify))
    r = wh_sub.add_parser("restore", help="put a snapshot in place of the warehouse (the old file is kept aside)")
    r.add_argument("snapshot", nargs="?", help="snapshot file (default: the newest that verifies)")
    r.set_defaults(handler=_guarded(cmd_restore))


def _guarded(command):
    """Damage: the message on stdout, rc 1. Refused input (a missing file, a bad value): one line
    on stderr, rc 2, as ``quantlab``'s other refusals."""

    def run(args) -> int:
        try:
            return command(args)
        except (WarehouseDamaged, backup.BackupError) as exc:
            print(f"quantlab warehouse {args.warehouse_command}: {exc}")
            return 1
        except (WarehouseError, ValueError) as exc:
            print(f"quantlab warehouse: {exc}", file=sys.stderr)
            return 2

    return run


def cmd_backup(args) -> int:
    keep = settings.backup_keep() if args.keep is None else args.keep
    if not 1 <= keep <= settings.MAX_BACKUP_KEEP:
        raise ValueError(f"--keep {keep}: give 1 to {settings.MAX_BACKUP_KEEP}")
    snap, removed = backup.backup(settings.db_path(), settings.backup_dir(), keep)
    print(f"snapshot {snap.path}: {len(snap.tables)} tables, {snap.rows:,} rows, read back equal to the warehouse")
    for old in removed:
        print(f"removed old snapshot {old} (keeping {keep})")
    return 0


def cmd_verify(args) -> int:
    db = settings.db_path()
    bad = 0
    if not db.exists():
        raise WarehouseMissing(f"no warehouse at {db} (QUANTLAB_DB)")
    try:
        tables = backup._read_back(db)
        print(f"ok  {db}: {len(tables)} tables, {sum(n for n, _ in tables.values()):,} rows read back")
    except WarehouseError as exc:
        print(f"BAD {exc}")
        bad += 1
    if args.snapshots:
        found = backup.snapshots(settings.backup_dir(), db)
        if not found:
            print(f"no snapshots of {db.name} in {settings.backup_dir()}")
        for path in found:
            try:
                snap = backup.verify_snapshot(path)
                print(f"ok  {path}: {len(snap.tables)} tables, {snap.rows:,} rows, as its manifest says")
            except WarehouseError as exc:
                print(f"BAD {exc}")
                bad += 1
    return 1 if bad else 0


def cmd_restore(args) -> int:
    db = settings.db_path()
    if args.snapshot:
        chosen = Path(args.snapshot)
        if not chosen.is_file():
            raise ValueError(f"snapshot {chosen}: no such file")
    else:
        chosen = _newest_good(db)
    snap, aside = backup.restore(chosen, db)
    where = f"; the previous file is kept as {aside}" if aside else ""
    print(f"restored {db} from {snap.path} ({len(snap.tables)} tables, {snap.rows:,} rows){where}")
    return 0


def _newest_good(db: Path) -> Path:
    found = backup.snapshots(settings.backup_dir(), db)
    if not found:
        raise ValueError(f"no snapshots of {db.name} in {settings.backup_dir()} (QUANTLAB_BACKUP_DIR)")
    for path in reversed(found):
        try:
            backup.verify_snapshot(path)
            return path
        except WarehouseError as exc:
            print(f"skipping {path}: {exc}")
    raise backup.BackupError(f"none of the {len(found)} snapshots in {settings.backup_dir()} reads back")
