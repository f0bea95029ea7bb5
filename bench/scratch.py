"""What the end-to-end benchmarks share: a scratch database with one market, percentiles, CPU time.

Each benchmark runs against the configured PostgreSQL (or the one
``cryptgo.devservices`` started) in a database of its own, created here and
dropped afterwards, so a run never touches the development data.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKET = "ETH_USDT"


def create_database(tag: str) -> tuple[str, str]:
    """Create ``cryptgo_<tag>_<pid>``, point Django at it, migrate; returns (admin URL, database name)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    import django
    import psycopg

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:54329/cryptgo")
    server, _ = base_url.rsplit("/", 1)
    dbname = f"cryptgo_{tag}_{os.getpid()}"
    admin_url = f"{server}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    os.environ["DATABASE_URL"] = f"{server}/{dbname}"
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return admin_url, dbname


def drop_database(admin_url: str, dbname: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def create_market() -> None:
    """ETH, USDT and the ETH_USDT market (2 price and 4 amount decimals); migrations made the fee account."""
    from markets.models import Asset, Market

    eth = Asset.objects.create(symbol="ETH", name="Ether", decimals=18)
    usdt = Asset.objects.create(symbol="USDT", name="Tether", decimals=6)
    Market.objects.create(name=MARKET, base=eth, quote=usdt, price_precision=2, amount_precision=4,
                          min_amount="0.001", min_notional="1", maker_fee="0.001", taker_fee="0.002")


def create_users(n: int, prefix: str) -> list[int]:
    """``n`` users ``<prefix><i>@example.com`` with unusable passwords; returns their ids."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.bulk_create([User(email=f"{prefix}{i}@example.com", password="!") for i in range(n)])
    return list(User.objects.filter(email__startswith=prefix).values_list("id", flat=True))


def clear_market_data(redis_url: str) -> int:
    """Delete the market's data in Redis: a scratch database starts its deal ids and depth seqs again at 1,
    which run_marketdata (idempotent by those numbers) would otherwise skip as already folded."""
    import redis

    from markets.marketdata import key

    r = redis.Redis.from_url(redis_url)
    stale = list(r.scan_iter(key(MARKET, "*"), count=1000))
    if stale:
        r.delete(*stale)
    return len(stale)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank); NaN when there is nothing to rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (from /proc; gone processes count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (uvicorn's workers), from /proc."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
