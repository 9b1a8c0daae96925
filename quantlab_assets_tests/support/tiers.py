"""Test tiers, assigned from what a test does (``conftest.pytest_collection_modifyitems``).

- ``system``: real outside processes: PostgreSQL, Chromium, the webserver, a CLI or interpreter
  started with ``subprocess``;
- ``e2e``: Dagster runs in this process (``materialize``, ``execute_in_process``, a
  ``DagsterInstance``) into a temporary DuckDB and DAGSTER_HOME;
- ``unit``: everything else (pure cores on arrays, frames and in-memory or temporary DuckDB).

What a test does is read from its source: the test function, the module-level helpers and fixtures
it names (followed through the helpers they name, in its module and the conftest files above it),
and the fixtures it requests. A test marked explicitly keeps its mark. The heaviest tier found wins.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

TIERS = ("unit", "e2e", "system")  # lightest first
SYSTEM = re.compile(r"\b(subprocess|Popen|chromium|playwright|dagster-webserver|dagster_webserver|psycopg2)\b")
E2E = re.compile(r"\b(materialize|materialize_to_memory|execute_in_process|DagsterInstance|instance_for_test)\b")
# Fixtures whose tier is known without reading them (defined in conftest.py or by pytest plugins).
SYSTEM_FIXTURES = frozenset({"postgres_server", "make_postgres_db", "postgres_db"})


def tier_of_source(text: str) -> str:
    if SYSTEM.search(text):
        return "system"
    if E2E.search(text):
        return "e2e"
    return "unit"


def heavier(a: str, b: str) -> str:
    return a if TIERS.index(a) >= TIERS.index(b) else b


@cache
def module_tiers(path: Path) -> dict[str, str]:
    """Tier of every module-level function of ``path`` (helpers and fixtures), following the names
    each one mentions to the other functions of the module until nothing changes."""
    tree = ast.parse(path.read_text(), str(path))
    text = path.read_text()
    funcs = {
        node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    own = {name: tier_of_source(ast.get_source_segment(text, node) or "") for name, node in funcs.items()}
    names = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for name, node in funcs.items()}
    args = {
        name: {a.arg for a in node.args.args}
        for name, node in funcs.items()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    tiers = dict(own)
    changed = True
    while changed:
        changed = False
        for name in funcs:
            for used in (names[name] | args.get(name, set())) & tiers.keys():
                new = heavier(tiers[name], tiers[used])
                if new != tiers[name]:
                    tiers[name], changed = new, True
    return tiers


def _conftests(test_path: Path, root: Path) -> list[Path]:
    out = []
    for folder in [test_path.parent, *test_path.parent.parents]:
        candidate = folder / "conftest.py"
        if candidate.is_file():
            out.append(candidate)
        if folder == root:
            break
    return out


def tier_of_test(test_path: Path, function_name: str, fixturenames, root: Path, params: dict | None = None) -> str:
    """The tier of one collected test (``params``: its parametrization, ``dagster_storage`` among them)."""
    tier = "unit"
    fixtures = set(fixturenames)
    if fixtures & SYSTEM_FIXTURES or (params or {}).get("dagster_storage") == "postgres":
        tier = "system"
    local = module_tiers(test_path)
    tier = heavier(tier, local.get(function_name, "unit"))
    for fixture in fixtures:
        if fixture in local:
            tier = heavier(tier, local[fixture])
        for conftest in _conftests(test_path, root):
            tier = heavier(tier, module_tiers(conftest).get(fixture, "unit"))
    return tier
