"""The websocket protocol over a real server: replies, refusals with codes, limits and close codes."""

from __future__ import annotations

import json
import time

import pytest

from streaming.protocol import CloseCode, ErrorCode

pytestmark = pytest.mark.django_db(transaction=True)


def error_of(msg: dict) -> tuple[int, str]:
    assert msg["result"] is None, msg
    return msg["error"]["code"], msg["error"]["reason"]


def test_server_methods_answer(ws_client):
    c = ws_client()
    assert c.call("server.ping") == {"id": 1, "result": "pong", "error": None}
    before = int(time.time() * 1000)
    now = c.result("server.time")
    assert isinstance(now, int) and abs(now - before) < 60_000
    c.send({"id": "str-id", "method": "server.ping"})  # params may be omitted; ids may be strings
    assert c.reply_to("str-id")["result"] == "pong"


def test_bad_requests_get_error_replies_and_the_connection_stays_usable(ws_client, eth_usdt):
    c = ws_client()
    c.send("{not json")
    assert error_of(c.recv()) == (ErrorCode.INVALID_ARGUMENT, "invalid_argument")
    c.send("[1, 2]")
    assert error_of(c.recv())[0] == ErrorCode.INVALID_ARGUMENT
    c.send({"id": 7, "method": "no.such"})
    msg = c.recv()
    assert msg["id"] == 7 and error_of(msg) == (ErrorCode.METHOD_NOT_FOUND, "method_not_found")
    c.send({"id": 8, "method": "server.ping", "params": {"a": 1}})
    assert c.reply_to(8)["error"]["code"] == ErrorCode.INVALID_ARGUMENT
    c.send(b"\x00\x01binary")
    assert error_of(c.recv())[0] == ErrorCode.INVALID_ARGUMENT
    c.send({"id": 9, "method": "server.ping", "pad": "x" * 5000})
    assert error_of(c.recv()) == (ErrorCode.MESSAGE_TOO_LARGE, "message_too_large")
    for params in (["NOPE_USDT", 20, "0"], ["ETH_USDT", 7, "0"], ["ETH_USDT", 20, "0.05"], [], [5]):
        msg = c.call("depth.subscribe", *params)
        assert error_of(msg)[0] == ErrorCode.INVALID_ARGUMENT, (params, msg)
    assert error_of(c.call("kline.subscribe", "ETH_USDT", "2m"))[0] == ErrorCode.INVALID_ARGUMENT
    assert error_of(c.call("deals.query", "ETH_USDT", 1000))[0] == ErrorCode.INVALID_ARGUMENT
    assert c.call("server.ping")["result"] == "pong"


def test_a_frame_beyond_the_transport_limit_closes_with_1009(ws_client):
    c = ws_client(max_size=None)
    c.send("x" * 70_000)  # the server's --ws-max-size is 64 KiB
    assert c.close_code() == 1009


def test_private_methods_need_authentication(ws_client, eth_usdt, alice):
    c = ws_client()
    for method, params in (("order.subscribe", []), ("asset.subscribe", []), ("order.query", ["ETH_USDT"]),
                           ("asset.query", [])):
        assert error_of(c.call(method, *params)) == (ErrorCode.REQUIRE_AUTH, "require_auth")
    assert error_of(c.call("server.auth", "not-a-jwt"))[0] == ErrorCode.AUTH_FAILED
    assert error_of(c.call("server.auth", "key", "123", "sig"))[0] == ErrorCode.AUTH_FAILED
    assert error_of(c.call("order.subscribe"))[0] == ErrorCode.REQUIRE_AUTH


def test_jwt_and_api_key_authenticate(ws_client, eth_usdt, alice, bob):
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.services import api_key_create
    from cryptgo.api.authentication import hmac_hex

    c = ws_client()
    assert c.result("server.auth", str(AccessToken.for_user(alice))) == {"status": "success", "user_id": alice.id}
    assert c.result("order.subscribe") == {"status": "success"}
    assert error_of(c.call("server.auth", str(AccessToken.for_user(bob))))[0] == ErrorCode.AUTH_FAILED

    created = api_key_create(user=bob, label="bot", permissions=["read"], ip_allowlist=[], totp_code=None)
    d = ws_client()
    ts = str(int(time.time() * 1000))
    wrong = hmac_hex(created.secret, f"{ts}GET/ws/".encode())
    assert error_of(d.call("server.auth", created.api_key.key, ts, wrong))[0] == ErrorCode.AUTH_FAILED
    good = hmac_hex(created.secret, f"{ts}server.auth".encode())
    assert d.result("server.auth", created.api_key.key, ts, good) == {"status": "success", "user_id": bob.id}
    e = ws_client()
    assert error_of(e.call("server.auth", created.api_key.key, ts, good))[0] == ErrorCode.AUTH_FAILED  # replay
    stale = str(int(time.time() * 1000) - 600_000)
    assert error_of(e.call("server.auth", created.api_key.key, stale,
                           hmac_hex(created.secret, f"{stale}server.auth".encode())))[0] == ErrorCode.AUTH_FAILED


def test_subscription_limit(ws_server_factory, ws_client, eth_usdt):
    server = ws_server_factory(WS_MAX_SUBSCRIPTIONS="3")
    c = ws_client(server)
    assert c.result("depth.subscribe", "ETH_USDT", 5, "0") == {"status": "success"}
    assert c.result("depth.subscribe", "ETH_USDT", 10, "0.1") == {"status": "success"}
    assert c.result("ticker.subscribe", "ETH_USDT") == {"status": "success"}
    assert error_of(c.call("kline.subscribe", "ETH_USDT", "1m")) == (ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                                                                     "too_many_subscriptions")
    assert c.result("depth.subscribe", "ETH_USDT", 5, "0") == {"status": "success"}  # the same one again: fine
    assert c.result("depth.unsubscribe", "ETH_USDT", 10, "0.1") == {"status": "success", "unsubscribed": 1}
    assert c.result("kline.subscribe", "ETH_USDT", "1m") == {"status": "success"}


def test_abuse_closes_with_the_documented_code(ws_server_factory, ws_client):
    server = ws_server_factory(WS_MAX_ERRORS="5")
    c = ws_client(server)
    for _ in range(10):
        c.send("garbage")
    assert c.close_code() == CloseCode.TOO_MANY_ERRORS


def test_too_many_requests_are_refused_then_closed(ws_server_factory, ws_client):
    server = ws_server_factory(WS_RATE_PER_SECOND="5", WS_MAX_ERRORS="1000")
    c = ws_client(server)
    for i in range(40):
        c.send({"id": i, "method": "server.ping"})
    replies = [c.recv() for _ in range(40)]
    refused = [r for r in replies if r["error"]]
    assert refused and all(r["error"]["code"] == ErrorCode.RATE_LIMITED for r in refused)
    assert len(refused) < 40
    assert sorted(r["id"] for r in replies) == list(range(40))


def test_an_idle_connection_is_closed(ws_server_factory, ws_client):
    server = ws_server_factory(WS_IDLE_SECONDS="1")
    c = ws_client(server)
    assert c.call("server.ping")["result"] == "pong"
    assert c.close_code() == CloseCode.IDLE


def test_a_client_that_does_not_read_is_cut_off_and_others_get_everything(ws_server_factory, ws_client, eth_usdt):
    """The slow client stops reading; pushes pile up; it is closed with 4001 while a reader gets all."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from streaming import groups

    server = ws_server_factory(WS_SEND_QUEUE="20")
    slow = ws_client(server, compression=None, max_queue=1)
    fast = ws_client(server, compression=None)
    for c in (slow, fast):
        assert c.result("ticker.subscribe", "ETH_USDT") == {"status": "success"}
        c.push("ticker.update")
    layer = get_channel_layer()
    filler = "".join(f"{i:08x}" for i in range(4000))  # 32 kB a push, not compressible by repetition
    sent = received = 0
    for n in range(400):  # 12 MB: more than the socket buffers between server and client hold
        tick = {"market": "ETH_USDT", "n": n, "filler": filler}
        async_to_sync(layer.group_send)(groups.ticker("ETH_USDT"),
                                        groups.message("ticker", market="ETH_USDT", ticker=tick))
        sent += 1
        msg = fast.push("ticker.update")
        assert msg["params"][1]["n"] == n
        received += 1
    assert received == sent
    slow_code = slow.close_code(timeout=60)
    assert slow_code == CloseCode.SLOW_CONSUMER
    assert fast.call("server.ping")["result"] == "pong"


def test_pushes_are_json_with_method_and_params(ws_client, eth_usdt, md_redis):
    c = ws_client()
    assert c.result("ticker.subscribe", "ETH_USDT") == {"status": "success"}
    msg = c.push("ticker.update")
    assert set(msg) == {"id", "method", "params"} and msg["id"] is None
    assert msg["params"][0] == "ETH_USDT" and msg["params"][1]["last"] is None
    json.dumps(msg)
