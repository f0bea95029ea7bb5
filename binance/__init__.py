"""A Binance-spot-compatible subset of the API under /api/v3/, so Binance clients (ccxt) work unchanged.

It is a translation layer only: symbols (ETHUSDT <-> ETH_USDT), parameter
names, order and trade shapes, signatures and error codes. Every read and
write goes through the same selectors and services as the native API.
"""
