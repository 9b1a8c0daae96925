#!/usr/bin/env bash
# Install Quant Lab and run the production chain end to end on offline synthetic data.
# Range: DEMO_START..DEMO_END trading-day partitions (defaults: three months of 2026).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
START="${DEMO_START:-2026-06-01}"
END="${DEMO_END:-2026-08-31}"
echo "Quant Lab demo: materializing ohlcv and everything downstream for $START...$END"
echo "  DuckDB: ${QUANTLAB_DB:-data/quantlab.duckdb}  artifacts: ${QUANTLAB_ARTIFACTS:-artifacts}  DAGSTER_HOME: $DAGSTER_HOME"
dagster asset materialize -m quantlab_assets.definitions --select 'ohlcv*' \
  --partition-range "$START...$END"
python -m quantlab_assets.batch_orchestrator.cli last-run
