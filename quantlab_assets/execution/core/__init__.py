"""The execution team's pure core: no Dagster import."""
