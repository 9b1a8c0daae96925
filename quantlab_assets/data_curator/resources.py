"""The data curator's resource: which market data source, which universe, which limits."""

from __future__ import annotations

import enum
from typing import Literal

import dagster as dg
from pydantic import Field

from quantlab_assets.common import settings
from quantlab_assets.data_curator.core.gate import QualityThresholds
from quantlab_assets.data_curator.core.providers import MarketDataProvider, ProviderError
from quantlab_assets.data_curator.core.registry import SymbolRegistry, load_registry

# Closed choices are Literals, so Dagster's config validation (the launchpad) refuses a typo and its
# message lists the values ("not in enum type Literal['auto', 'compact', 'full'] got fll"). The core
# checks the same tuples (alphavantage.FUNCTIONS/OUTPUTSIZES; a test keeps them equal).
AlphaVantageFunction = Literal["TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED"]
AlphaVantageOutputSize = Literal["auto", "compact", "full"]


class DataProvider(str, enum.Enum):
    """``market_data.provider``: an Enum, not a Literal, because the field is optional (unset: the
    variable) and Dagster 1.13 refuses ``Literal[...] | None`` as a config type. The class is
    renamed after its values below: Dagster names an Enum field's type in its refusal, so the
    message lists them (``not in enum type DataProvider (synthetic | alphavantage | csv) got cvs``).
    Built in Python (not from run config), any case is accepted, as the variable is."""

    synthetic = "synthetic"
    alphavantage = "alphavantage"
    csv = "csv"

    @classmethod
    def _missing_(cls, value: object) -> DataProvider | None:
        return next((m for m in cls if isinstance(value, str) and value.lower() == m.value), None)


DataProvider.__name__ = f"DataProvider ({' | '.join(m.value for m in DataProvider)})"


class MarketDataResource(dg.ConfigurableResource):
    """Source, universe and quality limits of ``ohlcv``.

    A field left unset takes its environment variable at run time (``QUANTLAB_DATA_PROVIDER``,
    ``QUANTLAB_SYMBOLS``, ``QUANTLAB_CSV_DIR``; see ``common.settings``); the Alpha Vantage key
    is read from ``ALPHAVANTAGE_API_KEY`` when the client is built and is never part of config.
    """

    provider: DataProvider | None = Field(
        default=None, description="synthetic | alphavantage | csv; unset: QUANTLAB_DATA_PROVIDER, else synthetic"
    )
    symbols_file: str | None = Field(
        default=None, description="symbol registry YAML; unset: QUANTLAB_SYMBOLS, else the demo universe"
    )
    synthetic_seed: int = 7
    csv_dir: str | None = Field(
        default=None, description="directory of <SYMBOL>.csv; unset: QUANTLAB_CSV_DIR, else data/csv"
    )
    drop_non_session_rows: bool | None = Field(
        default=None,
        description="csv: drop rows dated on a weekend or exchange holiday (counted in the ingest log) instead of "
        "refusing the symbol; unset: QUANTLAB_DROP_NON_SESSION_ROWS, else off",
    )
    alphavantage_function: AlphaVantageFunction = Field(
        default="TIME_SERIES_DAILY",
        description="TIME_SERIES_DAILY (free) | TIME_SERIES_DAILY_ADJUSTED (premium: adjusted close, splits)",
    )
    alphavantage_outputsize: AlphaVantageOutputSize = Field(
        default="auto",
        description="auto (compact when the start is within 140 days of today, else full) | compact | full",
    )
    # Every bound is finite (inf/NaN refused at config time) and within a stated range.
    requests_per_minute: float = Field(default=5.0, ge=0, le=10_000, allow_inf_nan=False)  # 0: no limit
    max_retries: int = Field(
        default=5, ge=0, le=100, description="retries per symbol of timeouts, dropped connections, HTTP 5xx"
    )
    backoff_base_s: float = Field(default=2.0, ge=0, le=600, allow_inf_nan=False)
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Alpha Vantage: connect timeout and longest silence while reading",
    )
    request_deadline_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Alpha Vantage: total time one request may take, body included (a dripping reply fails here)",
    )
    throttle_give_up_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="Alpha Vantage: stop the run (keeping what was fetched) after throttled replies for this long",
    )
    ingest_budget_s: float = Field(
        default=3600.0,
        ge=0,
        le=7 * 86_400,
        allow_inf_nan=False,
        description="Alpha Vantage: time budget of one ingest, waits included; 0 = none",
    )
    min_coverage: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    min_success_rate: float = Field(default=1.0, ge=0, le=1, allow_inf_nan=False)
    max_abs_jump: float = Field(default=0.4, gt=0, le=1e6, allow_inf_nan=False)

    def provider_name(self) -> str:
        return settings.data_provider() if self.provider is None else self.provider.value

    def registry(self) -> SymbolRegistry:
        return load_registry(self.symbols_file if self.symbols_file is not None else settings.symbols_file())

    def thresholds(self) -> QualityThresholds:
        return QualityThresholds(
            min_coverage=self.min_coverage, min_success_rate=self.min_success_rate, max_abs_jump=self.max_abs_jump
        )

    def build_provider(self, registry: SymbolRegistry) -> MarketDataProvider:
        name = self.provider_name()
        if name == "synthetic":
            from quantlab_assets.data_curator.core.synthetic import SyntheticProvider

            return SyntheticProvider(seed=self.synthetic_seed, sectors=registry.sector_of())
        if name == "csv":
            from quantlab_assets.data_curator.core.csv_source import CsvProvider

            folder = settings.from_project_root(self.csv_dir) if self.csv_dir is not None else settings.csv_dir()
            drop = self.drop_non_session_rows
            return CsvProvider(folder, settings.drop_non_session_rows() if drop is None else drop)
        from quantlab_assets.data_curator.core.alphavantage import AlphaVantageProvider

        key = settings.alphavantage_api_key()
        if not key:
            raise ProviderError("QUANTLAB_DATA_PROVIDER=alphavantage needs ALPHAVANTAGE_API_KEY in the environment")
        return AlphaVantageProvider(
            api_key=key,
            base_url=settings.alphavantage_base_url(),
            function=self.alphavantage_function,
            outputsize=self.alphavantage_outputsize,
            requests_per_minute=self.requests_per_minute,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            timeout_s=self.timeout_s,
            request_deadline_s=self.request_deadline_s,
            throttle_give_up_s=self.throttle_give_up_s,
            ingest_budget_s=self.ingest_budget_s,
        )
