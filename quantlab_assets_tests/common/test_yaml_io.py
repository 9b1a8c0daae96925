"""The one YAML reader of the configuration files, through each loader that uses it: every way a
file can fail becomes that loader's error, naming the file (and key and line for a duplicate)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from quantlab_assets.common.yaml_io import describe_validation_error, read_yaml
from quantlab_assets.data_curator.core.registry import RegistryError, load_registry
from quantlab_assets.feature_store.core.features import PresetError, load_preset
from quantlab_assets.portfolio_supervisor.core.rules import RulesError, load_rules
from quantlab_assets.research.api import load_spec
from quantlab_assets.research.sweep import SweepError, load_sweep
from quantlab_assets.strategy_lab.core.spec import StrategyError, discover, load_strategy

LOADERS = [
    (load_registry, RegistryError),
    (load_rules, RulesError),
    (load_strategy, StrategyError),
    (load_preset, PresetError),
    (load_sweep, SweepError),
    (load_spec, StrategyError),  # the research API's strategy files (notebooks, sweeps' base strategy)
]


def _deep_list(depth: int) -> str:
    return "key: " + "[" * depth + "]" * depth + "\n"


BAD_FILES = {
    "duplicate_key": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' at line 3 (first at line 1)"),
    "nested_duplicate": ("top:\n  x: 1\n  y: 2\n  x: 5\n", "duplicate key 'x' at line 4 (first at line 2)"),
    "deep_nesting": (_deep_list(5000), "nested too deeply to read"),
    "not_utf8": (b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 9)"),
    "impossible_date": ("d: 2024-13-45\n", "not valid YAML"),
    "broken_syntax": ("a: [1, 2\n", "not valid YAML"),
}


def _write(path, body):
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body)


@pytest.mark.parametrize("loader,error", LOADERS, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_every_loader_names_the_file_for_every_bad_file(tmp_path, loader, error, case):
    body, needle = BAD_FILES[case]
    path = tmp_path / "archive.yaml"
    _write(path, body)
    with pytest.raises(error) as err:
        loader(path)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


@pytest.mark.parametrize("loader,error", LOADERS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_directory_named_like_a_file_is_refused_by_name(tmp_path, loader, error):
    path = tmp_path / "archive.yaml"
    path.mkdir()
    with pytest.raises(error, match="is a directory, not a") as err:
        loader(path)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("loader,error", LOADERS, ids=lambda x: getattr(x, "__name__", ""))
def test_an_unreadable_file_is_refused_by_name(tmp_path, loader, error):
    path = tmp_path / "archive.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    with pytest.raises(error, match="not readable") as err:
        loader(path)
    assert str(err.value).startswith(f"{path}: ")


def test_unreadable_message_without_root(tmp_path, monkeypatch):
    # The same branch as above, reachable when the tests run as root: read_text raising PermissionError.
    path = tmp_path / "locked.yaml"
    path.write_text("a: 1\n")

    def deny(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_text", deny)
    with pytest.raises(ValueError, match=r"locked\.yaml: risk rules file is not readable \(permission denied\)"):
        read_yaml(path, "risk rules")


def test_merge_keys_may_override_but_explicit_keys_may_not_repeat(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  x: 3\n")
    assert read_yaml(path, "test") == {"base": {"x": 1, "y": 2}, "derived": {"x": 3, "y": 2}}


def test_a_strategy_directory_with_bad_files_still_loads_the_good_one(tmp_path):
    good = (
        "name: good\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 5}\n"
        "constraints: {max_weight: 0.2, min_names: 5}\n"
    )
    (tmp_path / "good.yaml").write_text(good)
    (tmp_path / "archive.yaml").mkdir()
    (tmp_path / "deep.yaml").write_text(_deep_list(5000))
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp_path / "twice.yaml").write_text(good.replace("name: good", "name: twice") + "name: twice\n")
    specs, errors = discover(tmp_path)
    assert [s.name for s in specs] == ["good"]
    assert sorted(os.path.basename(p) for p in errors) == ["archive.yaml", "deep.yaml", "latin1.yaml", "twice.yaml"]
    assert "duplicate key 'name' at line 5 (first at line 1)" in errors[str(tmp_path / "twice.yaml")]


def test_a_sweep_file_that_repeats_a_key_is_refused_naming_the_file_and_both_lines(tmp_path):
    # The shipped sweep with its grid given twice: PyYAML alone would keep the second grid silently.
    root = Path(__file__).resolve().parents[2]
    shipped = (root / "sweeps" / "momentum_grid.yaml").read_text()
    path = tmp_path / "momentum_grid.yaml"
    path.write_text(shipped + "grid:\n  selection.k: [3]\n")
    first = 1 + next(i for i, line in enumerate(shipped.splitlines()) if line.startswith("grid:"))
    last = len(shipped.splitlines()) + 1
    with pytest.raises(SweepError) as err:
        load_sweep(path)
    assert str(err.value) == f"{path}: duplicate key 'grid' at line {last} (first at line {first})"


def test_a_research_strategy_file_that_repeats_a_nested_key_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "momentum.yaml"
    path.write_text(
        "name: momentum\nsignal: {kind: feature, feature: mom_12_1}\n"
        "selection:\n  kind: top_k\n  k: 5\n  k: 50\nconstraints: {max_weight: 0.2, min_names: 5}\n"
    )
    with pytest.raises(StrategyError) as err:
        load_spec(path, overrides=["selection.k=10"])
    assert str(err.value) == f"{path}: duplicate key 'k' at line 6 (first at line 5)"
    path.write_text(path.read_text().replace("  k: 50\n", ""))
    assert load_spec(path, overrides=["selection.k=10"]).selection.k == 10


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str
    weight: float


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[_Item]
    scale: float = 1.0


def test_the_formatter_names_field_and_item():
    raw = {"items": [{"symbol": "AAA", "weight": 1}, {"symbol": "BBB", "weight": "x"}], "scale": "big"}
    with pytest.raises(ValidationError) as err:
        _Doc.model_validate(raw)
    text = describe_validation_error(err.value, raw, {"items": "symbol"})
    assert text.split("; ") == [
        "field 'items.1.weight' (symbol 'BBB'): Input should be a valid number, unable to parse string as a number",
        "field 'scale': Input should be a valid number, unable to parse string as a number",
    ]


def test_a_strategy_validator_that_trips_is_reported_against_the_file(tmp_path, monkeypatch):
    from quantlab_assets.strategy_lab.core import spec as spec_module

    def trip(raw):
        raise TypeError("unsupported operand type(s) for *: 'NoneType' and 'float'")

    monkeypatch.setattr(spec_module.StrategySpec, "model_validate", staticmethod(trip))
    path = tmp_path / "odd.yaml"
    path.write_text("name: odd\n")
    specs, errors = discover(tmp_path)
    assert specs == [] and errors == {
        str(path): f"{path}: could not be validated: TypeError: unsupported "
        "operand type(s) for *: 'NoneType' and 'float'"
    }


def test_every_model_read_from_yaml_is_a_frozen_model():
    """One strict ``model_config`` (common.yaml_io.FrozenModel), not one copy per class: no class
    in quantlab_assets derives from pydantic's BaseModel directly or re-declares extra/frozen."""
    import ast
    from pathlib import Path

    import quantlab_assets
    from quantlab_assets.common.yaml_io import FrozenModel

    package = Path(quantlab_assets.__file__).resolve().parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name != "FrozenModel":
                if any(isinstance(b, ast.Name) and b.id == "BaseModel" for b in node.bases):
                    offenders.append(f"{path.name}:{node.lineno} {node.name}(BaseModel)")
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "ConfigDict"
                and path.name != "yaml_io.py"
            ):
                if {k.arg for k in node.keywords} & {"extra", "frozen"}:
                    offenders.append(f"{path.name}:{node.lineno} ConfigDict(extra/frozen)")
    assert offenders == []
    assert FrozenModel.model_config == {"extra": "forbid", "frozen": True}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FrozenModel.model_validate({"typo": 1})
