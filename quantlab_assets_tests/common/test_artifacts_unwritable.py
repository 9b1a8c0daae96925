"""An artifacts folder that cannot be written: the contracts are published, the run succeeds, one
warning names the folder up front and each report file that was not written; no logging
tracebacks (issue 24). (The tests run as root, which ignores permission bits: the folder is made
unusable by putting a file where it should be.)"""

from __future__ import annotations

import dagster as dg
import duckdb

from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.definitions import defs


def test_reports_that_cannot_be_written_never_stop_the_contracts(lab_env, small_universe, capfd):
    lab_env["QUANTLAB_ARTIFACTS"].write_text("a file where the artifacts folder should be\n")
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [symbols, ohlcv, ohlcv_quality_gate],
            partition_key="2024-03-05",
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
        warnings = [
            e.message
            for e in instance.all_logs(result.run_id)
            if e.level == 30 and e.message and "artifacts" in e.message.lower() + str(e.user_message).lower()
        ]
    assert result.success
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ohlcv").fetchall()[0][0] == 5
    text = " ".join(warnings)
    folder = lab_env["QUANTLAB_ARTIFACTS"]
    assert f"the artifacts folder {folder} cannot take this run's reports" in text
    assert "quality_report.md not written" in text and "the contracts are not affected" in text
    err = capfd.readouterr().err
    assert "--- Logging error ---" not in err and "Traceback" not in err
    assert err.count(f"quantlab: run artifacts of {result.run_id} not written") == 1
