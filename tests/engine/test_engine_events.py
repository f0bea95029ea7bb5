"""The event classes are rebuilt on ``tuple`` for speed (events._c_constructed):
they must still behave as the NamedTuples they are declared as."""

from __future__ import annotations

import copy
import pickle

from engine_helpers import deposit, limit, make_engine

from matcher.engine import BalanceEvent, DealEvent, OrderEvent, Result, view


def _a_trade() -> Result:
    """A buy that trades against a resting sell: order, deal and balance events."""
    e = make_engine()
    deposit(e, 1, "USDT", "100000")
    deposit(e, 2, "ETH", "10")
    assert limit(e, 2, "sell", "2000", "1").ok
    r = limit(e, 1, "buy", "2000", "0.5")
    assert r.ok
    return r


def test_events_keep_namedtuple_behaviour() -> None:
    r = _a_trade()
    kinds = {type(ev) for ev in r.events}
    assert kinds == {OrderEvent, DealEvent, BalanceEvent}
    for ev in r.events:
        assert isinstance(ev, tuple)
        assert len(ev) == len(type(ev)._fields)
        assert ev.seq == ev[0]
        assert type(ev)._make(tuple(ev)) == ev
        assert ev._replace(seq=ev.seq) == ev
        assert ev._asdict()["seq"] == ev.seq
        assert repr(ev).startswith(type(ev).__name__ + "(seq=")
        assert copy.copy(ev) == ev
        # Asset, Market and Order compare by identity: compare what pickling keeps
        clone = pickle.loads(pickle.dumps(ev))
        assert type(clone) is type(ev)
        assert clone.to_dict() == ev.to_dict()
    deal = next(ev for ev in r.events if type(ev) is DealEvent)
    assert deal.kind == "deal" and deal.to_dict()["amount"] == "0.5000"


def test_raw_events_are_plain_tuples_of_the_class_and_its_fields() -> None:
    """``Result.raw`` is what the engine builds (and the matcher reads); ``events`` are its NamedTuples."""
    r = _a_trade()
    assert len(r.raw) == len(r.events) > 5
    for raw, ev in zip(r.raw, r.events, strict=True):
        assert type(raw) is tuple
        assert raw[0] is type(ev)
        assert raw[1:] == tuple(ev)
        assert view(raw) == ev


def test_fee_balance_events_are_keyed_by_the_deal_id() -> None:
    """Fee rows carry the deal id, as trade rows do; a deal's two fees are in different assets (each side
    pays in what it receives), so (user, asset, business, business_id) stays unique."""
    r = _a_trade()
    deal = next(ev for ev in r.events if type(ev) is DealEvent)
    fees = [ev for ev in r.events if type(ev) is BalanceEvent and ev.business == "fee"]
    assert [(ev.user, ev.asset.name, ev.business_id, ev.change) for ev in fees] == [
        (0, "ETH", deal.id, deal.taker_fee), (0, "USDT", deal.id, deal.maker_fee)]
    keys = [(ev.user, ev.asset.name, ev.business, ev.business_id) for ev in r.events if type(ev) is BalanceEvent
            and ev.change]
    assert len(keys) == len(set(keys)) == 6
