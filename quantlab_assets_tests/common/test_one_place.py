"""A rule lives in one place: the environment is read by ``common.settings`` only, every variable
it reads is declared (and in docs/configuration.md), sessions a year are one constant, and the
content hash is one function. Modules are found from the file tree, so new code is covered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import quantlab_assets
from quantlab_assets.analytics.core import tearsheet
from quantlab_assets.backtest_engine.core import engine, kpis
from quantlab_assets.common import calendar, settings
from quantlab_assets.feature_store.core import features

PACKAGE_DIR = Path(quantlab_assets.__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
SETTINGS = PACKAGE_DIR / "common" / "settings.py"
# Dagster's own variables, which Dagster itself reads from the environment: the batching event
# log exports DAGSTER_EVENT_BATCH_SIZE for it and defers to DAGSTER_EMIT_PARTITION_SUBSET_...
DAGSTER_VARIABLES = {PACKAGE_DIR / "batch_orchestrator" / "event_log_storage.py"}
# Asset modules being rewritten to thin bodies (issue 10, point 1) that still hash a spec by
# hand; they take ``common.versions.content_hash`` with that rewrite. Shrink, never grow.
HASH_PENDING: set[Path] = set()


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``/``os.getenv``/``os.putenv`` or import them by name."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "getenv", "putenv", "environb"}:
                lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment():
    offenders = {}
    for path in modules():
        if path == SETTINGS or path in DAGSTER_VARIABLES:
            continue
        lines = _environment_reads(ast.parse(path.read_text(), str(path)))
        if lines:
            offenders[str(path.relative_to(PROJECT_ROOT))] = lines
    assert offenders == {}, f"read the environment through quantlab_assets.common.settings: {offenders}"


def test_the_probe_finds_an_environment_read():
    assert _environment_reads(ast.parse("import os\nx = os.environ.get('A')\n")) == [2]
    assert _environment_reads(ast.parse("from os import getenv\n")) == [1]
    assert _environment_reads(ast.parse("import os\nos.path.join('a')\n")) == []


def test_every_variable_read_is_declared_and_documented():
    declared = {v.name for v in settings.VARIABLES}
    source = SETTINGS.read_text()
    named = set(re.findall(r'"((?:QUANTLAB|ALPHAVANTAGE|APCA)_[A-Z_]+)"', source))
    assert named == declared
    page = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    undocumented = sorted(name for name in declared if f"`{name}`" not in page)
    assert undocumented == [], f"regenerate docs/configuration.md (common/settings_doc.py): {undocumented}"


def test_no_other_module_names_a_variable_in_code():
    """Messages may mention a variable; only settings passes one to the environment."""
    pattern = re.compile(r"""(?:environ|getenv)\W+["'](QUANTLAB|ALPHAVANTAGE|APCA)_""")
    hits = [str(p.relative_to(PROJECT_ROOT)) for p in modules() if p != SETTINGS and pattern.search(p.read_text())]
    assert hits == []


@pytest.mark.parametrize(
    ("var", "reader", "value", "expected"),
    [
        ("QUANTLAB_DB", settings.db_path, "x/lab.duckdb", settings.PROJECT_ROOT / "x/lab.duckdb"),
        ("QUANTLAB_DB", settings.db_path, "  ", settings.PROJECT_ROOT / settings.DEFAULT_DB),
        ("QUANTLAB_SYMBOLS", settings.symbols_file, "/abs/s.yaml", Path("/abs/s.yaml")),
        ("QUANTLAB_SYMBOLS", settings.symbols_file, "", None),
        ("QUANTLAB_FEATURE_PRESET", settings.feature_preset_file, "p.yaml", settings.PROJECT_ROOT / "p.yaml"),
        ("QUANTLAB_RISK_RULES", settings.risk_rules_file, "", None),
        ("QUANTLAB_STRATEGIES", settings.strategies_dir, "", settings.PROJECT_ROOT / "strategies"),
        ("QUANTLAB_SWEEPS", settings.sweeps_dir, "/s", Path("/s")),
        ("QUANTLAB_CSV_DIR", settings.csv_dir, "", settings.PROJECT_ROOT / "data/csv"),
        ("QUANTLAB_DATA_PROVIDER", settings.data_provider, " CSV ", "csv"),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "", 60.0),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "2.5", 2.5),
        ("QUANTLAB_BACKUP_KEEP", settings.backup_keep, "", 7),
        ("QUANTLAB_BACKUP_DIR", settings.backup_dir, "", settings.PROJECT_ROOT / "data/backups"),
        ("ALPHAVANTAGE_API_KEY", settings.alphavantage_api_key, " ", None),
    ],
)
def test_settings_read_at_call_time(monkeypatch, var, reader, value, expected):
    monkeypatch.setenv(var, value)
    assert reader() == expected


@pytest.mark.parametrize(
    ("var", "reader", "value", "message"),
    [
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "soon", "QUANTLAB_DB_LOCK_WAIT_S='soon' is not a number"),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "-1", "out of bounds: give a finite number"),
        # Every bound is finite (issue 24): inf and 1e400 were accepted and the wait never ended.
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "inf", "QUANTLAB_DB_LOCK_WAIT_S='inf' is out of bounds"),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "1e400", "'1e400' is out of bounds"),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "nan", "'nan' is out of bounds"),
        ("QUANTLAB_DB_LOCK_WAIT_S", settings.db_lock_wait_s, "86401", "from 0 to 86400"),
        ("QUANTLAB_BACKUP_KEEP", settings.backup_keep, "0", "QUANTLAB_BACKUP_KEEP='0' is out of bounds"),
        ("QUANTLAB_BACKUP_KEEP", settings.backup_keep, "2.5", "not a whole number"),
        ("QUANTLAB_SWEEP_MAX_VARIANTS", settings.sweep_max_variants, "inf", "is out of bounds"),
        ("QUANTLAB_DATA_PROVIDER", settings.data_provider, "yahoo", "valid: synthetic, alphavantage, csv"),
        ("QUANTLAB_START_DATE", settings.partitions_start, "2015-13-01", "is not an ISO date"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch, var, reader, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        reader()


def test_sessions_per_year_is_one_constant():
    assert calendar.SESSIONS_PER_YEAR == 252
    assert kpis.ANNUALIZATION_FACTORS[kpis.DAILY] is calendar.SESSIONS_PER_YEAR
    assert kpis.TRADING_DAYS_PER_YEAR is calendar.SESSIONS_PER_YEAR
    assert engine.SESSIONS_PER_YEAR is calendar.SESSIONS_PER_YEAR
    assert tearsheet.ANN is calendar.SESSIONS_PER_YEAR
    assert features.VolatilityParams.model_fields["periods_per_year"].default is calendar.SESSIONS_PER_YEAR
    # No module binds 252 to a name but the calendar (MAX_SPREAD_WINDOW is the kernels' exactness
    # bound for variance windows, not a year).
    bound = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
                names = {
                    t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)
                }
                if (
                    node.value.value == 252
                    and path != PACKAGE_DIR / "common" / "calendar.py"
                    and names != {"MAX_SPREAD_WINDOW"}
                ):
                    bound.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert bound == []


def test_the_content_hash_is_one_function():
    hashing = [
        str(p.relative_to(PROJECT_ROOT))
        for p in modules()
        if p != PACKAGE_DIR / "common" / "versions.py"
        and p not in HASH_PENDING
        and re.search(r"^\s*(import hashlib|from hashlib)", p.read_text(), re.M)
    ]
    assert hashing == [], "hash content with quantlab_assets.common.versions.content_hash"


# Dagster internals are imported only where they must be: the instance storages (pinned and tested
# against dagster 1.13), the execution-plan helper and the compute log folder of served images.
PRIVATE_DAGSTER_ALLOWED = {
    PACKAGE_DIR / "dagster_internals.py",
    PACKAGE_DIR / "batch_orchestrator" / "event_log_storage.py",
    PACKAGE_DIR / "batch_orchestrator" / "postgres_storage.py",
    PACKAGE_DIR / "metadata.py",
}


def test_private_dagster_imports_stay_contained():
    offenders = []
    for path in modules():
        if path in PRIVATE_DAGSTER_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.startswith("dagster._") for n in names):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize(
    ("resource", "field", "value"),
    [
        ("WarehouseResource", "lock_wait_s", float("inf")),
        ("WarehouseResource", "lock_wait_s", float("nan")),
        ("MarketDataResource", "timeout_s", float("inf")),
        ("MarketDataResource", "request_deadline_s", float("inf")),
        ("MarketDataResource", "ingest_budget_s", float("nan")),
        ("MarketDataResource", "max_retries", 10**9),
    ],
)
def test_resource_bounds_are_finite(resource, field, value):
    from pydantic import ValidationError

    from quantlab_assets import resources
    from quantlab_assets.data_curator import resources as curator

    cls = getattr(resources, resource, None) or getattr(curator, resource)
    with pytest.raises((ValidationError, ValueError), match=field):
        cls(**{field: value})
