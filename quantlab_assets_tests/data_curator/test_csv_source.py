"""The CSV provider: per-symbol files, common header spellings, per-symbol failures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab_assets.data_curator.core.csv_source import CsvProvider, read_symbol_csv
from quantlab_assets.data_curator.core.schema import PROVIDER_COLUMNS

D = date.fromisoformat

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2023-12-28,10.0,11.0,9.5,10.5,10.25,1000
2023-12-29,10.5,11.5,10.0,11.0,10.75,1100
2024-01-02,11.0,12.0,10.5,11.5,11.25,1200
2024-01-03,11.5,12.5,11.0,12.0,11.75,1300
2024-01-04,12.0,13.0,11.5,12.5,12.25,1400
2024-01-05,12.5,13.5,12.0,13.0,12.75,1500
2024-01-08,13.0,14.0,12.5,13.5,13.25,1600
"""

# Plain lower-case headers, columns in another order, newest first.
PLAIN = """date,volume,close,low,high,open
2024-01-08,600,23.5,22.5,24.0,23.0
2024-01-05,500,23.0,22.0,23.5,22.5
2024-01-04,400,22.5,21.5,23.0,22.0
2024-01-03,300,22.0,21.0,22.5,21.5
2024-01-02,200,21.5,20.5,22.0,21.0
"""


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "csv"
    d.mkdir()
    (d / "AAA.csv").write_text(YAHOO)
    (d / "BBB.csv").write_text(PLAIN)
    return d


def test_yahoo_headers(data_dir):
    result = CsvProvider(data_dir).fetch(["AAA"], D("2024-01-01"), D("2024-01-31"))
    bars = result.bars
    assert list(bars.columns) == list(PROVIDER_COLUMNS)
    assert result.failures == [] and result.fetched_symbols == ["AAA"]
    assert [d.date() for d in bars["date"]] == [
        D("2024-01-02"),
        D("2024-01-03"),
        D("2024-01-04"),
        D("2024-01-05"),
        D("2024-01-08"),
    ]
    first = bars.iloc[0]
    assert (first["symbol"], first["open"], first["high"], first["low"], first["close"]) == (
        "AAA",
        11.0,
        12.0,
        10.5,
        11.5,
    )
    assert first["adj_close"] == 11.25  # from "Adj Close", not a copy of close
    assert first["volume"] == 1200.0
    assert (bars["dividend"] == 0.0).all() and (bars["split_coefficient"] == 1.0).all()
    for col in PROVIDER_COLUMNS[2:]:
        assert bars[col].dtype == np.float64


def test_plain_headers_any_column_order(data_dir):
    bars = CsvProvider(data_dir).fetch(["BBB"], D("2024-01-01"), D("2024-01-31")).bars
    assert bars["date"].is_monotonic_increasing
    assert bars["open"].tolist() == [21.0, 21.5, 22.0, 22.5, 23.0]
    assert bars["close"].tolist() == [21.5, 22.0, 22.5, 23.0, 23.5]
    assert bars["volume"].tolist() == [200.0, 300.0, 400.0, 500.0, 600.0]
    assert (bars["adj_close"] == bars["close"]).all()  # no adjusted column: falls back to close


def test_filters_to_the_requested_range(data_dir):
    result = CsvProvider(data_dir).fetch(["AAA", "BBB"], D("2024-01-03"), D("2024-01-05"))
    bars = result.bars
    assert len(bars) == 6
    assert bars.groupby("symbol").size().to_dict() == {"AAA": 3, "BBB": 3}
    assert bars["date"].min() == pd.Timestamp("2024-01-03")
    assert bars["date"].max() == pd.Timestamp("2024-01-05")
    assert bars[["symbol", "date"]].equals(bars[["symbol", "date"]].sort_values(["symbol", "date"]))
    december = CsvProvider(data_dir).fetch(["AAA", "BBB"], D("2023-12-01"), D("2023-12-31")).bars
    assert december["symbol"].tolist() == ["AAA", "AAA"]


def test_other_export_spellings(tmp_path):
    (tmp_path / "CCC.csv").write_text(
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split\n"
        "2024-01-03,5,6,4,5.5,5.4,10,0.1,1\n"
        "2024-01-02,5,6,4,5.5,5.4,10,0,2\n"
    )
    bars = CsvProvider(tmp_path).fetch(["CCC"], D("2024-01-01"), D("2024-01-31")).bars
    assert bars["adj_close"].tolist() == [5.4, 5.4]
    assert bars["dividend"].tolist() == [0.0, 0.1]
    assert bars["split_coefficient"].tolist() == [2.0, 1.0]


def test_missing_file_is_a_per_symbol_failure(data_dir):
    result = CsvProvider(data_dir).fetch(["AAA", "CCC", "BBB"], D("2024-01-01"), D("2024-01-31"))
    assert [f.symbol for f in result.failures] == ["CCC"]
    assert str(data_dir / "CCC.csv") in result.failures[0].reason
    assert result.fetched_symbols == ["AAA", "BBB"]
    assert result.bars.groupby("symbol").size().to_dict() == {"AAA": 5, "BBB": 5}
    assert set(result.stats) == {"AAA", "BBB", "CCC"}


def test_missing_column_is_a_per_symbol_failure_naming_the_file(data_dir):
    (data_dir / "DDD.csv").write_text("Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n")
    result = CsvProvider(data_dir).fetch(["DDD", "AAA"], D("2024-01-01"), D("2024-01-31"))
    assert [f.symbol for f in result.failures] == ["DDD"]
    reason = result.failures[0].reason
    assert str(data_dir / "DDD.csv") in reason and "['volume']" in reason
    assert result.fetched_symbols == ["AAA"]
    assert set(result.bars["symbol"]) == {"AAA"}


def test_non_iso_dates_are_a_per_symbol_failure(data_dir):
    (data_dir / "EEE.csv").write_text("Date,Open,High,Low,Close,Volume\nyesterday,1,2,0.5,1.5,10\n")
    result = CsvProvider(data_dir).fetch(["AAA", "EEE"], D("2024-01-01"), D("2024-01-31"))
    assert [f.symbol for f in result.failures] == ["EEE"]
    assert str(data_dir / "EEE.csv") in result.failures[0].reason
    assert "line 2, column date, value 'yesterday': not an ISO date" in result.failures[0].reason
    assert result.fetched_symbols == ["AAA"]


def test_empty_file_is_a_per_symbol_failure(data_dir):
    (data_dir / "FFF.csv").write_text("")
    result = CsvProvider(data_dir).fetch(["FFF", "BBB"], D("2024-01-01"), D("2024-01-31"))
    assert [f.symbol for f in result.failures] == ["FFF"]
    assert result.fetched_symbols == ["BBB"]


def test_all_symbols_failing_gives_empty_bars(data_dir):
    result = CsvProvider(data_dir).fetch(["XXX", "YYY"], D("2024-01-01"), D("2024-01-31"))
    assert [f.symbol for f in result.failures] == ["XXX", "YYY"]
    assert len(result.bars) == 0 and list(result.bars.columns) == list(PROVIDER_COLUMNS)
    assert result.fetched_symbols == []


def test_values_that_do_not_parse_strictly_are_refused_not_nulled(data_dir):
    (data_dir / "GGG.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,null,11,9,10,10,100\n"
        '2024-01-03,"1,234.5",11,9,10,10,100\n'
        "2024-01-04,10,11,9,N/A,10,-\n"
        "2024-01-05,10,11,9,,10,100\n"
    )
    result = CsvProvider(data_dir).fetch(["GGG", "AAA"], D("2024-01-01"), D("2024-01-31"))
    assert result.fetched_symbols == ["AAA"] and set(result.bars["symbol"]) == {"AAA"}
    (failure,) = result.failures
    found = {(r.line, r.column, r.value, r.check_name) for r in failure.rejections}
    assert found == {
        (2, "open", "null", "invalid_prices"),
        (3, "open", "1,234.5", "invalid_prices"),
        (4, "close", "N/A", "invalid_prices"),
        (4, "volume", "-", "volume_non_negative"),
        (5, "close", "", "invalid_prices"),
    }
    assert all(r.source == str(data_dir / "GGG.csv") for r in failure.rejections)
    assert "line 2, 2024-01-02, column open, value 'null': not a number" in failure.reason
    assert "thousands separator" in failure.reason and "and 2 more" in failure.reason


def test_bad_values_outside_the_requested_range_do_not_matter(data_dir):
    (data_dir / "OLD.csv").write_text(
        "date,open,high,low,close,volume\n2023-12-29,N/A,N/A,N/A,N/A,N/A\n2024-01-02,1,2,0.5,1.5,10\n"
    )
    result = CsvProvider(data_dir).fetch(["OLD"], D("2024-01-02"), D("2024-01-31"))
    assert result.failures == [] and result.bars["close"].tolist() == [1.5]


@pytest.mark.parametrize(
    ("body", "fragment", "line"),
    [
        ("date,open,high,low,close,volume\n2024-01-06,1,2,0.5,1.5,10\n", "Saturday is not a trading session", 2),
        (
            "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-15,1,2,0.5,1.5,10\n",
            "exchange holiday",
            3,
        ),  # Martin Luther King Jr. Day
        (
            "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.6,10\n",
            "date appears 2 times",
            2,
        ),
        (
            "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10\n",
            "date appears 2 times",
            2,
        ),  # identical copies are refused too
        ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10,7\n", "7 fields where the header has 6", 2),
        ("date,open,high,low,close,volume\n2024-01-02,1,2,0.5\n", "4 fields where the header has 6", 2),
        (
            "Date,Open,High,Low,Close,Adj Close,adj_close,Volume\n2024-01-02,1,2,0.5,1.5,1.5,1.5,10\n",
            "columns 'Adj Close' and 'adj_close' both mean 'adj_close'",
            1,
        ),
        ("\n\n", "the file is empty", None),
    ],
)
def test_malformed_files_are_refused_naming_the_line(tmp_path, body, fragment, line):
    (tmp_path / "BAD.csv").write_text(body)
    result = CsvProvider(tmp_path).fetch(["BAD"], D("2024-01-01"), D("2024-01-31"))
    assert result.bars.empty and result.fetched_symbols == []
    (failure,) = result.failures
    assert fragment in failure.reason and str(tmp_path / "BAD.csv") in failure.reason
    assert failure.rejections[0].line == line


def test_non_utf8_file_is_refused_naming_the_line(tmp_path):
    (tmp_path / "LAT.csv").write_bytes(
        "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n# Soci\u00e9t\u00e9\n".encode("latin-1")
    )
    (failure,) = CsvProvider(tmp_path).fetch(["LAT"], D("2024-01-01"), D("2024-01-31")).failures
    assert "not UTF-8 text (byte 0xe9" in failure.reason and failure.rejections[0].line == 3


def test_header_only_file_gives_zero_rows_for_the_audit_to_judge(tmp_path):
    (tmp_path / "HDR.csv").write_text("Date,Open,High,Low,Close,Adj Close,Volume\n")
    result = CsvProvider(tmp_path).fetch(["HDR"], D("2024-01-01"), D("2024-01-31"))
    assert result.failures == [] and result.fetched_symbols == ["HDR"] and result.bars.empty


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        CsvProvider(tmp_path / "nowhere").fetch(["AAA"], D("2024-01-01"), D("2024-01-31"))


def test_read_symbol_csv_names_the_file(tmp_path):
    path = tmp_path / "HHH.csv"
    path.write_text("Day,Open,Close\n2024-01-02,1,2\n")
    with pytest.raises(ValueError) as exc:
        read_symbol_csv(path, "HHH")
    assert str(path) in str(exc.value) and "'high'" in str(exc.value)


def test_offset_dates_do_not_abort_the_whole_fetch(data_dir):
    (data_dir / "TZ.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2024-01-02 00:00:00-05:00,1,2,0.5,1.5,100,0,0\n"
        "2024-01-03 00:00:00-05:00,1,2,0.5,1.5,100,0,0\n"
    )
    result = CsvProvider(data_dir).fetch(["AAA", "TZ"], D("2024-01-01"), D("2024-01-31"))
    assert set(result.bars["symbol"]) >= {"AAA"}
    parsed = result.bars[result.bars["symbol"] == "TZ"]
    failed = [f.symbol for f in result.failures]
    # Either read as the session dates, or reported as a failure of TZ alone.
    assert failed == ["TZ"] or [d.date() for d in parsed["date"]] == [D("2024-01-02"), D("2024-01-03")]


def test_yfinance_stock_splits_zero_means_no_split(tmp_path):
    (tmp_path / "SPL.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
        "2024-01-02,1,2,0.5,1.5,100,0,0\n"
        "2024-01-03,1,2,0.5,1.5,100,0,2\n"
    )
    bars = CsvProvider(tmp_path).fetch(["SPL"], D("2024-01-01"), D("2024-01-31")).bars
    assert bars["split_coefficient"].tolist() == [1.0, 2.0]
