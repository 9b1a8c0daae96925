"""Pure core of the portfolio supervisor (no Dagster import)."""
