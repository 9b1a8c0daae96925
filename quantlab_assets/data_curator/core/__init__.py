"""Pure core of the data curator (no Dagster import)."""
