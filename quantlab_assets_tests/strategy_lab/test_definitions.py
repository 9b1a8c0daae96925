"""A bad strategy file is skipped with a message naming file and field; the others still load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"

PROBE = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
from quantlab_assets.definitions import defs
keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
print("KEYS", keys)
"""


def test_bad_file_does_not_take_the_others_down(tmp_path):
    (tmp_path / "momentum_topk.yaml").write_text((STRATEGIES / "momentum_topk.yaml").read_text())
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 0}\n"
    )
    env = {**os.environ, "QUANTLAB_STRATEGIES": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        "momentum_topk/momentum_topk_targets" in out.stdout
        and "momentum_topk/momentum_topk_backtest_kpis" in out.stdout
    )
    assert "broken/broken_targets" not in out.stdout
    assert "strategy file skipped" in out.stdout and "broken.yaml" in out.stdout and "selection.k" in out.stdout


FILES_PROBE = """
import dagster as dg
from quantlab_assets.definitions import defs
graph = defs.resolve_asset_graph()
print("KEYS", sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
node = graph.get(dg.AssetKey("strategy_files"))
print("DESCRIPTION", node.description)
result = dg.materialize([defs.get_assets_def("strategy_files")], raise_on_error=False)
(check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "all_files_valid"]
print("CHECK", check.passed, check.description)
"""


def test_any_unloadable_file_is_reported_on_strategy_files_and_the_rest_load(tmp_path):
    (tmp_path / "momentum_topk.yaml").write_text((STRATEGIES / "momentum_topk.yaml").read_text())
    (tmp_path / "topk_typo.yaml").write_text(
        "name: topk_typo\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, topk: 3}\n"
    )
    (tmp_path / "deep.yaml").write_text("[" * 5000)  # RecursionError inside the YAML parser
    (tmp_path / "archive.yaml").mkdir()  # IsADirectoryError
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")  # not UTF-8
    env = {**os.environ, "QUANTLAB_STRATEGIES": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", FILES_PROBE], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    keys = next(line for line in out.stdout.splitlines() if line.startswith("KEYS"))
    assert "momentum_topk/momentum_topk_targets" in keys and "strategy_files" in keys and "topk_typo" not in keys
    description = next(line for line in out.stdout.splitlines() if line.startswith("DESCRIPTION"))
    check = next(line for line in out.stdout.splitlines() if line.startswith("CHECK"))
    assert check.startswith("CHECK False 4 invalid strategy file(s)"), check
    for text in (description, check):
        assert "topk_typo.yaml: field 'selection.topk': Extra inputs are not permitted" in text
        # The one YAML reader's messages (common/yaml_io.py) name the file and what is wrong.
        assert "deep.yaml: nested too deeply to read (beyond Python's recursion limit)" in text
        assert "archive.yaml: is a directory, not a strategy file" in text
        assert "latin.yaml: strategy file is not UTF-8 text (byte 0xe9 at offset 9)" in text
