"""Pure core of the backtest engine (no Dagster import).

``engine`` simulates target weights over adjusted prices with costs (NumPy arrays in, a
frames wrapper for the asset layer); ``kpis`` holds empyrical-style performance functions.
"""
