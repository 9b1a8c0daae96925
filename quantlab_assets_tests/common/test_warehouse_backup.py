"""``quantlab warehouse backup / verify / restore``: snapshots read back equal to the warehouse,
a retention, a damaged warehouse or snapshot is named (rc 1), a restore brings back every table
bit for bit and keeps the replaced file aside (issue 24)."""

from __future__ import annotations

import json

import duckdb
import pytest

from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets.common import backup, warehouse


def _make(db, n=300_000):
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE prices AS SELECT range AS i, random() AS v, 'x' || range AS s FROM range({n})")
        con.execute("CREATE TABLE small AS SELECT 1 AS a")


def _sums(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return warehouse.verify_readable(con, db)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    db = tmp_path / "lab.duckdb"
    monkeypatch.setenv("QUANTLAB_DB", str(db))
    monkeypatch.setenv("QUANTLAB_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.delenv("QUANTLAB_BACKUP_KEEP", raising=False)
    _make(db)
    return db, tmp_path / "backups"


def test_backup_keeps_the_newest_n_each_read_back_equal(lab, capsys):
    db, folder = lab
    original = _sums(db)
    for _ in range(3):
        assert main(["warehouse", "backup", "--keep", "2"]) == 0
    kept = backup.snapshots(folder, db)
    assert len(kept) == 2
    out = capsys.readouterr().out
    assert out.count("removed old snapshot") == 1 and "read back equal to the warehouse" in out
    for snap in kept:
        assert _sums(snap) == original
        manifest = json.loads(snap.with_suffix(".json").read_text())
        assert {k: tuple(v) for k, v in manifest["tables"].items()} == original


def test_verify_names_damage_and_restore_brings_every_table_back(lab, capsys):
    db, folder = lab
    original = _sums(db)
    assert main(["warehouse", "backup"]) == 0
    assert main(["warehouse", "verify", "--snapshots"]) == 0
    with open(db, "r+b") as handle:  # 64 KB zeroed in the middle of the data
        handle.seek(db.stat().st_size // 2)
        handle.write(b"\0" * 65536)
    capsys.readouterr()
    assert main(["warehouse", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BAD the warehouse {db} cannot be read back" in out
    damaged = db.read_bytes()
    assert main(["warehouse", "restore"]) == 0
    out = capsys.readouterr().out
    assert _sums(db) == original
    aside = [p for p in db.parent.iterdir() if p.name.startswith("lab.duckdb.replaced-")]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged  # the damaged file is kept, not deleted
    assert f"the previous file is kept as {aside[0]}" in out


def test_a_damaged_snapshot_is_named_and_skipped_by_restore(lab, capsys):
    db, folder = lab
    original = _sums(db)
    assert main(["warehouse", "backup"]) == 0
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO small VALUES (2)")
    assert main(["warehouse", "backup"]) == 0
    newest = backup.snapshots(folder, db)[-1]
    with open(newest, "r+b") as handle:
        handle.truncate(newest.stat().st_size // 2)
    capsys.readouterr()
    assert main(["warehouse", "verify", "--snapshots"]) == 1
    assert f"BAD {newest}" in capsys.readouterr().out
    assert main(["warehouse", "restore"]) == 0
    assert f"skipping {newest}" in capsys.readouterr().out
    assert _sums(db) == original  # the older, good snapshot


def test_refused_inputs_are_one_line_rc_2(lab, tmp_path, capsys, monkeypatch):
    db, _ = lab
    assert main(["warehouse", "restore", str(tmp_path / "nope.duckdb")]) == 2
    assert main(["warehouse", "backup", "--keep", "0"]) == 2
    monkeypatch.setenv("QUANTLAB_BACKUP_KEEP", "inf")
    assert main(["warehouse", "backup"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    assert "nope.duckdb: no such file" in err[0]
    assert "--keep 0" in err[1]
    assert "QUANTLAB_BACKUP_KEEP='inf'" in err[2]
    monkeypatch.setenv("QUANTLAB_DB", str(tmp_path / "missing.duckdb"))
    assert main(["warehouse", "backup"]) == 2
    assert not (tmp_path / "missing.duckdb").exists()
