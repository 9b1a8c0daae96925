"""Pure layers never import Dagster: ``quantlab_assets.common`` and every team's ``core``.

Modules are discovered from the file tree, so a new team's ``core`` package is covered
without editing this test. Each module is imported in its own fresh interpreter (a module
imported earlier in the test session must not hide or cause a Dagster import).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import quantlab_assets

PACKAGE_DIR = Path(quantlab_assets.__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent

_PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps(sorted(m for m in sys.modules "
    "if m == 'dagster' or m.startswith(('dagster.', 'dagster_')))))\n"
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def pure_modules() -> list[str]:
    roots = [PACKAGE_DIR / "common"] + sorted(p for p in PACKAGE_DIR.glob("*/core") if p.is_dir())
    found = set()
    for root in roots:
        for path in root.rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(_module_name(path))
    return sorted(found)


MODULES = pure_modules()


def _spawn(module: str, cwd: Path = PROJECT_ROOT) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _PROBE, module], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _collect(procs: dict[str, subprocess.Popen]) -> dict[str, tuple[int, str, str]]:
    out = {}
    for module, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[module] = (proc.returncode, stdout, stderr)
    return out


@pytest.fixture(scope="module")
def probes() -> dict[str, tuple[int, str, str]]:
    """Import every module in its own interpreter, all started at once to keep this fast."""
    return _collect({m: _spawn(m) for m in MODULES})


def test_discovery_covers_the_known_pure_modules():
    expected = {
        "quantlab_assets.common",
        "quantlab_assets.common.calendar",
        "quantlab_assets.common.warehouse",
        "quantlab_assets.common.artifacts",
        "quantlab_assets.common.settings",
        "quantlab_assets.data_curator.core",
        "quantlab_assets.data_curator.core.registry",
        "quantlab_assets.data_curator.core.synthetic",
        "quantlab_assets.data_curator.core.gate",
        "quantlab_assets.data_curator.core.store",
        "quantlab_assets.data_curator.core.alphavantage",
    }
    assert expected <= set(MODULES)
    # Dagster layers are not part of the pure set.
    assert "quantlab_assets.data_curator.assets" not in MODULES
    assert not any(m.endswith((".definitions", ".resources", ".checks")) for m in MODULES)


def test_probe_detects_a_dagster_import(tmp_path):
    """Control: the probe reports a module that imports Dagster, even indirectly.

    A stand-in ``dagster`` package on the probe's path keeps this cheap (the real one
    takes seconds to import); the interpreter's cwd comes first on ``sys.path``.
    """
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "__init__.py").write_text("")
    (tmp_path / "dagster_duckdb.py").write_text("")
    (tmp_path / "impure_core.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("import dagster\nimport dagster_duckdb\n")
    (tmp_path / "pure_core.py").write_text("import json\n")
    got = _collect({m: _spawn(m, cwd=tmp_path) for m in ("impure_core", "pure_core")})
    code, stdout, stderr = got["impure_core"]
    assert code == 0, stderr
    assert json.loads(stdout) == ["dagster", "dagster_duckdb"]
    code, stdout, stderr = got["pure_core"]
    assert code == 0, stderr
    assert json.loads(stdout) == []


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_without_dagster(probes, module):
    code, stdout, stderr = probes[module]
    assert code == 0, f"importing {module} failed:\n{stderr}"
    loaded = json.loads(stdout)
    assert loaded == [], f"{module} pulls in Dagster: {loaded}"
