"""Environment-driven settings, resolved when called (never at import time)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_DB = "data/quantlab.duckdb"
DEFAULT_ARTIFACTS = "artifacts"
DEFAULT_PROVIDER = "synthetic"
DEFAULT_START_DATE = "2015-01-02"
ALPHAVANTAGE_URL = "https://www.alphavantage.co/query"
PROVIDERS = ("synthetic", "alphavantage", "csv")


def _path_from_env(var: str, default: str) -> Path:
    raw = os.environ.get(var, "").strip()
    path = Path(raw) if raw else Path(default)
    # Relative defaults are anchored at the project root so every entry point
    # (CLI, dagster dev, tests) agrees on one file.
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def db_path() -> Path:
    """DuckDB file: ``QUANTLAB_DB`` or ``data/quantlab.duckdb``."""
    return _path_from_env("QUANTLAB_DB", DEFAULT_DB)


def artifacts_root() -> Path:
    """Artifact root: ``QUANTLAB_ARTIFACTS`` or ``artifacts/``."""
    return _path_from_env("QUANTLAB_ARTIFACTS", DEFAULT_ARTIFACTS)


def data_provider() -> str:
    """``QUANTLAB_DATA_PROVIDER``: synthetic (default), alphavantage or csv."""
    name = os.environ.get("QUANTLAB_DATA_PROVIDER", "").strip().lower() or DEFAULT_PROVIDER
    if name not in PROVIDERS:
        raise ValueError(f"QUANTLAB_DATA_PROVIDER={name!r} is not a known provider; valid: {', '.join(PROVIDERS)}")
    return name


def partitions_start() -> date:
    """First trading-day partition: ``QUANTLAB_START_DATE`` (ISO) or 2015-01-02."""
    raw = os.environ.get("QUANTLAB_START_DATE", "").strip() or DEFAULT_START_DATE
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"QUANTLAB_START_DATE={raw!r} is not an ISO date (YYYY-MM-DD)") from exc


def alphavantage_base_url() -> str:
    return os.environ.get("ALPHAVANTAGE_BASE_URL", "").strip() or ALPHAVANTAGE_URL


def alphavantage_api_key() -> str | None:
    """The key is read at call time and handed to the client only; never stored elsewhere."""
    return os.environ.get("ALPHAVANTAGE_API_KEY", "").strip() or None
