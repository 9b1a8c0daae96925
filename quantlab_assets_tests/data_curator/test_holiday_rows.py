"""Vendor files with holiday rows: refused by default, the refusal naming the option; with
``drop_non_session_rows`` the rows are dropped and counted, with their dates, in the ingest log."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import pandas as pd
import pytest

from quantlab_assets.common import settings
from quantlab_assets.data_curator.assets import ohlcv, symbols
from quantlab_assets.data_curator.checks import ohlcv_quality_gate
from quantlab_assets.data_curator.core.csv_source import CsvProvider, read_symbol_csv
from quantlab_assets.data_curator.core.providers import InputRefused
from quantlab_assets.data_curator.core.source_rules import DROPPED
from quantlab_assets.data_curator.core.synthetic import SyntheticProvider
from quantlab_assets.definitions import defs

START, END = date(2024, 6, 24), date(2024, 7, 12)  # 2024-07-04 is Independence Day


def _with_holiday_row(path, symbol="ACME"):
    bars = SyntheticProvider(seed=2, sectors={symbol: "Tech"}).fetch([symbol], START, END).bars
    frame = bars[["date", "open", "high", "low", "close", "volume"]].assign(date=lambda f: f["date"].dt.date)
    stale = frame[frame["date"] == date(2024, 7, 3)].assign(date=date(2024, 7, 4))  # a copy of the previous close
    weekend = frame[frame["date"] == date(2024, 7, 5)].assign(date=date(2024, 7, 6))
    out = pd.concat([frame, stale, weekend]).sort_values("date")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return len(frame)


def test_refused_by_default_naming_the_option(tmp_path):
    path = tmp_path / "csv" / "ACME.csv"
    _with_holiday_row(path)
    with pytest.raises(InputRefused) as err:
        read_symbol_csv(path, "ACME", START, END)
    text = str(err.value)
    assert "2024-07-04" in text and "exchange holiday" in text and "Saturday is not a trading session" in text
    assert "drop_non_session_rows" in text and "QUANTLAB_DROP_NON_SESSION_ROWS=1" in text and str(path) in text


def test_dropped_and_counted_with_the_option(tmp_path):
    path = tmp_path / "csv" / "ACME.csv"
    sessions = _with_holiday_row(path)
    bars = read_symbol_csv(path, "ACME", START, END, drop_non_sessions=True)
    assert len(bars) == sessions and bars.attrs[DROPPED] == ["2024-07-04", "2024-07-06"]
    assert pd.Timestamp("2024-07-04") not in set(bars["date"])
    result = CsvProvider(tmp_path / "csv", drop_non_sessions=True).fetch(["ACME"], START, END)
    assert result.failures == [] and result.stats["ACME"]["non_session_rows_dropped"] == 2.0
    assert "dropped 2 non-session row(s) (2024-07-04, 2024-07-06)" in result.notes["ACME"]
    # Other problems are still refused: the option drops only rows off the calendar.
    broken = path.read_text().splitlines()
    line = next(i for i, row in enumerate(broken) if row.startswith("2024-07-08"))
    fields = broken[line].split(",")
    fields[1] = "N/A"
    broken[line] = ",".join(fields)
    path.write_text("\n".join(broken) + "\n")
    with pytest.raises(InputRefused, match="not a number"):
        read_symbol_csv(path, "ACME", START, END, drop_non_sessions=True)


def test_the_variable_is_strict(monkeypatch):
    monkeypatch.setenv("QUANTLAB_DROP_NON_SESSION_ROWS", "maybe")
    with pytest.raises(ValueError, match="QUANTLAB_DROP_NON_SESSION_ROWS='maybe' must be"):
        settings.drop_non_session_rows()
    monkeypatch.setenv("QUANTLAB_DROP_NON_SESSION_ROWS", "1")
    assert settings.drop_non_session_rows() is True


@pytest.mark.parametrize("drop", [False, True])
def test_ohlcv_asset_refuses_or_drops_and_logs(lab_env, tmp_path, monkeypatch, drop):
    registry = tmp_path / "symbols.yaml"
    registry.write_text("universe: one\nsymbols:\n  - {symbol: ACME, sector: Tech}\n")
    sessions = _with_holiday_row(tmp_path / "csv" / "ACME.csv")
    monkeypatch.setenv("QUANTLAB_SYMBOLS", str(registry))
    monkeypatch.setenv("QUANTLAB_DATA_PROVIDER", "csv")
    monkeypatch.setenv("QUANTLAB_CSV_DIR", str(tmp_path / "csv"))
    monkeypatch.setenv("QUANTLAB_DROP_NON_SESSION_ROWS", "1" if drop else "0")
    tags = {"dagster/asset_partition_range_start": str(START), "dagster/asset_partition_range_end": str(END)}
    result = dg.materialize(
        [symbols, ohlcv, ohlcv_quality_gate],
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
        tags=tags,
        raise_on_error=False,
    )
    with duckdb.connect(str(lab_env["QUANTLAB_DB"]), read_only=True) as con:
        log = con.execute("SELECT status, rows, error FROM ohlcv_ingest_log WHERE symbol = 'ACME'").fetchone()
        stored = con.execute("SELECT count(*) FROM ohlcv WHERE symbol = 'ACME'").fetchone()[0]
    if drop:
        assert result.success
        assert log[0] == "ok" and log[1] == sessions == stored
        assert "dropped 2 non-session row(s) (2024-07-04, 2024-07-06)" in log[2]
    else:
        assert not result.success and stored == 0
        assert log[0] == "failed" and "drop_non_session_rows" in log[2]
