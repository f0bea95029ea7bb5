"""Seed the demo listing and an operator account, once.

Idempotent: a second run changes nothing and prints nothing secret. The operator's
password is generated and printed only when the account is created.
"""

import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from markets.models import Asset, Market

ASSETS = [
    {"symbol": "ETH", "name": "Ether", "decimals": 18, "contract_address": "", "deposit_confirmations": 12,
     "min_deposit": Decimal("0.001"), "withdrawal_fee": Decimal("0.001"), "min_withdrawal": Decimal("0.01")},
    {"symbol": "USDT", "name": "Tether USD", "decimals": 6,
     "contract_address": "0xdAC17F958D2ee523a2206206994597C13D831ec7", "deposit_confirmations": 12,
     "min_deposit": Decimal("1"), "withdrawal_fee": Decimal("1"), "min_withdrawal": Decimal("10")},
    {"symbol": "CGT", "name": "CryptGO Token", "decimals": 18, "contract_address": "", "deposit_confirmations": 12,
     "min_deposit": Decimal("1"), "withdrawal_fee": Decimal("1"), "min_withdrawal": Decimal("10")},
]
MARKETS = [
    {"base": "ETH", "quote": "USDT", "price_precision": 2, "amount_precision": 4, "min_amount": Decimal("0.001"),
     "min_notional": Decimal("1"), "maker_fee": Decimal("0.001"), "taker_fee": Decimal("0.002")},
    {"base": "CGT", "quote": "USDT", "price_precision": 4, "amount_precision": 2, "min_amount": Decimal("1"),
     "min_notional": Decimal("1"), "maker_fee": Decimal("0.001"), "taker_fee": Decimal("0.002")},
]


class Command(BaseCommand):
    help = "Create the demo assets (ETH, USDT, CGT), markets (ETH_USDT, CGT_USDT) and an operator, once."

    def add_arguments(self, parser):
        parser.add_argument("--operator-email", default="operator@cryptgo.local")

    @transaction.atomic
    def handle(self, *args, operator_email: str, **options):
        assets = {}
        for spec in ASSETS:
            assets[spec["symbol"]], _ = Asset.objects.get_or_create(symbol=spec["symbol"], defaults=spec)
        for spec in MARKETS:
            base, quote = assets[spec["base"]], assets[spec["quote"]]
            fields = {k: v for k, v in spec.items() if k not in {"base", "quote"}}
            Market.objects.get_or_create(name=f"{base.symbol}_{quote.symbol}", base=base, quote=quote,
                                         defaults=fields)
        User = get_user_model()
        if not User.objects.filter(email=operator_email).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(email=operator_email, password=password)
            self.stdout.write(f"operator account: {operator_email}  password: {password}  (shown once)")
        else:
            self.stdout.write(f"operator account {operator_email} exists (password was shown when it was created)")
