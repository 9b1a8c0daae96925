"""Team 6, the batch orchestrator: Dagster itself (jobs, schedules, run storage) plus a CLI
that reads Dagster's own run history instead of a hand-built runs table."""
