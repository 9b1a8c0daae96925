"""Execution: paper trading from approved targets (orders, broker, ledger, reconciliation, kill switch)."""
