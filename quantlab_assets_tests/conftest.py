"""Shared fixtures: every test that touches the lab gets its own DuckDB, artifacts and DAGSTER_HOME."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """A temporary lab: QUANTLAB_DB, QUANTLAB_ARTIFACTS and DAGSTER_HOME under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        "QUANTLAB_DB": str(tmp_path / "lab.duckdb"),
        "QUANTLAB_ARTIFACTS": str(tmp_path / "artifacts"),
        "DAGSTER_HOME": str(home),
        "QUANTLAB_DATA_PROVIDER": "synthetic",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("QUANTLAB_SYMBOLS", "QUANTLAB_CSV_DIR", "ALPHAVANTAGE_API_KEY", "ALPHAVANTAGE_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return {k: Path(v) if k != "QUANTLAB_DATA_PROVIDER" else v for k, v in env.items()}


@pytest.fixture
def small_universe(tmp_path, monkeypatch):
    """A five-name registry, so end-to-end runs stay small."""
    path = tmp_path / "symbols.yaml"
    path.write_text(
        "universe: test5\nsymbols:\n"
        + "".join(f"  - {{symbol: {s}, sector: {sec}}}\n" for s, sec in [
            ("AAA", "Tech"), ("BBB", "Tech"), ("CCC", "Energy"), ("DDD", "Energy"), ("EEE", "Health")])
    )
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(path))
    return ["AAA", "BBB", "CCC", "DDD", "EEE"]
