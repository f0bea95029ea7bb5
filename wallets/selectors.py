"""Wallet reads: a user's deposits and withdrawals, and the solvency figures operators check."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from markets.models import Asset
from trading.models import Balance
from wallets import hd
from wallets.chain import get_chain
from wallets.models import WITHDRAWAL_IN_FLIGHT, Deposit, DepositAddress, Withdrawal

SOLVENCY_MAX_ADDRESSES = 1000


def deposits_for(user: Any, limit: int = 100) -> QuerySet[Deposit]:
    return Deposit.objects.filter(user=user).select_related("asset").order_by("-id")[:limit]


def withdrawals_for(user: Any, limit: int = 100) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(user=user).select_related("asset").order_by("-id")[:limit]


def withdrawal_for(user: Any, withdrawal_id: int) -> Withdrawal | None:
    return Withdrawal.objects.filter(user=user, pk=withdrawal_id).select_related("asset").first()


@dataclass
class Solvency:
    asset: str
    hot_wallet: Decimal
    deposit_addresses: Decimal
    addresses_checked: int
    truncated: bool
    user_balances: Decimal
    in_flight_withdrawals: Decimal
    error: str = ""

    @property
    def on_chain(self) -> Decimal:
        return self.hot_wallet + self.deposit_addresses

    @property
    def liabilities(self) -> Decimal:
        return self.user_balances + self.in_flight_withdrawals

    @property
    def surplus(self) -> Decimal:
        return self.on_chain - self.liabilities


def solvency(native_symbol: str) -> list[Solvency]:
    """Per asset: what we hold on chain (hot wallet + deposit addresses) against what we owe.

    What we owe is every balance the matcher holds (users and the fee account) plus
    withdrawals already debited but not yet confirmed on chain. Deposit addresses are
    read one by one (at most SOLVENCY_MAX_ADDRESSES, flagged when cut short).
    """
    from wallets.services import from_units

    client = get_chain()
    hot = hd.hot_wallet_address()
    out: list[Solvency] = []
    for asset in Asset.objects.order_by("symbol"):
        native = asset.symbol == native_symbol
        if not native and not asset.contract_address:
            continue
        owed = Balance.objects.filter(asset=asset).aggregate(a=Sum("available"), f=Sum("frozen"))
        in_flight = Withdrawal.objects.filter(asset=asset, status__in=WITHDRAWAL_IN_FLIGHT).aggregate(
            s=Sum("amount"))["s"] or Decimal(0)
        addresses = list(DepositAddress.objects.filter(deposits__asset=asset).distinct()
                         .values_list("address", flat=True)[: SOLVENCY_MAX_ADDRESSES + 1])
        truncated = len(addresses) > SOLVENCY_MAX_ADDRESSES
        addresses = addresses[:SOLVENCY_MAX_ADDRESSES]
        row = Solvency(asset.symbol, Decimal(0), Decimal(0), len(addresses), truncated,
                       (owed["a"] or Decimal(0)) + (owed["f"] or Decimal(0)), in_flight)
        try:
            def held(address: str, asset: Asset = asset, native: bool = native) -> int:
                return client.balance(address) if native else client.token_balance(asset.contract_address, address)

            row.hot_wallet = from_units(held(hot), asset.decimals)
            row.deposit_addresses = from_units(sum(held(a) for a in addresses), asset.decimals)
        except Exception as exc:  # the node is down: show what we know and say why the rest is missing
            row.error = f"chain unavailable: {exc}"
        out.append(row)
    return out
