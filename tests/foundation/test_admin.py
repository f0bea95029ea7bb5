"""Every admin page renders for an operator and is refused to anyone without staff rights."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from matcher.models import DepthOutbox, EventOutbox
from trading.models import Balance, BalanceHistory, Deal, Operation, Order

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def one_of_each(alice, bob, eth_usdt):
    """Rows in the matcher-owned tables, written here directly as the matcher's persister would."""
    m = eth_usdt
    maker = Order.objects.create(id=1, user=alice, market=m, side="sell", type="limit", price=Decimal("2000"),
                                 amount=Decimal("1"), status="open", created_at=NOW, updated_at=NOW)
    taker = Order.objects.create(id=2, user=bob, market=m, side="buy", type="limit", price=Decimal("2000"),
                                 amount=Decimal("0.5"), status="filled", created_at=NOW, updated_at=NOW)
    Deal.objects.create(id=1, market=m, price=Decimal("2000"), amount=Decimal("0.5"), quote_amount=Decimal("1000"),
                        maker_order=maker, taker_order=taker, maker_user=alice, taker_user=bob,
                        maker_fee=Decimal("1"), taker_fee=Decimal("0.001"), taker_side="buy", time=NOW)
    Balance.objects.create(user=alice, asset=m.base, available=Decimal("1"), frozen=Decimal("0"), updated_at=NOW)
    BalanceHistory.objects.create(user=alice, asset=m.base, business="deposit", business_id="0xab:0",
                                  change=Decimal("1"), balance=Decimal("1"), seq=1, time=NOW)
    Operation.objects.create(seq=1, time=NOW, method="update_balance", params={"user": alice.id})
    EventOutbox.objects.create(seq=1, last_seq=1, payload='balances\t1\t{"v": 1}', created_at=NOW)
    DepthOutbox.objects.create(market=m.name, depth_seq=1, payload={"v": 1}, created_at=NOW)


def registered_models():
    return [model for model in admin.site._registry]


@pytest.mark.parametrize("model", registered_models(), ids=lambda m: m._meta.label)
def test_changelist_and_change_page_render_for_operator(client, operator, one_of_each, model):
    client.force_login(operator)
    opts = model._meta
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    obj = model._default_manager.order_by("pk").first()
    if obj is None:  # e.g. beat tables without rows
        return
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200


@pytest.mark.parametrize("model", registered_models(), ids=lambda m: m._meta.label)
def test_admin_is_refused_to_non_staff(client, mallory, model):
    client.force_login(mallory)
    opts = model._meta
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("model", [Balance, Order, Deal, BalanceHistory, Operation, EventOutbox, DepthOutbox])
def test_matcher_owned_tables_are_read_only(client, operator, one_of_each, model):
    client.force_login(operator)
    opts = model._meta
    obj = model._default_manager.first()
    assert client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert b'name="_save"' not in change.content
    before = model._default_manager.count()
    delete = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert model._default_manager.count() == before
