"""The execution team's resource: which broker runs, how targets become orders, the pre-trade limits."""

from __future__ import annotations

from typing import Literal

import dagster as dg
import duckdb
from pydantic import Field

from quantlab_assets.common import settings
from quantlab_assets.execution.core.alpaca import AlpacaBroker
from quantlab_assets.execution.core.broker import Broker, SimulatedBroker
from quantlab_assets.execution.core.orders import OrderPolicy
from quantlab_assets.execution.core.risk import TradeLimits


class ExecutionResource(dg.ConfigurableResource):
    """Paper trading: ``broker`` is ``simulated`` (default; fills at the next open from ohlcv) or
    ``alpaca`` (an Alpaca paper account; keys from APCA_API_KEY_ID / APCA_API_SECRET_KEY)."""

    broker: Literal["simulated", "alpaca"] = Field(default="simulated", description="simulated | alpaca")
    capital: float = Field(default=1_000_000.0, gt=0, description="the simulated account's starting cash")
    slippage_bps: float = Field(default=0.0, ge=0, description="simulated fills: open +/- this many bps")
    fractional: bool = Field(default=True, description="fractional shares (else whole shares, rounded toward 0)")
    min_trade_value: float = Field(default=0.0, ge=0, description="smallest order, in currency at the last close")
    cash_buffer: float = Field(default=0.0, ge=0, lt=1, description="share of equity kept in cash")
    max_order_notional: float | None = Field(default=None, gt=0, description="cap per order (None: no cap)")
    max_daily_notional: float | None = Field(default=None, gt=0, description="cap per strategy and session")
    max_volume_share: float | None = Field(default=None, gt=0, description="largest share of the session's volume")
    price_collar: float | None = Field(default=None, gt=0, description="largest |price / last close - 1|")
    max_orders_per_session: int | None = Field(default=None, ge=0, description="order-rate limit per session")
    partial_fills: dict[str, float] = Field(default_factory=dict, description="simulated: symbol -> filled share")
    rejects: list[str] = Field(default_factory=list, description="simulated: symbols refused at submission")
    alpaca_timeout_s: float = Field(default=10.0, gt=0, description="Alpaca: seconds per request")
    alpaca_max_retries: int = Field(default=3, ge=0, le=10, description="Alpaca: retries of 429/5xx/timeouts")

    def policy(self) -> OrderPolicy:
        return OrderPolicy(self.fractional, self.min_trade_value, self.cash_buffer)

    def limits(self) -> TradeLimits:
        return TradeLimits(
            self.max_order_notional,
            self.max_daily_notional,
            self.max_volume_share,
            self.price_collar,
            self.max_orders_per_session,
        )

    def make_broker(self, con: duckdb.DuckDBPyConnection, strategy: str) -> Broker:
        if self.broker == "alpaca":
            keys = settings.alpaca_keys() or ("", "")
            return AlpacaBroker(
                settings.alpaca_base_url(),
                *keys,
                timeout_s=self.alpaca_timeout_s,
                max_retries=self.alpaca_max_retries,
            )
        return SimulatedBroker(
            con,
            strategy,
            capital=self.capital,
            slippage_bps=self.slippage_bps,
            fractional=self.fractional,
            partial_fills=dict(self.partial_fills),
            rejects=frozenset(self.rejects),
        )
