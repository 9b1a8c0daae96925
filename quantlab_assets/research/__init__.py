"""Quant Lab's research workbench: backtests and sweeps of strategy specs on the warehouse's
stored data, in memory, with the cores the assets call (no Dagster import)."""

from quantlab_assets.research.api import (
    ResearchData,
    ResearchResult,
    apply_overrides,
    backtest,
    decisions_of,
    empty_book_reason,
    load_data,
    load_spec,
    parse_overrides,
)
from quantlab_assets.research.fast_path import evaluate
from quantlab_assets.research.sweep_run import run_sweep
from quantlab_assets.research.sweep_spec import load_sweep

__all__ = [
    "ResearchData",
    "ResearchResult",
    "apply_overrides",
    "backtest",
    "decisions_of",
    "empty_book_reason",
    "load_data",
    "load_spec",
    "parse_overrides",
    "evaluate",
    "load_sweep",
    "run_sweep",
]
