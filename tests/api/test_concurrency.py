"""50 simultaneous orders from one user who has funds for exactly 10: exactly 10 are accepted.

Real concurrency: the requests go over HTTP to uvicorn, each on its own
connection, released together by a barrier; the matcher is the single writer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from rest_framework_simplejwt.tokens import RefreshToken

from trading.models import Balance, Order

pytestmark = pytest.mark.slow

N = 50
FUNDED_FOR = 10


def test_fifty_concurrent_orders_with_funds_for_ten(matcher, live_api, alice):
    # each order freezes 2000 * 0.5 = 1000 USDT; alice has 10000
    matcher.client.update_balance(alice.pk, "USDT", "deposit", "conc-1", "10000")
    token = str(RefreshToken.for_user(alice).access_token)
    barrier = threading.Barrier(N)
    body = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "2000", "amount": "0.5"}

    def place(i: int) -> tuple[int, dict]:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {token}"
            s.get(f"{live_api.url}/api/v1/time", timeout=30)  # connection open before the barrier
            barrier.wait(timeout=60)
            r = s.post(f"{live_api.url}/api/v1/orders", json={**body, "client_order_id": f"c{i}"}, timeout=60)
            return r.status_code, r.json()

    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(place, range(N)))

    accepted = [b for status, b in results if status == 201]
    refused = [b for status, b in results if status != 201]
    assert len(accepted) == FUNDED_FOR, live_api.log_tail()
    assert {(r["code"]) for r in refused} == {"insufficient_balance"}
    assert len(refused) == N - FUNDED_FOR
    assert Order.objects.filter(user=alice).count() == FUNDED_FOR
    bal = Balance.objects.get(user=alice, asset__symbol="USDT")
    assert (bal.available, bal.frozen) == (Decimal(0), Decimal(10000))
    assert matcher.client.balances(alice.pk)["USDT"] == {"available": "0.000000", "frozen": "10000.000000"}
    assert not Balance.objects.filter(available__lt=0).exists()
    assert not Balance.objects.filter(frozen__lt=0).exists()
