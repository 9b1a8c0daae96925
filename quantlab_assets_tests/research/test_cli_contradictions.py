"""Issue 22 point 5 in the CLI: ``quantlab backtest`` of a strategy the supervisor can never approve
says so before its figures, naming both files and both fields."""

from __future__ import annotations

from quantlab_assets.batch_orchestrator.cli import main
from quantlab_assets.portfolio_supervisor.core.rules import DEFAULT_RULES_FILE
from quantlab_assets_tests.research.conftest import END, START


def test_cli_backtest_warns_when_the_supervisor_rejects_every_day(materialized, tmp_path, capsys):
    path = tmp_path / "levered_ls.yaml"
    path.write_text(
        "name: levered_ls\nsignal: {kind: feature, feature: ret_5}\n"
        "selection: {kind: long_short_quantile, quantile: 0.2}\n"
        "constraints: {max_weight: 0.2, gross_exposure: 2.0, net_exposure: 0.0, min_names: 5}\n"
    )
    assert main(["backtest", str(path), "--start", START, "--end", END]) == 0
    captured = capsys.readouterr()
    assert (
        f"warning: {path}: field 'constraints.gross_exposure' = 2 and {DEFAULT_RULES_FILE}: "
        "field 'defaults.max_gross' = 1.05: gross above; the supervisor rejects every invested day"
    ) in captured.err
    assert "levered_ls" in captured.out
    # A strategy within the limits gets no warning.
    ok = tmp_path / "plain_ls.yaml"
    ok.write_text(
        path.read_text().replace("levered_ls", "plain_ls").replace("gross_exposure: 2.0", "gross_exposure: 1.0")
    )
    assert main(["backtest", str(ok), "--start", START, "--end", END]) == 0
    assert "warning:" not in capsys.readouterr().err
