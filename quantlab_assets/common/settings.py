"""Every environment variable Quant Lab reads, resolved when called (never at import time).

This is the one module that reads ``os.environ`` (a test asserts it). Each variable is declared
once in ``VARIABLES`` with its default and meaning (docs/configuration.md's table is generated from
it by ``common/settings_doc.py``); each has one function returning its typed value. Resources take
typed, optional fields: a field left at ``None`` means "this function's value", read in the process that runs
the step. Relative paths are anchored at the project root, so every entry point (CLI,
``dagster dev``, tests, a notebook) agrees on one file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal, cast

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_DB = "data/quantlab.duckdb"
DEFAULT_ARTIFACTS = "artifacts"
DEFAULT_PROVIDER = "synthetic"
DEFAULT_START_DATE = "2015-01-02"
DEFAULT_CSV_DIR = "data/csv"
DEFAULT_STRATEGIES = "strategies"
DEFAULT_SWEEPS = "sweeps"
DEFAULT_LOCK_WAIT_S = 60.0
MAX_LOCK_WAIT_S = 86_400.0  # every wait is bounded: a day at most
DEFAULT_BACKUP_DIR = "data/backups"
DEFAULT_BACKUP_KEEP = 7
MAX_BACKUP_KEEP = 1000
DEFAULT_SWEEP_MAX_VARIANTS = 2000
MAX_SWEEP_MAX_VARIANTS = 1_000_000
ALPHAVANTAGE_URL = "https://www.alphavantage.co/query"
PROVIDERS = ("synthetic", "alphavantage", "csv")

DB = "QUANTLAB_DB"
ARTIFACTS = "QUANTLAB_ARTIFACTS"
DATA_PROVIDER = "QUANTLAB_DATA_PROVIDER"
SYMBOLS = "QUANTLAB_SYMBOLS"
CSV_DIR = "QUANTLAB_CSV_DIR"
START_DATE = "QUANTLAB_START_DATE"
STRATEGIES = "QUANTLAB_STRATEGIES"
FEATURE_PRESET = "QUANTLAB_FEATURE_PRESET"
FEATURE_SETS = "QUANTLAB_FEATURE_SETS"
DROP_NON_SESSION_ROWS = "QUANTLAB_DROP_NON_SESSION_ROWS"
RISK_RULES = "QUANTLAB_RISK_RULES"
DB_LOCK_WAIT_S = "QUANTLAB_DB_LOCK_WAIT_S"
SWEEPS = "QUANTLAB_SWEEPS"
SWEEP_MAX_VARIANTS = "QUANTLAB_SWEEP_MAX_VARIANTS"
BACKUP_DIR = "QUANTLAB_BACKUP_DIR"
BACKUP_KEEP = "QUANTLAB_BACKUP_KEEP"
DAGSTER_HOME = "DAGSTER_HOME"  # Dagster's own variable (in DAGSTER_VARIABLES below): only checked
ALPHAVANTAGE_API_KEY = "ALPHAVANTAGE_API_KEY"
# The warehouse backend (issue 27, docs/scaling.md): the DuckDB file, or Delta tables.
WAREHOUSE_BACKEND = "QUANTLAB_WAREHOUSE_BACKEND"
DELTA_URL = "QUANTLAB_DELTA_URL"
DELTA_COMMIT_RETRIES = "QUANTLAB_DELTA_COMMIT_RETRIES"
Backend = Literal["duckdb", "delta"]
BACKENDS: tuple[Backend, ...] = ("duckdb", "delta")
DEFAULT_DELTA_URL = "data/delta"
DEFAULT_DELTA_COMMIT_RETRIES = 5
# delta-rs's S3 options, read from the standard AWS variables when the Delta URL is s3://.
S3_OPTION_VARS = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ALLOW_HTTP")
ALPHAVANTAGE_BASE_URL = "ALPHAVANTAGE_BASE_URL"
ALPACA_KEY_ID = "APCA_API_KEY_ID"
ALPACA_SECRET_KEY = "APCA_API_SECRET_KEY"
ALPACA_BASE_URL = "APCA_API_BASE_URL"
ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"


class SettingError(ValueError):
    """A variable's value is refused; the message names the variable and what to give."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    # When it is read: "run" (by the step that needs it), "load" (when the code location loads: it
    # shapes the asset graph), "CLI", or "Dagster" (Dagster's own variable, read by Dagster).
    read: str = "run"
    # The resource field that overrides it for one run (set in the launchpad), if any.
    field: str = "–"


VARIABLES = (
    Variable(DB, DEFAULT_DB, "the DuckDB warehouse file", field="`warehouse.database`"),
    Variable(
        ARTIFACTS,
        f"{DEFAULT_ARTIFACTS}/",
        "per-run artifacts: `runs/<run_id>/reports/*.md`",
        field="`artifacts.root`",
    ),
    Variable(DATA_PROVIDER, DEFAULT_PROVIDER, "`synthetic`, `alphavantage` or `csv`", field="`market_data.provider`"),
    Variable(SYMBOLS, "packaged demo universe (50 names)", "symbol registry YAML", field="`market_data.symbols_file`"),
    Variable(
        CSV_DIR,
        DEFAULT_CSV_DIR,
        "directory of `<SYMBOL>.csv` for the `csv` provider",
        field="`market_data.csv_dir`",
    ),
    Variable(
        DROP_NON_SESSION_ROWS,
        "0",
        "`1`: the `csv` provider drops rows dated on a weekend or an exchange holiday (counted, with their dates, "
        "in `ohlcv_ingest_log`) instead of refusing the symbol",
        field="`market_data.drop_non_session_rows`",
    ),
    Variable(START_DATE, DEFAULT_START_DATE, "first trading-day partition", read="load"),
    Variable(
        STRATEGIES,
        f"{DEFAULT_STRATEGIES}/",
        "folder of strategy YAML files, one set of strategy assets per valid file",
        read="load",
    ),
    Variable(
        FEATURE_PRESET,
        "packaged `feature_store/presets/default.yaml`",
        "feature preset YAML (docs/features.md)",
        read="load",
        field="`feature_store.preset_file` (must name the same preset)",
    ),
    Variable(
        FEATURE_SETS,
        "packaged `feature_store/presets/sets/`",
        "folder of extra feature sets, one `features_<set>` asset and table each (docs/features.md)",
        read="load (the research API: call)",
    ),
    Variable(
        RISK_RULES,
        "packaged `portfolio_supervisor/risk_rules.yaml`",
        "the supervisor's limits: defaults plus per-strategy overrides",
        field="`supervisor.rules_file`",
    ),
    Variable(
        DB_LOCK_WAIT_S,
        f"{DEFAULT_LOCK_WAIT_S:g}",
        "seconds to wait for another process's DuckDB lock before failing (names the holder's PID); finite, 0 to "
        f"{MAX_LOCK_WAIT_S:g}",
        field="`warehouse.lock_wait_s`",
    ),
    Variable(
        SWEEP_MAX_VARIANTS,
        f"{DEFAULT_SWEEP_MAX_VARIANTS}",
        f"a sweep grid larger than this is refused before it is built (1 to {MAX_SWEEP_MAX_VARIANTS:,}); a sweep "
        "prints its size and, after its first variant, the estimated time of the rest",
    ),
    Variable(
        BACKUP_DIR,
        f"{DEFAULT_BACKUP_DIR}/",
        "folder of `quantlab warehouse backup` snapshots (docs/operations.md)",
        read="CLI",
    ),
    Variable(BACKUP_KEEP, f"{DEFAULT_BACKUP_KEEP}", f"snapshots kept by a backup (1 to {MAX_BACKUP_KEEP})", read="CLI"),
    Variable(
        SWEEPS,
        f"{DEFAULT_SWEEPS}/",
        "folder of sweep YAML files, one `<sweep>/experiment_results` asset each",
        read="load",
    ),
    Variable(
        ALPHAVANTAGE_API_KEY, "–", "key for `alphavantage`; read when the client is built, never logged or stored"
    ),
    Variable(ALPHAVANTAGE_BASE_URL, ALPHAVANTAGE_URL, "the Alpha Vantage endpoint (tests point it at 127.0.0.1)"),
    Variable(
        ALPACA_KEY_ID,
        "–",
        "Alpaca paper key id for `execution.broker: alpaca` (docs/execution.md); read at run time, never logged or "
        "stored",
    ),
    Variable(ALPACA_SECRET_KEY, "–", "Alpaca paper secret; read at run time, never logged or stored"),
    Variable(ALPACA_BASE_URL, ALPACA_PAPER_URL, "the Alpaca trading API (tests point it at 127.0.0.1)"),
    Variable(
        WAREHOUSE_BACKEND,
        "duckdb",
        "`duckdb` (the `QUANTLAB_DB` file) or `delta` (Delta tables at `QUANTLAB_DELTA_URL`; needs "
        "`pip install -e '.[scale]'`; docs/scaling.md section 7)",
    ),
    Variable(
        DELTA_URL,
        DEFAULT_DELTA_URL,
        "folder or `s3://bucket/prefix` of the Delta tables (`delta` backend); S3 options from "
        + ", ".join(f"`{var}`" for var in S3_OPTION_VARS),
    ),
    Variable(
        DELTA_COMMIT_RETRIES,
        str(DEFAULT_DELTA_COMMIT_RETRIES),
        "re-runs of a Delta write that lost a commit race to a writer of the same slice (each logged), then a clear "
        "failure",
    ),
)

# Dagster's own variables: Dagster reads them, not Quant Lab (the batching event log only sets
# DAGSTER_EVENT_BATCH_SIZE when it is unset). Declared here so the configuration page lists them.
DAGSTER_VARIABLES = (
    Variable(DAGSTER_HOME, "`.dagster_home` (set by the scripts)", "Dagster run/event/schedule storage", "Dagster"),
    Variable(
        "DAGSTER_PG_HOST",
        "–",
        "the Postgres server of `docs/dagster.postgres.yaml` (docs/scaling.md); `scripts/test.sh` sets the "
        "`DAGSTER_PG_*` variables for its private server",
        "Dagster",
    ),
    Variable("DAGSTER_PG_PORT", "–", "its port", "Dagster"),
    Variable("DAGSTER_PG_USERNAME", "–", "its user", "Dagster"),
    Variable("DAGSTER_PG_PASSWORD", "–", "its password", "Dagster"),
    Variable("DAGSTER_PG_DB", "–", "its database", "Dagster"),
    Variable(
        "DAGSTER_EVENT_BATCH_SIZE",
        "`1000` (set by our storages when unset)",
        "events per batched write; `0` turns batching off",
        "Dagster",
    ),
)


def _raw(var: str) -> str:
    """The variable's value, stripped; "" when unset or blank (blank counts as unset)."""
    return os.environ.get(var, "").strip()


def from_project_root(path: str | Path) -> Path:
    """``path`` itself if absolute, else taken from the project root."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def _path_from_env(var: str, default: str) -> Path:
    raw = _raw(var)
    return from_project_root(raw or default)


def _optional_path(var: str) -> Path | None:
    """A file whose default is packaged with the code (None: the packaged one)."""
    raw = _raw(var)
    return from_project_root(raw) if raw else None


def db_path() -> Path:
    """DuckDB file: ``QUANTLAB_DB`` or ``data/quantlab.duckdb``."""
    return _path_from_env(DB, DEFAULT_DB)


def artifacts_root() -> Path:
    """Artifact root: ``QUANTLAB_ARTIFACTS`` or ``artifacts/``."""
    return _path_from_env(ARTIFACTS, DEFAULT_ARTIFACTS)


def data_provider() -> str:
    """``QUANTLAB_DATA_PROVIDER``: synthetic (default), alphavantage or csv."""
    name = _raw(DATA_PROVIDER).lower() or DEFAULT_PROVIDER
    if name not in PROVIDERS:
        raise SettingError(f"{DATA_PROVIDER}={name!r} is not a known provider; valid: {', '.join(PROVIDERS)}")
    return name


def symbols_file() -> Path | None:
    """``QUANTLAB_SYMBOLS``, or None for the packaged demo universe."""
    return _optional_path(SYMBOLS)


def csv_dir() -> Path:
    """``QUANTLAB_CSV_DIR`` or ``data/csv``: one ``<SYMBOL>.csv`` per symbol."""
    return _path_from_env(CSV_DIR, DEFAULT_CSV_DIR)


def partitions_start() -> date:
    """First trading-day partition: ``QUANTLAB_START_DATE`` (ISO) or 2015-01-02."""
    raw = _raw(START_DATE) or DEFAULT_START_DATE
    try:
        first = date.fromisoformat(raw)
    except ValueError as exc:
        raise SettingError(f"{START_DATE}={raw!r} is not an ISO date (YYYY-MM-DD)") from exc
    if first > date.today():
        raise SettingError(
            f"{START_DATE}={raw!r} is in the future: no trading-day partition exists yet; give a date up to today"
        )
    return first


def strategies_dir() -> Path:
    """``QUANTLAB_STRATEGIES`` or ``strategies/``: one set of strategy assets per YAML file."""
    return _path_from_env(STRATEGIES, DEFAULT_STRATEGIES)


def sweeps_dir() -> Path:
    """``QUANTLAB_SWEEPS`` or ``sweeps/``: one experiment_results asset per YAML file."""
    return _path_from_env(SWEEPS, DEFAULT_SWEEPS)


def feature_preset_file() -> Path | None:
    """``QUANTLAB_FEATURE_PRESET``, or None for the packaged default preset."""
    return _optional_path(FEATURE_PRESET)


def feature_sets_dir() -> Path | None:
    """``QUANTLAB_FEATURE_SETS``, or None for the packaged ``feature_store/presets/sets``."""
    return _optional_path(FEATURE_SETS)


def drop_non_session_rows() -> bool:
    """``QUANTLAB_DROP_NON_SESSION_ROWS``: 1/true/yes drops CSV rows dated on a weekend or an
    exchange holiday (counted in the ingest log); unset, 0/false/no refuses them (the default)."""
    raw = _raw(DROP_NON_SESSION_ROWS).lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ValueError(f"{DROP_NON_SESSION_ROWS}={raw!r} must be 1/true/yes or 0/false/no")


def risk_rules_file() -> Path | None:
    """``QUANTLAB_RISK_RULES``, or None for the packaged rules."""
    return _optional_path(RISK_RULES)


def bounded_number(var: str, raw: str, lo: float, hi: float, unit: str = "") -> float:
    """``raw`` as a finite number within [lo, hi], else ``ValueError`` naming the variable and the
    bounds (``inf``, ``nan`` and ``1e400`` parse as floats: they are refused here)."""
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{var}={raw!r} is not a number{unit}; give one from {lo:g} to {hi:g}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise SettingError(f"{var}={raw!r} is out of bounds: give a finite number{unit} from {lo:g} to {hi:g}")
    return value


def db_lock_wait_s() -> float:
    """``QUANTLAB_DB_LOCK_WAIT_S`` or 60: how long to wait for another process's DuckDB lock
    (finite, at most a day)."""
    raw = _raw(DB_LOCK_WAIT_S)
    if not raw:
        return DEFAULT_LOCK_WAIT_S
    return bounded_number(DB_LOCK_WAIT_S, raw, 0.0, MAX_LOCK_WAIT_S, " of seconds")


def dagster_home() -> str:
    """``DAGSTER_HOME`` as set ("" when unset): Dagster reads it itself; ``quantlab`` checks it first."""
    return _raw(DAGSTER_HOME)


def sweep_max_variants() -> int:
    """``QUANTLAB_SWEEP_MAX_VARIANTS`` or 2000: a larger grid is refused before it is built."""
    return _whole(SWEEP_MAX_VARIANTS, DEFAULT_SWEEP_MAX_VARIANTS, MAX_SWEEP_MAX_VARIANTS)


def _whole(var: str, default: int, hi: int) -> int:
    raw = _raw(var)
    if not raw:
        return default
    value = bounded_number(var, raw, 1, hi)
    if value != int(value):
        raise SettingError(f"{var}={raw!r} is not a whole number")
    return int(value)


def backup_dir() -> Path:
    """``QUANTLAB_BACKUP_DIR`` or ``data/backups``: where warehouse snapshots go."""
    return _path_from_env(BACKUP_DIR, DEFAULT_BACKUP_DIR)


def backup_keep() -> int:
    """``QUANTLAB_BACKUP_KEEP`` or 7: snapshots a backup keeps (the oldest beyond it are deleted)."""
    return _whole(BACKUP_KEEP, DEFAULT_BACKUP_KEEP, MAX_BACKUP_KEEP)


def alphavantage_base_url() -> str:
    return _raw(ALPHAVANTAGE_BASE_URL) or ALPHAVANTAGE_URL


def alphavantage_api_key() -> str | None:
    """The key is read at call time and handed to the client only; never stored elsewhere."""
    return _raw(ALPHAVANTAGE_API_KEY) or None


def warehouse_backend() -> Backend:
    """``QUANTLAB_WAREHOUSE_BACKEND``: duckdb (default) or delta."""
    name = _raw(WAREHOUSE_BACKEND).lower() or "duckdb"
    if name not in BACKENDS:
        raise ValueError(f"{WAREHOUSE_BACKEND}={name!r} is not a warehouse backend; valid: {', '.join(BACKENDS)}")
    return cast(Backend, name)


def delta_url() -> str:
    """``QUANTLAB_DELTA_URL``: an ``s3://`` URL as given, else a folder from the project root."""
    raw = _raw(DELTA_URL) or DEFAULT_DELTA_URL
    return raw if "://" in raw else str(from_project_root(raw))


def delta_storage_options(url: str | None = None) -> dict[str, str]:
    """delta-rs storage options for an ``s3://`` Delta URL (``url``, else ``QUANTLAB_DELTA_URL``): the
    AWS_* variables that are set. ``AWS_S3_ALLOW_UNSAFE_RENAME`` is never set: S3 conditional writes
    arbitrate concurrent commits."""
    if not (url or delta_url()).startswith("s3://"):
        return {}
    return {var: _raw(var) for var in S3_OPTION_VARS if _raw(var)}


def delta_commit_retries() -> int:
    """``QUANTLAB_DELTA_COMMIT_RETRIES`` or 5: re-runs of a Delta write that lost a commit race."""
    raw = _raw(DELTA_COMMIT_RETRIES)
    if not raw:
        return DEFAULT_DELTA_COMMIT_RETRIES
    if not raw.isdigit():
        raise ValueError(f"{DELTA_COMMIT_RETRIES}={raw!r} must be a whole number of retries (0 or more)")
    return int(raw)


def alpaca_keys() -> tuple[str, str] | None:
    """(key id, secret) for the Alpaca adapter, read at call time and handed to it only."""
    key, secret = _raw(ALPACA_KEY_ID), _raw(ALPACA_SECRET_KEY)
    return (key, secret) if key and secret else None


def alpaca_base_url() -> str:
    return _raw(ALPACA_BASE_URL) or ALPACA_PAPER_URL
