"""Team 2, the feature store: leakage-free features and labels from ohlcv."""
