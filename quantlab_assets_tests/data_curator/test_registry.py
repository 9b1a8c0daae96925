"""The symbol registry: the packaged demo universe, and errors that name file, field and ticker."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from quantlab_assets.data_curator.core.registry import (
    DEFAULT_SYMBOLS_FILE,
    RegistryError,
    SymbolRegistry,
    load_registry,
)


def write(tmp_path: Path, text: str, name: str = "universe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def entries(*lines: str) -> str:
    return "universe: test\nsymbols:\n" + "".join(f"  - {line}\n" for line in lines)


def test_packaged_demo_registry_loads():
    reg = load_registry()
    assert isinstance(reg, SymbolRegistry)
    assert DEFAULT_SYMBOLS_FILE.name == "symbols.yaml" and DEFAULT_SYMBOLS_FILE.is_file()
    assert reg.universe == "us_large_cap_demo"
    assert len(reg.tickers) == 50
    assert len(set(reg.tickers)) == 50
    assert {"AAPL", "MSFT", "JPM", "BRK.B"} <= set(reg.tickers)
    sectors = reg.sector_of()
    assert sectors["BRK.B"] == "Financials" and sectors["AAPL"] == "Technology"
    assert "Unknown" not in sectors.values()
    assert len(set(sectors.values())) >= 5
    assert load_registry(DEFAULT_SYMBOLS_FILE) == reg


def test_valid_file_with_defaults_and_listing_windows(tmp_path):
    path = write(
        tmp_path,
        entries(
            "{symbol: AAA, name: Alpha, sector: Tech}",
            "{symbol: BF-B}",
            "{symbol: NEWCO, first_date: 2024-02-01}",
            "{symbol: OLDCO, first_date: 2020-01-02, last_date: 2023-06-30}",
        ),
    )
    reg = load_registry(path)
    assert reg.tickers == ["AAA", "BF-B", "NEWCO", "OLDCO"]
    assert reg.sector_of() == {"AAA": "Tech", "BF-B": "Unknown", "NEWCO": "Unknown", "OLDCO": "Unknown"}
    assert reg.listing_windows() == {
        "AAA": (None, None),
        "BF-B": (None, None),
        "NEWCO": (date(2024, 2, 1), None),
        "OLDCO": (date(2020, 1, 2), date(2023, 6, 30)),
    }


@pytest.mark.parametrize("ticker", ["A", "BRK.B", "BF-B", "GOOGL", "X1", "ABCDEF", "ABC.AB"])
def test_valid_tickers_accepted(tmp_path, ticker):
    reg = load_registry(write(tmp_path, entries(f"{{symbol: '{ticker}'}}")))
    assert reg.tickers == [ticker]


@pytest.mark.parametrize("ticker", ["aapl", "TOOLONGX", "ABCDEFG", "1ABC", "BRK.", "BRK.BBB", "A B", "", "$SPX"])
def test_invalid_ticker_names_file_and_ticker(tmp_path, ticker):
    path = write(tmp_path, entries("{symbol: AAA}", f"{{symbol: '{ticker}'}}", "{symbol: ZZZ}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert repr(ticker) in msg
    assert "symbols.1" in msg  # the offending entry, not its neighbours
    assert "invalid ticker" in msg
    assert "'AAA'" not in msg and "'ZZZ'" not in msg


def test_several_invalid_tickers_are_all_named(tmp_path):
    path = write(tmp_path, entries("{symbol: aapl}", "{symbol: MSFT}", "{symbol: 1ABC}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    assert "'aapl'" in str(exc.value) and "'1ABC'" in str(exc.value)


def test_duplicate_tickers(tmp_path):
    path = write(tmp_path, entries("{symbol: AAA}", "{symbol: BBB}", "{symbol: AAA}", "{symbol: BBB}", "{symbol: CCC}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "duplicate tickers ['AAA', 'BBB']" in msg


def test_malformed_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "universe: test\nsymbols:\n  - {symbol: AAA\n  - {symbol: BBB}\n")
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    assert str(exc.value).startswith(f"{path}: not valid YAML")


@pytest.mark.parametrize("text", ["- AAA\n- BBB\n", "just a string\n", ""])
def test_non_mapping_document_names_the_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(RegistryError, match="expected a mapping") as exc:
        load_registry(path)
    assert str(path) in str(exc.value)


def test_unknown_field_on_a_symbol_is_rejected(tmp_path):
    path = write(tmp_path, entries("{symbol: AAA}", "{symbol: BBB, sectr: Tech}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    msg = str(exc.value)
    assert str(path) in msg and "sectr" in msg and "'BBB'" in msg
    assert "Extra inputs are not permitted" in msg


def test_unknown_top_level_field_is_rejected(tmp_path):
    path = write(tmp_path, "universe: test\nuniverse_name: x\nsymbols:\n  - {symbol: AAA}\n")
    with pytest.raises(RegistryError, match="universe_name") as exc:
        load_registry(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    "text, field",
    [
        ("symbols:\n  - {symbol: AAA}\n", "universe"),
        ("universe: ''\nsymbols:\n  - {symbol: AAA}\n", "universe"),
        ("universe: test\nsymbols: []\n", "symbols"),
        ("universe: test\n", "symbols"),
        ("universe: test\nsymbols:\n  - {name: No Ticker}\n", "symbols.0.symbol"),
    ],
)
def test_missing_or_empty_required_fields(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    assert str(path) in str(exc.value) and field in str(exc.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "symbols.yaml"
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    assert str(exc.value) == f"{path}: symbol registry file not found"


def test_last_date_before_first_date(tmp_path):
    path = write(tmp_path, entries("{symbol: AAA}", "{symbol: GONE, first_date: 2024-05-01, last_date: 2024-04-30}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    msg = str(exc.value)
    assert str(path) in msg and "'GONE'" in msg
    assert "last_date 2024-04-30 is before first_date 2024-05-01" in msg


def test_same_first_and_last_date_is_allowed(tmp_path):
    reg = load_registry(write(tmp_path, entries("{symbol: ONEDAY, first_date: 2024-05-01, last_date: 2024-05-01}")))
    assert reg.listing_windows()["ONEDAY"] == (date(2024, 5, 1), date(2024, 5, 1))


def test_non_date_value_names_field(tmp_path):
    path = write(tmp_path, entries("{symbol: AAA}", "{symbol: BBB, first_date: soon}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    msg = str(exc.value)
    assert str(path) in msg and "symbols.1.first_date" in msg and "'BBB'" in msg


def test_impossible_calendar_date_is_a_registry_error_naming_the_file(tmp_path):
    path = write(tmp_path, entries("{symbol: AAA, first_date: 2023-02-29}"))
    with pytest.raises(RegistryError) as exc:
        load_registry(path)
    assert str(path) in str(exc.value)
