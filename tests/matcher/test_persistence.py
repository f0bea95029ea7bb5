"""Every acknowledged command is in PostgreSQL, and a restarted matcher (SIGTERM or SIGKILL) has exactly the
state it had: the tables describe the engine."""

from decimal import Decimal

import pytest
from django.db import connection

from matcher.client import MatcherUnavailable, get_client
from matcher.models import EventOutbox
from matcher.service.state import normalize
from tests.matcher.helpers import conservation_differences, counts, outbox_messages, outbox_seqs, tables_state
from trading.models import Balance, BalanceHistory, Deal, Operation, Order


def _trade(c, alice, bob):
    buy = c.place_limit(alice.id, "ETH_USDT", "buy", "2000.00", "1.5", client_order_id="a-1")
    c.place_limit(alice.id, "ETH_USDT", "buy", "1990.00", "2")
    sell = c.place_limit(bob.id, "ETH_USDT", "sell", "1995.00", "1", stp="cancel_both")
    c.place_limit(bob.id, "ETH_USDT", "sell", "2100.00", "3")
    mkt = c.place_market(bob.id, "ETH_USDT", "sell", "0.25")
    return buy, sell, mkt


def test_trades_are_committed_row_by_row(funded, matcher):
    alice, bob = funded
    c = get_client()
    buy, sell, mkt = _trade(c, alice, bob)
    assert sell["status"] == "filled" and sell["filled_quote"] == "2000.000000"

    resting = Order.objects.get(id=buy["id"])
    assert resting.status == "partially_filled"
    assert resting.filled_amount == Decimal("1.25")
    assert resting.client_order_id == "a-1"
    assert Order.objects.get(id=sell["id"]).status == "filled"
    assert Order.objects.get(id=mkt["id"]).type == "market"

    deals = list(Deal.objects.order_by("id").values_list("price", "amount", "maker_order_id", "taker_order_id"))
    assert deals == [(Decimal("2000"), Decimal("1"), buy["id"], sell["id"]),
                     (Decimal("2000"), Decimal("0.25"), buy["id"], mkt["id"])]
    # taker bob pays 0.2% of 2000 USDT, maker alice 0.1% of 1 ETH
    assert Balance.objects.get(user=bob, asset__symbol="USDT").available == Decimal("2495.000000")
    assert Balance.objects.get(user_id=0, asset__symbol="ETH").available == Decimal("0.00125")
    alice_usdt = Balance.objects.get(user=alice, asset__symbol="USDT")
    assert alice_usdt.frozen == Decimal("500") + Decimal("3980")  # 0.25 @ 2000 + 2 @ 1990
    assert c.balances(alice.id)["USDT"] == {"available": "93020.000000", "frozen": "4480.000000"}

    ledger = BalanceHistory.objects.filter(user=alice, asset__symbol="ETH").order_by("seq")
    assert [(h.business, h.change) for h in ledger] == [("trade", Decimal("0.999")), ("trade", Decimal("0.24975"))]
    assert ledger.last().balance == Decimal("1.24875")

    # the oplog holds the accepted commands only, in order
    assert list(Operation.objects.order_by("seq").values_list("method", flat=True)) == [
        "add_asset", "add_asset", "add_market", "update_balance", "update_balance",
        "place_limit", "place_limit", "place_limit", "place_limit", "place_market"]
    seqs = outbox_seqs()
    assert seqs == list(range(1, len(seqs) + 1))
    topic, key, last = outbox_messages()[-1]
    assert (topic, key, last["v"], last["type"], last["seq"]) == (
        matcher.topic_prefix + "orders", str(bob.id), 1, "order", seqs[-1])
    assert last["data"]["order"]["id"] == mkt["id"] and last["data"]["event"] == "done"
    assert EventOutbox.objects.count() > 1
    assert conservation_differences() == []
    assert tables_state() == tables_state_of(c)


def tables_state_of(client):
    return normalize(client.dump_state())


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_restores_exactly_the_committed_state(funded, matcher, how):
    alice, bob = funded
    c = get_client()
    _trade(c, alice, bob)
    c.set_fees("ETH_USDT", "0.0005", "0.0015")
    c.set_fees("ETH_USDT", "0", "0.0001", user_id=alice.id)
    c.halt_market("ETH_USDT")
    before = tables_state_of(c)
    before_counts = counts()
    if how == "sigterm":
        assert matcher.stop() == 0
    else:
        matcher.kill()
    matcher.start()
    assert tables_state_of(matcher.client) == before
    assert counts() == before_counts  # nothing re-applied, nothing logged twice
    c.resume_market("ETH_USDT")
    order = matcher.client.place_limit(alice.id, "ETH_USDT", "buy", "1000.00", "1")
    assert order["id"] == before["next_order_id"]
    assert conservation_differences() == []


def test_a_failed_commit_acknowledges_nothing_and_the_restart_has_the_committed_state(funded, matcher):
    alice, bob = funded
    c = matcher.client
    c.place_limit(alice.id, "ETH_USDT", "buy", "2000.00", "1")
    committed = tables_state()
    with connection.cursor() as cur:  # the next deal cannot be written: its batch's commit fails
        cur.execute("CREATE FUNCTION refuse_deal() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full, say'; END $$")
        cur.execute("CREATE TRIGGER refuse_deal BEFORE INSERT ON trading_deal FOR EACH ROW "
                    "EXECUTE FUNCTION refuse_deal()")
    try:
        with pytest.raises(MatcherUnavailable):
            c.place_limit(bob.id, "ETH_USDT", "sell", "2000.00", "1")
        assert matcher.proc.wait(30) == 3  # it stops rather than run ahead of the database
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP TRIGGER refuse_deal ON trading_deal")
            cur.execute("DROP FUNCTION refuse_deal()")
    assert tables_state() == committed
    matcher.start()
    assert normalize(matcher.client.dump_state()) == committed
    assert matcher.client.place_limit(bob.id, "ETH_USDT", "sell", "2000.00", "1")["status"] == "filled"
