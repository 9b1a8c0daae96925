"""A sweep says its size and estimated time before running the bulk of it, and a grid above the
configurable cap is refused naming the cap, before a variant is built (issue 24: 10,000 variants
ran 138 s with no word)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantlab_assets import research
from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets.research.sweep import SweepError, load_sweep, run_sweep
from quantlab_assets_tests.research.conftest import END, START

ROOT = Path(__file__).resolve().parents[2]
PERIODS = "in_sample: {start: 2024-02-01, end: 2024-03-15}\nout_of_sample: {start: 2024-03-18, end: 2024-04-30}\n"


def _sweep(tmp_path, grid: str) -> Path:
    path = tmp_path / "big.yaml"
    path.write_text(f"name: big\nstrategy: {ROOT / 'strategies' / 'low_volatility.yaml'}\ngrid:\n{grid}{PERIODS}")
    return path


def test_a_grid_above_the_cap_is_refused_before_it_is_built(tmp_path, monkeypatch):
    monkeypatch.delenv("QUANTLAB_SWEEP_MAX_VARIANTS", raising=False)
    # The 10,000 variants (10 x 10 x 100).
    grid = "".join(f"  costs.{f}: [{', '.join(str(i) for i in range(10))}]\n" for f in ("slippage_bps",))
    grid += "".join(f"  selection.k: [{', '.join(str(i + 3) for i in range(10))}]\n" for _ in range(1))
    path = _sweep(tmp_path, grid + "  costs.commission_bps: [" + ", ".join(str(i) for i in range(100)) + "]\n")
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert str(info.value) == (
        f"{path}: the grid has 10,000 variants, above the cap of 2,000 (QUANTLAB_SWEEP_MAX_VARIANTS): "
        "narrow the grid or raise the cap"
    )


def test_the_cap_is_configurable(tmp_path, monkeypatch):
    path = _sweep(tmp_path, "  selection.k: [10, 12, 15]\n  costs.slippage_bps: [3.0, 10.0]\n")
    monkeypatch.setenv("QUANTLAB_SWEEP_MAX_VARIANTS", "6")
    assert len(load_sweep(path).variants) == 6
    monkeypatch.setenv("QUANTLAB_SWEEP_MAX_VARIANTS", "5")
    with pytest.raises(SweepError, match="the grid has 6 variants, above the cap of 5"):
        load_sweep(path)


def test_the_cli_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    path = _sweep(tmp_path, "  selection.k: [10, 12, 15]\n  costs.slippage_bps: [3.0, 10.0]\n")
    monkeypatch.setenv("QUANTLAB_SWEEP_MAX_VARIANTS", "5")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "above the cap of 5 (QUANTLAB_SWEEP_MAX_VARIANTS)" in err[0]


def test_the_size_and_estimate_come_before_the_other_variants(materialized, tmp_path):
    sweep = load_sweep(_sweep(tmp_path, "  selection.k: [10, 12, 15]\n  costs.slippage_bps: [3.0, 10.0]\n"))
    data = research.load_data(START, END, db=materialized)
    said: list[tuple[str, int]] = []
    run_sweep(sweep, data, say=lambda line: said.append((line, len(said))))
    assert len(said) == 1
    line = said[0][0]
    assert line.startswith("sweep big: 6 variants x ") and "the first took " in line and "the other 5 about " in line
