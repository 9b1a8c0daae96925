"""The symbol registry: a validated YAML file naming the universe."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from quantlab_assets.common.yaml_io import FrozenModel, describe_validation_error, read_yaml

# Exchange tickers: 1-6 upper-case letters/digits starting with a letter, optional class
# suffix after a dot or dash (BRK.B, BF-B).
TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,5}(?:[.-][A-Z0-9]{1,2})?$")

DEFAULT_SYMBOLS_FILE = Path(__file__).resolve().parents[1] / "symbols.yaml"


class RegistryError(ValueError):
    """The symbol registry file is unreadable or invalid; the message names file and field."""


class SymbolEntry(FrozenModel):
    symbol: str
    name: str = ""
    sector: str = "Unknown"
    # Listing window: sessions outside it are not expected to carry data (IPO, delisting).
    first_date: date | None = None
    last_date: date | None = None

    @field_validator("symbol")
    @classmethod
    def _ticker(cls, value: str) -> str:
        if not TICKER_PATTERN.match(value):
            raise ValueError(
                f"invalid ticker {value!r}: expected 1-6 upper-case letters/digits starting "
                "with a letter, optionally a class suffix like BRK.B"
            )
        return value

    @model_validator(mode="after")
    def _window(self) -> SymbolEntry:
        if self.first_date and self.last_date and self.last_date < self.first_date:
            raise ValueError(f"{self.symbol}: last_date {self.last_date} is before first_date {self.first_date}")
        return self


class SymbolRegistry(FrozenModel):
    universe: str = Field(min_length=1)
    symbols: tuple[SymbolEntry, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SymbolRegistry:
        dupes = sorted(s for s, n in Counter(e.symbol for e in self.symbols).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate tickers {dupes}")
        return self

    @property
    def tickers(self) -> list[str]:
        return [e.symbol for e in self.symbols]

    def sector_of(self) -> dict[str, str]:
        return {e.symbol: e.sector for e in self.symbols}

    def listing_windows(self) -> dict[str, tuple[date | None, date | None]]:
        return {e.symbol: (e.first_date, e.last_date) for e in self.symbols}


def load_registry(path: str | Path | None = None) -> SymbolRegistry:
    """Load and validate a registry file; errors name the file, the field and the ticker."""
    path = Path(path) if path else DEFAULT_SYMBOLS_FILE
    raw = read_yaml(path, "symbol registry", RegistryError)
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping with 'universe' and 'symbols'")
    try:
        return SymbolRegistry.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{path}: {describe_validation_error(exc, raw, {'symbols': 'symbol'})}") from exc
