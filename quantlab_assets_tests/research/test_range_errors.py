"""Issue 22 point 8: asking research for a range the warehouse does not hold names the range it
holds and the command that fills it (not "bars miss 2516 session(s) ... sweeps need every session")."""

from __future__ import annotations

import pytest

from quantlab_assets import research
from quantlab_assets.common.calendar import shift_sessions
from quantlab_assets_tests.research.conftest import END, START


def test_a_range_outside_the_warehouse_names_what_is_held_and_how_to_fill_it(materialized):
    with pytest.raises(ValueError) as err:
        research.load_data("2015-01-02", "2015-03-31", db=materialized)
    message = str(err.value)
    held_from = shift_sessions(START, -260).date()
    assert f"{materialized}: asked for 2015-01-02..2015-03-31, but 61 of its 61 session(s)" in message
    assert f"the warehouse holds ohlcv {held_from}..{END} and features {START}..{END}" in message
    assert "dagster asset materialize -m quantlab_assets.definitions --select 'ohlcv*' " in message
    assert "--partition-range 2015-01-02...2015-03-31" in message
    # Partly outside (the end past the stored one): refused too, counting the missing sessions.
    with pytest.raises(ValueError, match=r"asked for .*\.\.2024-05-31, but 22 of its"):
        research.load_data(START, "2024-05-31", db=materialized)
    # Inside: fine.
    assert len(research.load_data(START, END, db=materialized).bars) > 0


def test_a_cli_sweep_is_recorded_and_listed_with_its_result(materialized, tmp_path, capsys):
    from quantlab_assets.batch_orchestrator.cli import main
    from quantlab_assets_tests.research.conftest import ROOT

    path = tmp_path / "lowvol_cli.yaml"
    path.write_text(
        f"name: lowvol_cli\nstrategy: {ROOT / 'strategies' / 'low_volatility.yaml'}\n"
        "grid:\n  selection.k: [10, 15]\n"
        "walk_forward: {start: 2024-02-01, end: 2024-04-30, folds: 2}\n"
    )
    assert main(["sweep", str(path)]) == 0
    out = capsys.readouterr().out
    exp_id = out.split("recorded experiment ")[1].split()[0]
    assert main(["experiments"]) == 0
    listing = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(exp_id))
    assert "sweep" in listing and "2 variants, best v00" in listing and "OOS Sharpe" in listing
