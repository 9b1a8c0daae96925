"""Pure core of the feature store (no Dagster import)."""
