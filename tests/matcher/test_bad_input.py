"""Bad input over gRPC gets INVALID_ARGUMENT or FAILED_PRECONDITION with a reason code, and changes nothing."""

import json

import grpc
import pytest

from matcher.client import MatcherRejected
from matcher.proto import matcher_pb2 as pb
from matcher.proto import matcher_pb2_grpc as pb_grpc
from matcher.service.state import normalize
from tests.matcher.helpers import counts

INVALID = "INVALID_ARGUMENT"
PRECONDITION = "FAILED_PRECONDITION"


def limit(**kw):
    args = {"side": "buy", "price": "2000.00", "amount": "1", "market": "ETH_USDT"}
    args.update(kw)
    return lambda c, u: c.place_limit(u, args.pop("market"), args.pop("side"), args.pop("price"),
                                      args.pop("amount"), **args)


CASES = [
    ("negative amount", limit(amount="-1"), INVALID, "invalid_amount"),
    ("zero amount", limit(amount="0"), INVALID, "invalid_amount"),
    ("zero price", limit(price="0"), INVALID, "invalid_amount"),
    ("negative price", limit(price="-2000"), INVALID, "invalid_amount"),
    ("too many amount decimals", limit(amount="0.00001"), INVALID, "invalid_precision"),
    ("too many price decimals", limit(price="2000.001"), INVALID, "invalid_precision"),
    ("unknown market", limit(market="DOGE_USDT"), INVALID, "unknown_market"),
    ("exponent notation", limit(amount="1e3"), INVALID, "invalid_amount"),
    ("not a number", limit(amount="one"), INVALID, "invalid_amount"),
    ("NaN", limit(price="NaN"), INVALID, "invalid_amount"),
    ("Infinity", limit(price="Infinity"), INVALID, "invalid_amount"),
    ("empty amount", limit(amount=""), INVALID, "invalid_amount"),
    ("absurdly large amount", limit(amount="9" * 30), INVALID, "invalid_amount"),
    ("absurdly long number", limit(price="1" * 200), INVALID, "invalid_amount"),
    ("large but valid amount", limit(amount="1000000"), PRECONDITION, "insufficient_balance"),
    ("bad side", limit(side="hold"), INVALID, "invalid_argument"),
    ("bad time in force", limit(tif="GTX"), INVALID, "invalid_argument"),
    ("bad stp", limit(stp="nope"), INVALID, "invalid_argument"),
    ("NUL in client_order_id", limit(client_order_id="a\x00b"), INVALID, "invalid_argument"),
    ("client_order_id too long", limit(client_order_id="x" * 65), INVALID, "invalid_argument"),
    ("market buy negative", lambda c, u: c.place_market(u, "ETH_USDT", "buy", "-5"), INVALID, "invalid_amount"),
    ("market buy too precise", lambda c, u: c.place_market(u, "ETH_USDT", "buy", "5.0000001"), INVALID,
     "invalid_precision"),
    ("market sell without ETH", lambda c, u: c.place_market(u, "ETH_USDT", "sell", "0.5"), PRECONDITION,
     "insufficient_balance"),
    ("post-only that would trade", limit(price="2100.00", post_only=True), PRECONDITION, "would_take"),
    ("fill-or-kill that cannot fill", limit(price="2100.00", amount="3", tif="FOK"), PRECONDITION,
     "fok_unfillable"),
    ("cancel unknown order", lambda c, u: c.cancel(u, "ETH_USDT", order_id=424242), PRECONDITION, "unknown_order"),
    ("deposit zero", lambda c, u: c.update_balance(u, "USDT", "deposit", "z", "0"), INVALID, "invalid_amount"),
    ("deposit too precise", lambda c, u: c.update_balance(u, "USDT", "deposit", "p", "1.0000001"), INVALID,
     "invalid_precision"),
    ("deposit unknown asset", lambda c, u: c.update_balance(u, "XYZ", "deposit", "x", "1"), INVALID,
     "unknown_asset"),
    ("deposit absurd", lambda c, u: c.update_balance(u, "USDT", "deposit", "a", "1" * 41), INVALID,
     "invalid_amount"),
    ("deposit not a number", lambda c, u: c.update_balance(u, "USDT", "deposit", "n", "12,5"), INVALID,
     "invalid_amount"),
    ("reserved business", lambda c, u: c.update_balance(u, "USDT", "trade", "t", "1"), INVALID, "invalid_argument"),
    ("business too long", lambda c, u: c.update_balance(u, "USDT", "b" * 33, "t", "1"), INVALID,
     "invalid_argument"),
    ("NUL in business id", lambda c, u: c.update_balance(u, "USDT", "deposit", "a\x00", "1"), INVALID,
     "invalid_argument"),
    ("unknown user", lambda c, u: c.update_balance(10**9, "USDT", "deposit", "ghost", "1"), INVALID,
     "unknown_user"),
    ("overdraw", lambda c, u: c.update_balance(u, "USDT", "withdrawal", "w", "-1000000"), PRECONDITION,
     "insufficient_balance"),
    ("fee of 150%", lambda c, u: c.set_fees("ETH_USDT", "1.5", "0.001"), INVALID, "invalid_amount"),
    ("depth of unknown market", lambda c, u: c.depth("NOPE_USDT"), INVALID, "unknown_market"),
    ("halt unknown market", lambda c, u: c.halt_market("NOPE_USDT"), INVALID, "unknown_market"),
]


@pytest.fixture
def seeded(funded, matcher):
    alice, bob = funded
    matcher.client.place_limit(bob.id, "ETH_USDT", "sell", "2100.00", "2")
    return alice


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(seeded, matcher):
    c = matcher.client
    before_state = normalize(c.dump_state())
    before_counts = counts()
    wrong = []
    for name, call, code, reason in CASES:
        try:
            result = call(c, seeded.id)
        except MatcherRejected as exc:
            if (exc.code, exc.reason) != (code, reason):
                wrong.append((name, exc.code, exc.reason))
        else:
            wrong.append((name, "accepted", result))
    assert wrong == []
    assert normalize(c.dump_state()) == before_state
    assert counts() == before_counts


def test_raw_grpc_status_carries_the_reason_in_metadata(seeded, matcher):
    """What a non-Python client sees: the status code and the "reason" trailing metadata."""
    with grpc.insecure_channel(matcher.addr) as channel:
        stub = pb_grpc.MatcherStub(channel)
        with pytest.raises(grpc.RpcError) as exc:
            stub.PlaceLimit(pb.PlaceLimitRequest(user=seeded.id, market="ETH_USDT", side="buy", price="1.001",
                                                 amount="1"), timeout=10)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ("reason", "invalid_precision") in exc.value.trailing_metadata()
        assert exc.value.details().startswith("invalid_precision:")
        for detail in ("[1, 2]", "{not json", json.dumps({"x": "\ud800"})):
            with pytest.raises(grpc.RpcError) as exc:
                stub.UpdateBalance(pb.UpdateBalanceRequest(user=seeded.id, asset="USDT", business="deposit",
                                                           business_id=f"d-{detail}", change="1",
                                                           detail_json=detail), timeout=10)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, detail


def test_a_batch_refuses_bad_orders_one_by_one(seeded, matcher):
    from matcher.client import cancel_request, limit_request, market_request

    c = matcher.client
    results = c.place_batch([
        limit_request(seeded.id, "ETH_USDT", "buy", "1000.00", "1"),
        limit_request(seeded.id, "ETH_USDT", "buy", "1000.001", "1"),
        market_request(seeded.id, "NOPE_USDT", "buy", "10"),
        limit_request(seeded.id, "ETH_USDT", "buy", "1000.00", "100000"),
    ])
    assert results[0]["status"] == "open"
    assert [(r.code, r.reason) for r in results[1:]] == [
        (INVALID, "invalid_precision"), (INVALID, "unknown_market"), (PRECONDITION, "insufficient_balance")]
    assert [o["id"] for o in c.open_orders(seeded.id)] == [results[0]["id"]]
    cancelled, missing = c.place_batch([cancel_request(seeded.id, "ETH_USDT", order_id=results[0]["id"]),
                                        cancel_request(seeded.id, "ETH_USDT", order_id=999999)])
    assert (cancelled["id"], cancelled["status"]) == (results[0]["id"], "cancelled")
    assert (missing.code, missing.reason) == (PRECONDITION, "unknown_order")
    assert c.open_orders(seeded.id) == []
