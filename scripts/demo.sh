#!/usr/bin/env bash
# Install Quant Lab and run the production chain end to end on offline synthetic data.
# Range: DEMO_START..DEMO_END trading-day partitions (defaults: three months of 2026).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
START="${DEMO_START:-2026-06-01}"
END="${DEMO_END:-2026-08-31}"
# Features look back ~13 months (52-week high/low, 12-1 momentum): ingest that history first.
HISTORY_START="$(python -c "from quantlab_assets.common.calendar import shift_sessions as s; print(s('$START', -300).date())")"
HISTORY_END="$(python -c "from quantlab_assets.common.calendar import shift_sessions as s; print(s('$START', -1).date())")"
echo "Quant Lab demo"
echo "  DuckDB: ${QUANTLAB_DB:-data/quantlab.duckdb}  artifacts: ${QUANTLAB_ARTIFACTS:-artifacts}  DAGSTER_HOME: $DAGSTER_HOME"
source "$ROOT/scripts/progress.sh"  # run_logged: a progress line every 15 s
echo "1/2 ingest ohlcv history $HISTORY_START...$HISTORY_END (one run)"
run_logged "$DAGSTER_HOME/demo_history.log" "" dagster asset materialize -m quantlab_assets.definitions \
  --select ohlcv --partition-range "$HISTORY_START...$HISTORY_END" \
  || { tail -40 "$DAGSTER_HOME/demo_history.log"; exit 1; }
STEPS="$(planned_steps 'ohlcv*' "$START...$END")"
echo "2/2 the whole chain, ohlcv and everything downstream, for $START...$END (one run${STEPS:+, $STEPS steps}; a few minutes)"
run_logged "$DAGSTER_HOME/demo_chain.log" "$STEPS" dagster asset materialize -m quantlab_assets.definitions \
  --select 'ohlcv*' --partition-range "$START...$END" \
  || { tail -60 "$DAGSTER_HOME/demo_chain.log"; python -m quantlab_assets.batch_orchestrator.cli last-run; exit 1; }
# The run in brief (every step and check: $DAGSTER_HOME/demo_last_run.txt), then the result.
python -m quantlab_assets.batch_orchestrator.cli last-run > "$DAGSTER_HOME/demo_last_run.txt" || true
head -n 1 "$DAGSTER_HOME/demo_last_run.txt"
grep -E '^  check' "$DAGSTER_HOME/demo_last_run.txt" || true
echo
python -m quantlab_assets.batch_orchestrator.cli leaderboard
RUN_DIR="$(grep -E '^artifacts: ' "$DAGSTER_HOME/demo_last_run.txt" | sed 's/^artifacts: //')"
echo
echo "Next steps"
echo "  the UI:          dagster dev   (then http://127.0.0.1:3000: lineage, checks per partition, the leaderboard)"
echo "  the reports:     ${RUN_DIR:-artifacts/runs/<run id>}/reports (tearsheet_<strategy>.html, strategy_leaderboard.md)"
echo "  a research run:  quantlab backtest strategies/momentum_topk.yaml --start $START --end $END"
echo "  every step and check of this run: $DAGSTER_HOME/demo_last_run.txt"
