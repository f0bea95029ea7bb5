"""The persisted side of the matching engine: balances, orders, deals, the ledger."""
