"""Team 1, the data curator: trustworthy daily OHLCV behind a quality gate."""
