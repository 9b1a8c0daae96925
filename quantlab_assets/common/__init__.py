"""Pure helpers shared by every team: settings, trading calendar, warehouse, artifacts.

Nothing in this package imports Dagster.
"""
