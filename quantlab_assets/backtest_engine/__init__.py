"""Team 4, the backtest engine: targets simulated over prices with costs; KPIs."""
