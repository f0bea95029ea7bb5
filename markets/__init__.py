"""Assets and markets, and the reads of market data."""
