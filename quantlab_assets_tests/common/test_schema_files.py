"""One schema file per team: every warehouse table is declared (``TableSchema``, DDL) in its team's
``core/schema.py`` (research: ``research/schema.py``), or in ``common/`` for the shared tables
(``audit_rejects``, the warehouse's identity). Modules are found from the file tree, so a table
declared anywhere else, new code or a merge that brings a second declaration back, fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import quantlab_assets
from quantlab_assets.common.warehouse import TableSchema

PACKAGE_DIR = Path(quantlab_assets.__file__).resolve().parent
TEAMS = ("data_curator", "feature_store", "strategy_lab", "backtest_engine", "portfolio_supervisor", "execution")
DDL = re.compile(r"\b(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\w*\s+)?TABLE|ALTER\s+TABLE)\b", re.IGNORECASE)


def _allowed(path: Path) -> bool:
    """``common/``, a team's ``core/schema.py`` and ``research/schema.py``: no other schema.py."""
    rel = path.relative_to(PACKAGE_DIR).as_posix()
    return rel.startswith("common/") or rel in {f"{t}/core/schema.py" for t in TEAMS} | {"research/schema.py"}


def _builds_a_table(func: ast.expr) -> bool:
    """``TableSchema(...)``/``Column(...)``, or through a module (``warehouse.TableSchema``), not Dagster's."""
    if isinstance(func, ast.Name):
        return func.id in ("TableSchema", "Column")
    if isinstance(func, ast.Attribute) and func.attr in ("TableSchema", "Column"):
        return not (isinstance(func.value, ast.Name) and func.value.id in ("dg", "dagster"))
    return False


def declarations(source: str) -> list[int]:
    """Lines that build a warehouse ``TableSchema`` or ``Column`` (not Dagster's ``dg.TableSchema``,
    which is UI metadata; naming the type in an annotation is not a declaration) or hold table DDL."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _builds_a_table(node.func):
            found.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DDL.search(node.value):
            found.append(node.lineno)
    return sorted(found)


def test_tables_are_declared_only_in_schema_files():
    misplaced = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "__pycache__" in path.parts or _allowed(path):
            continue
        lines = declarations(path.read_text())
        if lines:
            misplaced[str(path.relative_to(PACKAGE_DIR))] = lines
    assert misplaced == {}, f"declare tables in the team's core/schema.py: {misplaced}"


def test_every_team_has_a_schema_file_that_declares_its_tables():
    import importlib

    for team in (*(f"{t}.core" for t in TEAMS), "research"):
        module = importlib.import_module(f"quantlab_assets.{team}.schema")
        tables = [v for v in vars(module).values() if isinstance(v, TableSchema)]
        builders = [
            n for n, v in vars(module).items() if callable(v) and n.endswith("_schema") and not n.startswith("_")
        ]
        assert tables or builders, f"quantlab_assets/{team.replace('.', '/')}/schema.py declares no table"


def test_the_probe_finds_a_declaration():
    assert declarations("T = TableSchema(name='t', columns=(Column('a', 'DATE'),))\n") == [1, 1]
    assert declarations("def f(schema: TableSchema) -> None: ...\n") == []
    assert declarations("con.execute('CREATE TABLE IF NOT EXISTS x (a INT)')\n") == [1]
    assert declarations("import dagster as dg\nm = dg.TableSchema(columns=[])\n") == []
    assert declarations("t = warehouse.TableSchema(name='t', columns=(warehouse.Column('a', 'DATE'),))\n") == [1, 1]
    assert declarations("c = dagster.TableColumn('a')\nm = dagster.TableSchema(columns=[c])\n") == []
    assert not _allowed(PACKAGE_DIR / "analytics" / "schema.py")
    assert _allowed(PACKAGE_DIR / "feature_store" / "core" / "schema.py") and _allowed(
        PACKAGE_DIR / "research" / "schema.py"
    )
    assert declarations("con.execute('SELECT * FROM t')\n") == []


def test_the_sweep_kpis_are_the_columns_of_experiment_results():
    from quantlab_assets.research import sweep
    from quantlab_assets.research.schema import EXPERIMENT_RESULTS, SWEEP_KPIS

    assert tuple(sweep.KPIS) == SWEEP_KPIS
    assert [c for c in EXPERIMENT_RESULTS.column_names if c.startswith(("is_", "oos_")) and c != "is_rank"] == [
        f"{p}_{k}" for p in ("is", "oos") for k in SWEEP_KPIS
    ]
