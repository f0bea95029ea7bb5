"""Deposit addresses, deposits, sweeps and withdrawals on Ethereum."""
