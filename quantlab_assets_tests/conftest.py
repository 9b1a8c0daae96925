"""Shared fixtures: every test that touches the lab gets its own DuckDB, artifacts and DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from quantlab_assets_tests.support.tiers import TIERS, tier_of_test

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Every test gets one tier marker, ``unit``, ``e2e`` or ``system`` (support/tiers.py says how);
    ``scripts/test_fast.sh`` runs ``-m unit``, CI runs them all."""
    root = Path(__file__).resolve().parent
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        name = item.cls.__name__ if getattr(item, "cls", None) else getattr(item, "originalname", item.name)
        callspec = getattr(item, "callspec", None)
        params = dict(callspec.params) if callspec else {}
        tier = tier_of_test(Path(str(item.path)), name, getattr(item, "fixturenames", ()), root, params)
        item.add_marker(getattr(pytest.mark, tier))


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
        + "".join(
            f"  - {{symbol: {s}, sector: {sec}}}\n"
            for s, sec in [("AAA", "Tech"), ("BBB", "Tech"), ("CCC", "Energy"), ("DDD", "Energy"), ("EEE", "Health")]
        )
    )
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(path))
    return ["AAA", "BBB", "CCC", "DDD", "EEE"]


# ----------------------------------------------------------------------------- instance configs

# Where each Dagster instance config the project documents lives; `dagster_storage` runs a test on each.
INSTANCE_CONFIGS = {"sqlite": "dagster.yaml", "postgres": "docs/dagster.postgres.yaml"}
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
PG_CONNECT_TIMEOUT_S = 10  # a local server answers at once; this only bounds a hung one


def _postgres_unavailable(reason: str):
    """Skip, except in CI as root, where scripts/test.sh installs and starts the server: a missing
    server there is a broken setup, not an optional dependency."""
    if os.getenv("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"CI must run the Postgres tests: {reason}", pytrace=False)
    pytest.skip(reason)


def _pg_connect(settings: dict, dbname: str):
    import psycopg2

    return psycopg2.connect(
        host=settings["DAGSTER_PG_HOST"],
        port=int(settings["DAGSTER_PG_PORT"]),
        user=settings["DAGSTER_PG_USERNAME"],
        password=settings["DAGSTER_PG_PASSWORD"],
        dbname=dbname,
        connect_timeout=PG_CONNECT_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def postgres_server() -> dict:
    """The DAGSTER_PG_* settings of a reachable PostgreSQL server (scripts/test.sh starts a private
    one with scripts/postgres.sh); DAGSTER_PG_DB is the maintenance database to create others from."""
    missing = [var for var in PG_VARS if not os.getenv(var)]
    if missing:
        _postgres_unavailable(
            f"no PostgreSQL server configured ({', '.join(missing)} unset): run the tests "
            "with `bash scripts/test.sh`, which starts one (scripts/postgres.sh)"
        )
    settings = {var: os.environ[var] for var in PG_VARS}
    try:
        import psycopg2  # noqa: F401  (dagster-postgres brings it; part of the dev extra)
    except ImportError as err:
        _postgres_unavailable(f"psycopg2 not installed ({err}): pip install -e '.[dev]'")
    try:
        _pg_connect(settings, settings["DAGSTER_PG_DB"]).close()
    except Exception as err:  # noqa: BLE001  (any connection failure means: no server to test on)
        _postgres_unavailable(
            f"PostgreSQL at {settings['DAGSTER_PG_HOST']}:{settings['DAGSTER_PG_PORT']} not reachable: {err}"
        )
    return settings


@pytest.fixture
def make_postgres_db(postgres_server):
    """Creates throwaway databases on the server (a new name each call, returned); all are dropped
    afterwards, with the connections a webserver or an undisposed instance may still hold."""
    from psycopg2 import sql

    admin = _pg_connect(postgres_server, postgres_server["DAGSTER_PG_DB"])
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    created: list[str] = []

    def make() -> str:
        name = f"quantlab_test_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return name

    try:
        yield make
        with admin.cursor() as cur:
            for name in created:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()


@pytest.fixture
def postgres_db(make_postgres_db, monkeypatch) -> str:
    """A throwaway database, named in DAGSTER_PG_DB for the test (what the Postgres config reads)."""
    name = make_postgres_db()
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    return name


def postgres_url(settings: dict, dbname: str) -> str:
    """The SQLAlchemy URL of `dbname` on the server (psycopg2, as docs/dagster.postgres.yaml)."""
    from dagster_postgres.utils import get_conn_string

    return get_conn_string(
        settings["DAGSTER_PG_USERNAME"],
        settings["DAGSTER_PG_PASSWORD"],
        settings["DAGSTER_PG_HOST"],
        dbname,
        settings["DAGSTER_PG_PORT"],
        scheme="postgresql+psycopg2",
    )


@pytest.fixture(params=list(INSTANCE_CONFIGS))
def dagster_storage(request, lab_env) -> str:
    """Runs the test once per instance config in lab_env's DAGSTER_HOME: the embedded SQLite
    default (dagster.yaml) and Dagster on a real PostgreSQL server (docs/dagster.postgres.yaml: run,
    event and schedule storage, queued run coordinator) in a throwaway database."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_db")
    shutil.copy(PROJECT_ROOT / INSTANCE_CONFIGS[request.param], lab_env["DAGSTER_HOME"] / "dagster.yaml")
    return request.param
