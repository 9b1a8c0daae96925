"""Pure core of the strategy lab (no Dagster import)."""
