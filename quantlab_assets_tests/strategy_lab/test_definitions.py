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
        "name: broken\nsignal: {kind: feature, feature: mom_12_1}\nselection: {kind: top_k, k: 0}\n")
    env = {**os.environ, "QUANTLAB_STRATEGIES": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "momentum_topk/targets" in out.stdout and "momentum_topk/backtest_kpis" in out.stdout
    assert "broken/targets" not in out.stdout
    assert "strategy file skipped" in out.stdout and "broken.yaml" in out.stdout and "selection.k" in out.stdout
