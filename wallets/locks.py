"""Every row lock and row claim the wallets take, in one place and one global order.

Order (a transaction that needs several takes them top to bottom, never upwards):

1. the user row (``accounts.User``): serialises one user's withdrawal requests, so the
   daily limit holds under concurrency (``accounts.services.totp_check`` locks it too,
   in its own transaction, before ours);
2. the scan cursor (a lease, not a row lock: scanning does chain I/O and holds no transaction);
3. withdrawal rows, then sweep rows, then deposit rows, each by ascending id;
4. a nonce row, last and briefly: the claim and the signed transaction that uses it
   commit together, so a nonce is either used by a stored transaction or not taken.

Claims are conditional UPDATEs checked by rowcount (healthchecks' ``sendalerts``
pattern): two workers may race for the same row, exactly one sees rowcount 1 and
does the job. Nothing here does network I/O.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from wallets.models import Deposit, Nonce, ScanCursor, Sweep, Withdrawal


def lock_user(user_id: int) -> None:
    """Row-lock the user (level 1). Call inside ``transaction.atomic``."""
    assert connection.in_atomic_block, "lock_user needs a transaction"
    get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True).get()


def claim_cursor(chain: str, seconds: int = 300) -> str | None:
    """Take the scanner's lease on ``chain`` (level 2); returns the lease token, or None if another holds it."""
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = ScanCursor.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), chain=chain).update(
        lease_owner=token, lease_until=now + timedelta(seconds=seconds))
    return token if claimed == 1 else None


def release_cursor(chain: str, token: str) -> None:
    ScanCursor.objects.filter(chain=chain, lease_owner=token).update(lease_owner="", lease_until=None)


def claim_withdrawal(pk: int, from_status: list[str] | str, to_status: str, **fields: Any) -> bool:
    """Move a withdrawal from one of ``from_status`` to ``to_status`` (level 3); True if this caller won."""
    statuses = [from_status] if isinstance(from_status, str) else list(from_status)
    return Withdrawal.objects.filter(pk=pk, status__in=statuses).update(status=to_status, updated_at=timezone.now(),
                                                                        **fields) == 1


def claim_sweep(pk: int, from_status: str, to_status: str, **fields: Any) -> bool:
    return Sweep.objects.filter(pk=pk, status=from_status).update(status=to_status, updated_at=timezone.now(),
                                                                  **fields) == 1


def claim_deposit(pk: int, from_status: str, to_status: str, **fields: Any) -> bool:
    return Deposit.objects.filter(pk=pk, status=from_status).update(status=to_status, updated_at=timezone.now(),
                                                                    **fields) == 1


def claim_nonce(chain: str, address: str) -> int:
    """Take the next nonce of ``address`` (level 4, last). Call inside the transaction that stores its use.

    The UPDATE row-locks the nonce until that transaction ends, so a second worker
    waits and then gets the following number: never the same one twice.
    """
    assert connection.in_atomic_block, "claim_nonce must run in the transaction that records the signed tx"
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {Nonce._meta.db_table} SET next_nonce = next_nonce + 1, updated_at = %s "
            "WHERE chain = %s AND address = %s RETURNING next_nonce - 1",
            [timezone.now(), chain, address],
        )
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"no nonce row for {address}: call nonce_ensure first")
    return int(row[0])


def nonce_ensure(chain: str, address: str, chain_next: int) -> None:
    """Create the nonce row from the node's count, or raise it if the key was used elsewhere.

    ``chain_next`` is the node's pending transaction count, read by the caller outside any
    transaction. GREATEST never lowers our number: a nonce we claimed stays claimed.
    """
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {Nonce._meta.db_table} (chain, address, next_nonce, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (chain, address) DO UPDATE SET next_nonce = GREATEST("
            f"{Nonce._meta.db_table}.next_nonce, EXCLUDED.next_nonce)",
            [chain, address, chain_next, timezone.now()],
        )
