"""The ASGI fast path (cryptgo/fastpath.py) answers exactly as Django does, and only what it may.

Every request here is sent twice at the ASGI level, once through ``cryptgo.asgi.application`` (the
fast path in front of Django) and once to Django alone, and the two answers must agree: status,
headers, body. A spy in place of Django tells which requests the fast path served itself. The live
tests run the same requests through uvicorn, as production serves them.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from cryptgo.fastpath import _closing  # runs a function, then closes the DB connections of its thread
from markets import marketdata, selectors
from markets.models import Market
from trading import services

pytestmark = pytest.mark.slow


def _scope(path: str, query: str = "", method: str = "GET", ip: str = "198.51.100.7",
           headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": headers if headers is not None else [(b"host", b"127.0.0.1:8000")],
            "client": (ip, 40000), "server": ("127.0.0.1", 8000)}


async def _call(app: Any, scope: dict[str, Any], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # no disconnect while Django answers
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


class Spy:
    """Django behind the fast path, recording what fell through to it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def book(matcher, alice, bob, settings):
    """A book with levels on both sides and two deals, in Redis as run_marketdata keeps it."""
    from markets.consumer import MarketData

    matcher.client.update_balance(alice.pk, "ETH", "deposit", "fp-eth", "10")
    matcher.client.update_balance(bob.pk, "USDT", "deposit", "fp-usdt", "100000")
    m = Market.objects.get(name="ETH_USDT")
    for price in ("2001.5", "2003", "2010", "2010.07"):
        services.order_place(user=alice, market=m, side="sell", type="limit", price=price, amount="1")
    services.order_place(user=bob, market=m, side="buy", type="market", quote_amount="3000")
    for price in ("1995.25", "1990", "1989.99"):
        services.order_place(user=bob, market=m, side="buy", type="limit", price=price, amount="0.5")
    MarketData(marketdata.redis_client()).rebuild(["ETH_USDT"], progress=False)
    settings.MARKET_DATA_SOURCE = "redis"
    selectors.forget_source()
    return m


REQUESTS = [
    ("/api/v1/markets/ETH_USDT/depth", ""),
    ("/api/v1/markets/ETH_USDT/depth", "limit=2"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=007&interval=10"),
    ("/api/v1/markets/ETH_USDT/depth", "interval=0.1&limit=100"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=500"),            # more than Redis keeps: the matcher's book
    ("/api/v1/markets/ETH_USDT/depth", "interval=0.5"),          # an interval Redis does not keep: the matcher
    ("/api/v1/markets/ETH_USDT/depth", "limit=abc"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=0"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=501"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=&interval="),
    ("/api/v1/markets/ETH_USDT/depth", "limit=%2020%20&other=1"),
    ("/api/v1/markets/ETH_USDT/depth", "interval=0.001"),
    ("/api/v1/markets/ETH_USDT/depth", "interval=0"),
    ("/api/v1/markets/ETH_USDT/depth", "interval=1e3"),
    ("/api/v1/markets/ETH_USDT/depth", "limit=1&limit=3"),
    ("/api/v1/markets/NOPE_USDT/depth", "limit=abc"),
    ("/api/v3/depth", "symbol=ETHUSDT"),
    ("/api/v3/depth", "symbol=ETHUSDT&limit=3"),
    ("/api/v3/depth", "symbol=ETHUSDT&limit=1000"),
    ("/api/v3/depth", "symbol=ETHUSDT&limit=0"),
    ("/api/v3/depth", "symbol=ETHUSDT&limit=x"),
    ("/api/v3/depth", "symbol=NOPE"),
    ("/api/v1/markets/ETH_USDT/ticker", ""),
    ("/api/v1/markets/NOPE_USDT/ticker", ""),
    ("/api/v3/trades", "symbol=ETHUSDT"),
    ("/api/v3/trades", "symbol=ETHUSDT&limit=1"),
    ("/api/v3/trades", "symbol=ETHUSDT&limit=1000"),  # more than Redis keeps: PostgreSQL, in a thread
    ("/api/v3/trades", "symbol=ETHUSDT&limit=-1"),
    ("/api/v3/trades", "symbol=NOPE"),
    ("/api/v3/ticker/24hr", "symbol=ETHUSDT"),
    ("/api/v3/ticker/24hr", "symbol=NOPE"),
]


def test_fast_path_answers_as_django_does(book):
    from cryptgo.asgi import application, django_asgi_app
    from cryptgo.fastpath import FastPath

    spy = Spy(django_asgi_app)
    fast = FastPath(spy)

    def warm() -> None:  # the fast path answers only from the market cache
        for name in ("ETH_USDT", "NOPE_USDT"):
            selectors.market_get(name)
        for symbol in ("ETHUSDT", "NOPE"):
            selectors.market_by_symbol(symbol)

    async def run() -> None:
        for path, query in REQUESTS:
            await asyncio.to_thread(_closing, warm)  # the cache lapses after 2 s: keep it warm (in a thread)
            spy.paths.clear()
            got = await _call(fast, _scope(path, query))
            assert spy.paths == [], (path, query)  # the fast path answered, matcher fallbacks and errors included
            want = await _call(django_asgi_app, _scope(path, query))
            assert got == want, (path, query)
            assert got == await _call(application, _scope(path, query))  # the app uvicorn serves

    asyncio.run(run())
    ok = json.loads(asyncio.run(_call(fast, _scope("/api/v1/markets/ETH_USDT/depth", "limit=2")))[2])
    assert ok["asks"] == [["2003", "0.5015"], ["2010", "1"]] and ok["bids"][0] == ["1995.25", "0.5"]
    assert ok["seq"] > 0


def test_what_the_fast_path_leaves_to_django(book, settings):
    from cryptgo.asgi import django_asgi_app
    from cryptgo.fastpath import FastPath

    spy = Spy(django_asgi_app)
    fast = FastPath(spy)
    path = "/api/v1/markets/ETH_USDT/depth"

    def through(scope: dict[str, Any], body: bytes = b"") -> bool:
        spy.paths.clear()
        status, _, _ = asyncio.run(_call(fast, scope, body))
        assert status < 500
        return spy.paths == [scope["path"]]

    selectors.forget_cache()
    assert not through(_scope(path))  # market not cached: looked up in a thread (filling the cache)
    assert selectors.market_cached("ETH_USDT") is not None
    assert not through(_scope("/api/v3/depth", "symbol=ETHUSDT"))
    assert not through(_scope("/api/v1/markets/NOPE_USDT/depth"))  # 404 unknown_market, from the fast path
    assert through(_scope("/api/v3/depth"))  # no symbol: Django's -1102
    assert through(_scope(path, method="HEAD"))
    assert through(_scope(path, headers=[(b"host", b"evil.example")]))  # Django refuses the host
    assert through(_scope(path, headers=[]))
    assert through(_scope(path, headers=[(b"host", b"127.0.0.1"), (b"content-length", b"2")]), b"{}")
    assert through(_scope(path + "/"))
    assert through(_scope("/api/v1/markets/ETH_USDT/deals"))
    assert through(_scope("/api/v3/ticker/24hr"))  # every market: a listing query, Django's
    assert through(_scope("/api/v3/ticker/24hr", "symbols=%5B%22ETHUSDT%22%5D"))
    settings.MARKET_DATA_SOURCE = "database"
    assert through(_scope(path))
    settings.MARKET_DATA_SOURCE = "redis"
    settings.API_FAST_PATH = False
    assert through(_scope(path))


def test_fast_path_throttles_with_the_same_counters(book, settings):
    """The per-IP limit counts requests of both paths in the same Redis window; 429s look alike."""
    from cryptgo.asgi import django_asgi_app
    from cryptgo.fastpath import FastPath

    settings.API_THROTTLE_IP_RATE = "3/hour"
    fast = FastPath(django_asgi_app)
    selectors.market_get("ETH_USDT")
    selectors.market_by_symbol("ETHUSDT")

    async def run(path: str, query: str, ip: str) -> list[tuple[int, dict[str, str], bytes]]:
        out = []
        for app in (django_asgi_app, fast, django_asgi_app, fast, django_asgi_app):
            out.append(await _call(app, _scope(path, query, ip=ip)))
        return out

    import secrets

    ip = f"203.0.113.{secrets.randbelow(250) + 1}"
    native = asyncio.run(run("/api/v1/markets/ETH_USDT/depth", "limit=1", ip))
    assert [r[0] for r in native] == [200, 200, 200, 429, 429]
    (_, h1, b1), (_, h2, b2) = native[3], native[4]
    j1, j2 = json.loads(b1), json.loads(b2)
    assert j1["code"] == j2["code"] == "throttled"
    assert abs(j1["details"]["retry_after"] - j2["details"]["retry_after"]) <= 1
    assert abs(int(h1["retry-after"]) - int(h2["retry-after"])) <= 1
    assert {k for k in h1 if k != "content-length"} == {k for k in h2 if k != "content-length"}

    binance = asyncio.run(run("/api/v3/depth", "symbol=ETHUSDT&limit=1", f"2001:db8::{secrets.randbelow(9999)}"))
    assert [r[0] for r in binance] == [200, 200, 200, 429, 429]
    assert json.loads(binance[3][2])["code"] == json.loads(binance[4][2])["code"] == -1003
    assert binance[3][1].keys() == binance[4][1].keys()


def test_live_server_serves_depth_through_the_fast_path(book, matcher, tmp_path, api):
    """uvicorn as production runs it: the answers equal the DRF views' (in-process test client)."""
    from tests.api.live import LiveApi

    server = LiveApi(tmp_path, matcher.addr, workers=1, MARKET_DATA_SOURCE="redis",
                     API_THROTTLE_IP_RATE="1000/hour").start()
    try:
        with requests.Session() as s:
            for path, query in REQUESTS:
                s.get(f"{server.url}{path}?{query}", timeout=30)  # warms the server's market cache
                r = s.get(f"{server.url}{path}?{query}", timeout=30)
                want = api.get(f"{path}?{query}")
                assert (r.status_code, r.json()) == (want.status_code, want.json()), (path, query)
                assert r.headers["Content-Type"] == "application/json"
                assert int(r.headers["Content-Length"]) == len(r.content)
            # Django logs every 4xx it answers (django.request, "Bad Request"); the fast path does not. Only a
            # request that finds the market cache lapsed (every 2 s) falls through to Django.
            before = server.log_tail(10_000).count("Bad Request: /api/v1/markets/ETH_USDT/depth")
            for _ in range(20):
                assert s.get(f"{server.url}/api/v1/markets/ETH_USDT/depth?limit=0", timeout=30).status_code == 400
            after = server.log_tail(10_000).count("Bad Request: /api/v1/markets/ETH_USDT/depth")
            assert after - before < 10, server.log_tail()
            total = Decimal(0)
            for _ in range(20):  # keep-alive: many requests on one connection
                r = s.get(f"{server.url}/api/v3/depth?symbol=ETHUSDT&limit=5", timeout=30)
                assert r.status_code == 200
                total += sum(Decimal(a) for _, a in r.json()["asks"])
            assert total == 20 * Decimal("2.5015")
    finally:
        server.stop()


# ------------------------------------------------------------------ POST /api/v1/orders


def _post_scope(token: str | None, body: bytes, ip: str = "198.51.100.8", content_type: bytes = b"application/json",
                extra: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type),
               (b"content-length", str(len(body)).encode()), *(extra or [])]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return _scope("/api/v1/orders", method="POST", ip=ip, headers=headers)


VOLATILE = ("id", "client_order_id", "created_at", "updated_at")


def _masked(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, set[str], Any]:
    status, headers, body = answer
    data = json.loads(body)
    if status == 201:
        data = {k: (None if k in VOLATILE else v) for k, v in data.items()}
    return status, {k for k in headers if k != "content-length"}, data


def test_fast_path_places_orders_as_django_does(matcher, alice, bob, settings):
    from rest_framework_simplejwt.tokens import RefreshToken

    from cryptgo.api.authentication import JWTAuthentication
    from cryptgo.asgi import django_asgi_app
    from cryptgo.fastpath import FastPath
    from trading.models import Order

    matcher.client.update_balance(alice.pk, "USDT", "deposit", "fpo-usdt", "10000")
    matcher.client.update_balance(alice.pk, "ETH", "deposit", "fpo-eth", "3")
    token = str(RefreshToken.for_user(alice).access_token)
    spy = Spy(django_asgi_app)
    fast = FastPath(spy)
    cases: list[dict[str, Any] | str] = [
        {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1990.5", "amount": "0.25"},
        {"market": "ETH_USDT", "side": "sell", "type": "limit", "price": "2100", "amount": "1", "post_only": True,
         "time_in_force": "GTC", "stp": "cancel_both"},
        {"market": "ETH_USDT", "side": "sell", "type": "limit", "price": "2200.01", "amount": "0.01",
         "time_in_force": "GTC"},
        {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1990.123", "amount": "0.25"},
        {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": 1990, "amount": "0.25"},
        {"market": "ETH_USDT", "side": "buy", "type": "market", "price": "1", "amount": "1"},
        {"market": "NOPE_USDT", "side": "buy", "type": "limit", "price": "1", "amount": "1"},
        {"market": 7, "side": "buy", "type": "limit", "price": "1", "amount": "1"},
        {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1000000", "amount": "1"},  # no funds
        {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1", "amount": "0.0001"},  # below minimum
        {"side": "buy"},
        "[1, 2]",
        "{}",
    ]

    def warm() -> None:  # what the first request of a user and market fills (Django's own lookups)
        for name in ("ETH_USDT", "NOPE_USDT"):
            selectors.market_get(name)
        JWTAuthentication().authenticate(type("R", (), {"META": {"HTTP_AUTHORIZATION": f"Bearer {token}"}})())

    async def run() -> None:
        for i, case in enumerate(cases):
            raw = case.encode() if isinstance(case, str) else json.dumps(case).encode()
            answers = []
            for app, suffix in ((fast, "f"), (django_asgi_app, "d")):
                body = raw
                if isinstance(case, dict) and i < 3:  # placements: each path its own client_order_id
                    body = json.dumps({**case, "client_order_id": f"fp-{i}-{suffix}"}).encode()
                await asyncio.to_thread(_closing, warm)
                spy.paths.clear()
                answers.append(await _call(app, _post_scope(token, body), body))
                if app is fast:
                    assert spy.paths == [], case
            assert _masked(answers[0]) == _masked(answers[1]), case
            if isinstance(case, dict) and i < 3:
                assert answers[0][0] == 201
                assert json.loads(answers[0][2])["client_order_id"] == f"fp-{i}-f"
        # a repeated client_order_id: 409 from both
        dup = json.dumps({**cases[0], "client_order_id": "fp-0-d"}).encode()  # type: ignore[dict-item]
        await asyncio.to_thread(_closing, warm)
        got = await _call(fast, _post_scope(token, dup), dup)
        assert got[0] == 409 and json.loads(got[2])["code"] == "duplicate_client_order_id"
        assert _masked(got) == _masked(await _call(django_asgi_app, _post_scope(token, dup), dup))

    asyncio.run(run())
    assert Order.objects.filter(user=alice, client_order_id__startswith="fp-").count() == 6
    assert Order.objects.get(client_order_id="fp-2-f").price == Decimal("2200.01")


def test_what_the_order_fast_path_leaves_to_django(matcher, alice, settings, api_key_for):
    from rest_framework_simplejwt.tokens import RefreshToken

    from cryptgo.api.authentication import JWTAuthentication
    from cryptgo.asgi import django_asgi_app
    from cryptgo.fastpath import FastPath

    matcher.client.update_balance(alice.pk, "USDT", "deposit", "fpl-usdt", "10000")
    token = str(RefreshToken.for_user(alice).access_token)
    spy = Spy(django_asgi_app)
    fast = FastPath(spy)
    order = json.dumps({"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1000",
                        "amount": "0.01"}).encode()
    selectors.market_get("ETH_USDT")
    JWTAuthentication._cache.clear()

    def through(scope: dict[str, Any], body: bytes) -> tuple[bool, int]:
        spy.paths.clear()
        status, _, _ = asyncio.run(_call(fast, scope, body))
        return spy.paths == ["/api/v1/orders"], status

    assert through(_post_scope(token, order), order) == (False, 201)  # user row read in a thread
    assert through(_post_scope(token, order), order) == (False, 201)  # and then from the cache
    alice.is_active = False
    alice.save()
    JWTAuthentication._cache.clear()
    assert through(_post_scope(token, order), order) == (True, 401)  # Django answers for inactive users
    alice.is_active = True
    alice.save()
    JWTAuthentication._cache.clear()
    assert through(_post_scope(None, order), order) == (True, 401)
    assert through(_post_scope("not.a.token", order), order) == (True, 401)
    assert through(_post_scope(token, b"{bad json"), b"{bad json") == (True, 400)
    assert through(_post_scope(token, b'{"price": NaN}'), b'{"price": NaN}') == (True, 400)
    assert through(_post_scope(token, order, content_type=b"text/plain"), order) == (True, 415)
    big = json.dumps({"market": "ETH_USDT", "pad": "x" * 20_000}).encode()
    assert through(_post_scope(token, big), big) == (True, 400)
    signed = api_key_for(alice, ["read", "trade"])
    headers = signed.headers("POST", "/api/v1/orders", order)
    extra = [(k[5:].lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    assert through(_post_scope(None, order, extra=extra), order) == (True, 201)
    selectors.forget_cache()
    assert through(_post_scope(token, order), order) == (False, 201)  # market not cached: read in a thread


def test_live_server_places_orders_through_the_fast_path(matcher, alice, tmp_path, as_user):
    """uvicorn as production runs it: placements and refusals over HTTP, as the DRF view answers them."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.api.live import LiveApi
    from trading.models import Order

    matcher.client.update_balance(alice.pk, "USDT", "deposit", "fpv-usdt", "100000")
    token = str(RefreshToken.for_user(alice).access_token)
    server = LiveApi(tmp_path, matcher.addr, workers=1).start()
    order = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1500", "amount": "0.5"}
    try:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {token}"
            placed = [s.post(f"{server.url}/api/v1/orders", json={**order, "client_order_id": f"v{i}"}, timeout=30)
                      for i in range(30)]
            assert [r.status_code for r in placed] == [201] * 30, server.log_tail()
            assert placed[-1].json()["status"] == "open" and placed[-1].json()["amount"] == "0.5"
            for bad in ({**order, "price": "1500.001"}, {**order, "client_order_id": "v3"},
                        {**order, "amount": "1000"}, {**order, "market": "NOPE"}):
                r = s.post(f"{server.url}/api/v1/orders", json=bad, timeout=30)
                want = as_user(alice).post("/api/v1/orders", bad, format="json")
                assert (r.status_code, r.json()) == (want.status_code, want.json()), bad
                assert r.headers["Content-Type"] == "application/json"
    finally:
        server.stop()
    assert Order.objects.filter(user=alice, client_order_id__startswith="v").count() == 30


def test_depth_reads_share_redis_round_trips_but_never_an_older_read(monkeypatch):
    """Requests arriving together share one GET; one arriving while a GET is in flight waits for the next."""
    from cryptgo import fastpath

    class SlowRedis:
        value, calls = 0, 0

        async def get(self, key: str) -> int:
            self.calls += 1
            seen = self.value  # what Redis holds when the command arrives
            await asyncio.sleep(0.02)
            return seen

    fake = SlowRedis()
    monkeypatch.setattr(fastpath, "_md_redis", lambda: fake)

    async def run() -> tuple[list[int], list[int]]:
        first = [asyncio.create_task(fastpath._fresh_get("k")) for _ in range(20)]
        await asyncio.sleep(0.005)  # the first GET is in flight
        fake.value = 1
        later = [asyncio.create_task(fastpath._fresh_get("k")) for _ in range(20)]
        return await asyncio.gather(*first), await asyncio.gather(*later)

    first, later = asyncio.run(run())
    # the first request's GET read 0; the 19 others started while it was in flight and share the next one
    assert first == [0] + [1] * 19 and later == [1] * 20
    assert fake.calls == 2
    assert not fastpath._inflight and not fastpath._joinable
