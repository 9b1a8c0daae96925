"""The import contracts (import-linter, ``[tool.importlinter]`` in pyproject.toml) hold, and they catch
what they claim to: a core or ``common`` importing Dagster (even through another module), an
upward import, a cycle inside a package, a new top-level module left out of the layers.

``scripts/test.sh`` runs ``lint-imports`` as a static gate; this test runs the same contracts, and
runs them once more on a small throwaway package built with one violation each, so a contract
that silently stopped matching anything (a renamed package, a typo in a module expression) fails.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import importlinter.api  # noqa: F401  (configures the contract types and config readers)
import pytest
from importlinter.application.use_cases import SUCCESS, lint_imports, read_user_options
from importlinter.application.user_options import UserOptions

import quantlab_assets

PACKAGE_DIR = Path(quantlab_assets.__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
TEAMS_IN_CHAIN_ORDER = ("data_curator", "feature_store", "strategy_lab", "backtest_engine", "portfolio_supervisor")


def _config() -> UserOptions:
    return read_user_options(str(PROJECT_ROOT / "pyproject.toml"))


def _contract(config: UserOptions, contract_id: str) -> dict:
    found = [c for c in config.contracts_options if c.get("id") == contract_id]
    assert len(found) == 1, f"pyproject.toml: expected one import contract with id {contract_id!r}"
    return found[0]


def _layer_names(layer: str) -> list[str]:
    return [name.strip().strip("()").strip() for name in re.split(r"[|:]", layer)]


def _top_level_modules(package_dir: Path) -> set[str]:
    names = {p.stem for p in package_dir.glob("*.py") if p.stem != "__init__"}
    return names | {p.name for p in package_dir.iterdir() if (p / "__init__.py").is_file()}


def _kept(config_path: Path) -> dict[str, bool]:
    """Contract id -> kept, one ``lint-imports --contract ID`` each (no cache: the probes change)."""
    ids = [c["id"] for c in read_user_options(str(config_path)).contracts_options]
    return {i: lint_imports(str(config_path), limit_to_contracts=(i,), cache_dir=None) == SUCCESS for i in ids}


def test_every_top_level_module_sits_in_one_layer_in_chain_order():
    layers = _contract(_config(), "layers")
    assert layers["containers"] == ["quantlab_assets"] and layers["exhaustive"] == "True"
    placed = [_layer_names(layer) for layer in layers["layers"]]
    flat = [name for names in placed for name in names]
    assert len(flat) == len(set(flat)), "a module is placed in two layers"
    assert _top_level_modules(PACKAGE_DIR) <= set(flat), "a top-level module of quantlab_assets has no layer"
    depth = {name: i for i, names in enumerate(placed) for name in names}  # 0 is the top
    chain = [depth[team] for team in TEAMS_IN_CHAIN_ORDER]
    assert chain == sorted(chain, reverse=True), "the teams' layers must follow the chain, upstream lowest"
    assert depth["common"] == max(depth.values())
    assert depth["analytics"] < depth["portfolio_supervisor"] and depth["research"] < depth["analytics"]
    assert depth["definitions"] == depth["batch_orchestrator"]
    # above them, only other Definitions (celery_definitions: the same assets, another executor)
    assert all(name.endswith("definitions") for name, d in depth.items() if d < depth["definitions"])


def test_the_purity_contract_covers_common_and_every_core():
    pure = _contract(_config(), "pure-cores")
    assert pure["type"] == "forbidden"
    assert set(pure["source_modules"]) == {"quantlab_assets.common", "quantlab_assets.*.core"}
    assert "dagster" in pure["forbidden_modules"]
    cores = {p.parent.parent.name for p in PACKAGE_DIR.glob("*/core/__init__.py")}
    assert set(TEAMS_IN_CHAIN_ORDER) | {"analytics"} <= cores  # what the wildcard matches today


def test_the_project_keeps_every_contract():
    results = _kept(PROJECT_ROOT / "pyproject.toml")
    assert len(results) == len(_config().contracts_options) >= 4
    assert [name for name, kept in results.items() if not kept] == []


# --- controls: each contract breaks on a package built with one violation ----------------------

_PROBE = "probe_pkg"


def _probe_package(root: Path, extra: dict[str, str]) -> None:
    """A package with every layer the project declares (empty modules), plus ``extra`` files."""
    pkg = root / _PROBE
    for names in (_layer_names(layer) for layer in _contract(_config(), "layers")["layers"]):
        for name in names:
            (pkg / name).mkdir(parents=True, exist_ok=True)
            (pkg / name / "__init__.py").write_text("")
    for team in (*TEAMS_IN_CHAIN_ORDER, "analytics"):
        (pkg / team / "core").mkdir(exist_ok=True)
        (pkg / team / "core" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    for rel, text in extra.items():
        (pkg / rel).write_text(text)


def _renamed(value):
    if isinstance(value, str):
        return value.replace("quantlab_assets", _PROBE)
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    if isinstance(value, dict):
        return {k: _renamed(v) for k, v in value.items()}
    return value


def _toml(value) -> str:
    if value in ("True", "False"):
        return value.lower()
    return json.dumps(value)  # strings and lists of strings: JSON is TOML here


def _probe_config(root: Path) -> Path:
    """The project's contracts with ``quantlab_assets`` renamed to the probe package."""
    config = _config()
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {_toml(_renamed(v))}" for k, v in config.session_options.items()]
    for contract in config.contracts_options:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{k} = {_toml(_renamed(v))}" for k, v in contract.items()]
    path = root / "probe.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def probe(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def run(extra: dict[str, str]) -> set[str]:
        _probe_package(tmp_path, extra)
        for name in [m for m in sys.modules if m == _PROBE or m.startswith(_PROBE + ".")]:
            del sys.modules[name]
        return {name for name, kept in _kept(_probe_config(tmp_path)).items() if not kept}

    return run


def _with_batch(extra: dict[str, str]) -> dict[str, str]:
    """The entry-points contract names batch_orchestrator's modules: the probe has them, the CLI
    importing the Definitions and the Definitions importing the jobs, as in the project."""
    files = {
        f"batch_orchestrator/{m}.py": ""
        for m in (
            "jobs",
            "run_health",
            "run_artifacts",
            "event_log_storage",
            "postgres_storage",
            "runs_cli",
            "approvals_cli",
        )
    }
    files["batch_orchestrator/cli.py"] = f"from {_PROBE} import definitions\n"
    files["definitions/__init__.py"] = f"from {_PROBE}.batch_orchestrator import jobs\n"
    return {**files, **extra}


def test_control_a_clean_probe_keeps_every_contract(probe):
    assert probe(_with_batch({})) == set()


def test_control_a_core_importing_dagster_through_common_breaks_purity(probe):
    broken = probe(
        _with_batch(
            {
                "common/helper.py": "import dagster\n",
                "feature_store/core/__init__.py": f"from {_PROBE}.common import helper\n",
            }
        )
    )
    assert "pure-cores" in broken


def test_control_an_upward_import_breaks_the_layers(probe):
    broken = probe(_with_batch({"feature_store/core/__init__.py": f"from {_PROBE}.analytics import core\n"}))
    assert broken == {"layers"}


def test_control_a_cycle_inside_a_package_breaks_acyclic(probe):
    broken = probe(
        _with_batch(
            {
                "research/experiments.py": "def rerun():\n    from . import sweep\n",
                "research/sweep.py": "from . import experiments\n",
            }
        )
    )
    assert broken == {"acyclic"}


def test_control_a_module_outside_the_layers_breaks_exhaustiveness(probe):
    broken = probe(_with_batch({"stray.py": ""}))
    assert broken == {"layers"}


def test_control_the_cli_below_the_definitions_breaks_entry_points(probe):
    broken = probe(_with_batch({"batch_orchestrator/jobs.py": f"from {_PROBE} import definitions\n"}))
    assert "entry-points" in broken


def test_no_private_name_is_imported_across_modules():
    """``from quantlab_assets.x import _name`` couples a module to another's internals: make the name
    public where it belongs. (Dagster's private modules have their own test, in test_one_place.)"""
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            ours = isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("quantlab_assets")
            )
            if ours:
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.module} {private}")
    assert offenders == []
