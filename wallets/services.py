"""Wallet write paths: deposit addresses, block scanning, crediting, sweeping, withdrawals.

Every balance change goes through the matcher client with a business id that
makes it idempotent: ("deposit", "<txhash>:<logindex>"), ("withdraw", "<id>")
and ("withdraw_refund", "<id>"). A row's state moves only by a conditional
UPDATE (``wallets.locks``), so two Celery workers never do the same step, and a
step that dies half-way is finished by the next run. Chain calls never hold a
database transaction open; a transaction that takes a nonce also stores the
signed transaction that uses it, and broadcasting happens after commit.
"""

from __future__ import annotations

import decimal
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from cryptgo.api.errors import ApiError, Conflict, NotFound, ServiceUnavailable
from cryptgo.api.fields import format_decimal
from markets.models import Asset, Chain
from matcher.engine.amounts import AmountError, format_units, parse_units
from wallets import hd, locks
from wallets.chain import ChainClient, get_chain
from wallets.models import (
    SWEEP_ACTIVE,
    WITHDRAWAL_REFUNDABLE,
    AssetPolicy,
    Deposit,
    DepositAddress,
    DepositStatus,
    ScanCursor,
    ScannedBlock,
    Sweep,
    SweepStatus,
    Withdrawal,
    WithdrawalEvent,
    WithdrawalStatus,
)

if TYPE_CHECKING:
    from wallets.signer import Signer


def get_signer() -> Signer:
    """The configured signer, imported on first use: eth-account costs most of a second of import
    time, which the web tier and the matcher (they load this module through the admin) never need."""
    from wallets import signer

    return signer.get_signer()


log = logging.getLogger(__name__)
CHAIN = Chain.ETHEREUM
NATIVE_GAS = 21_000
#: NUMERIC(78, 18) arithmetic needs more than the default 28 digits.
WIDE = decimal.Context(prec=100)


# ====================================================================== helpers


def to_units(amount: Decimal, decimals: int) -> int:
    return parse_units(amount, decimals, allow_zero=True)


def from_units(units: int, decimals: int) -> Decimal:
    return Decimal(format_units(units, decimals))


def amount_str(amount: Decimal, decimals: int) -> str:
    return format_units(to_units(amount, decimals), decimals)


def native_asset() -> Asset | None:
    return Asset.objects.filter(symbol=settings.WALLET_NATIVE_ASSET, chain=CHAIN).first()


def token_assets() -> list[Asset]:
    return list(Asset.objects.filter(chain=CHAIN).exclude(contract_address=""))


def policy_for(asset: Asset) -> AssetPolicy:
    """The asset's wallet policy; an unsaved default (no limits, threshold = minimum deposit) if none."""
    try:
        return asset.wallet_policy
    except AssetPolicy.DoesNotExist:
        return AssetPolicy(asset=asset, sweep_threshold=asset.min_deposit)


def _matcher_update(user_id: int, asset: str, business: str, business_id: str, change: str,
                    detail: dict[str, Any] | None = None) -> None:
    """Apply a balance change; a repeat of one already applied counts as done (the matcher deduplicates)."""
    from matcher.client import MatcherRejected, get_client

    try:
        get_client().update_balance(user_id, asset, business, business_id, change, detail)
    except MatcherRejected as exc:
        if exc.reason == "repeated_update":
            return
        raise


# ====================================================================== deposit addresses


def _xpub() -> str:
    """The configured xpub, or a 503 the API renders (a deployment without wallets is not a client error)."""
    if not settings.HOT_WALLET_XPUB:
        raise ServiceUnavailable("wallet_not_configured", "Deposits and withdrawals are not configured here.")
    return hd.configured_xpub()


def deposit_address_for(user: Any, chain: str = CHAIN) -> DepositAddress:
    """The user's deposit address, created on first use. Index = user id (docs/wallets.md)."""
    if user.pk is None or user.pk < 1:
        raise ApiError("no_deposit_address", "This account cannot receive deposits.")
    existing = DepositAddress.objects.filter(user=user, chain=chain).first()
    if existing:
        return existing
    address = hd.address_at(int(user.pk), _xpub())
    try:
        with transaction.atomic():
            return DepositAddress.objects.create(user=user, chain=chain, index=int(user.pk), address=address)
    except IntegrityError:
        return DepositAddress.objects.get(user=user, chain=chain)


# ====================================================================== scanning


@dataclass
class ScanResult:
    scanned: int = 0
    deposits: int = 0
    reorgs: int = 0
    head: int = 0
    cursor: int = 0
    busy: bool = False
    halted: str = ""


class ScanHalted(RuntimeError):
    """The chain moved in a way the scanner will not repair on its own (an operator must look)."""


def _ensure_cursor(client: ChainClient) -> ScanCursor:
    cursor = ScanCursor.objects.filter(chain=CHAIN).first()
    if cursor:
        return cursor
    start_setting = str(settings.WALLET_START_BLOCK).strip().lower()
    start = client.head() if start_setting in ("", "latest") else int(start_setting)
    last = start - 1
    last_hash = client.block_hash(last) if last >= 0 else ""
    genesis = client.block_hash(0) or ""
    with transaction.atomic():
        cursor, created = ScanCursor.objects.get_or_create(
            chain=CHAIN, defaults={"block_number": last, "block_hash": last_hash or "", "genesis_hash": genesis})
        if created and last_hash:
            # The starting block is the first common ancestor a reorg can rewind to.
            ScannedBlock.objects.get_or_create(chain=CHAIN, number=last,
                                               defaults={"hash": last_hash, "parent_hash": ""})
    return cursor


def scan_blocks(max_blocks: int | None = None) -> ScanResult:
    """Scan blocks after the cursor for deposits; rewind over a reorg. One scanner at a time (a lease)."""
    client = get_chain()
    cursor = _ensure_cursor(client)
    token = locks.claim_cursor(CHAIN)
    result = ScanResult()
    if token is None:
        result.busy = True
        return result
    try:
        _scan(client, token, max_blocks or settings.WALLET_SCAN_BATCH, result)
    except ScanHalted as exc:
        result.halted = str(exc)
        log.error("block scanner halted: %s", exc)
    finally:
        locks.release_cursor(CHAIN, token)
    cursor.refresh_from_db()
    result.cursor = cursor.block_number
    return result


def _scan(client: ChainClient, token: str, budget: int, result: ScanResult) -> None:
    result.head = head = client.head()
    native = native_asset()
    tokens = {to_checksum_address(a.contract_address): a for a in token_assets()}
    hot = hd.hot_wallet_address()
    steps = 0
    while steps < budget:  # bounded: at most `budget` blocks and reorg steps per run
        cursor = ScanCursor.objects.get(chain=CHAIN)
        number = cursor.block_number + 1
        if number > head:
            return
        steps += 1
        block = client.block(number, full=True)
        if block is None:
            return  # the node's head moved back under us; the next run sees the reorg
        if cursor.block_hash and _h(block["parentHash"]) != cursor.block_hash:
            _rewind(client, cursor, token)
            result.reorgs += 1
            continue
        found = _block_deposits(client, block, native, tokens, hot)
        with transaction.atomic():
            result.deposits += _record_deposits(found)
            ScannedBlock.objects.update_or_create(
                chain=CHAIN, number=number,
                defaults={"hash": _h(block["hash"]), "parent_hash": _h(block["parentHash"])})
            moved = ScanCursor.objects.filter(chain=CHAIN, lease_owner=token, block_number=number - 1).update(
                block_number=number, block_hash=_h(block["hash"]), updated_at=timezone.now())
            if moved != 1:
                raise ScanHalted("lost the scanner lease mid-run")
        result.scanned += 1
    ScannedBlock.objects.filter(chain=CHAIN, number__lt=head - 4 * settings.WALLET_REORG_DEPTH).delete()


def _rewind(client: ChainClient, cursor: ScanCursor, token: str) -> None:
    """Walk back to the newest block we scanned that is still canonical; orphan what came after."""
    floor = max(cursor.block_number - settings.WALLET_REORG_DEPTH, -1)
    ancestor: ScannedBlock | None = None
    for stored in ScannedBlock.objects.filter(chain=CHAIN, number__lte=cursor.block_number,
                                              number__gt=floor).order_by("-number"):
        if client.block_hash(stored.number) == stored.hash:
            ancestor = stored
            break
    if ancestor is None:
        raise ScanHalted(f"reorg deeper than WALLET_REORG_DEPTH={settings.WALLET_REORG_DEPTH} below block "
                         f"{cursor.block_number}, or the chain was reset: scanning stopped")
    with transaction.atomic():
        orphaned = _orphan_above(ancestor.number)
        ScannedBlock.objects.filter(chain=CHAIN, number__gt=ancestor.number).delete()
        ScanCursor.objects.filter(chain=CHAIN, lease_owner=token).update(
            block_number=ancestor.number, block_hash=ancestor.hash, updated_at=timezone.now())
    log.warning("reorg: rewound the scanner from block %s to %s; %s deposits orphaned",
                cursor.block_number, ancestor.number, orphaned)


def _orphan_above(number: int) -> int:
    """Deposits in blocks above ``number``: uncredited ones are orphaned, credited ones flagged."""
    orphaned = Deposit.objects.filter(
        block_number__gt=number, status__in=[DepositStatus.PENDING, DepositStatus.BELOW_MINIMUM]
    ).update(status=DepositStatus.ORPHANED, updated_at=timezone.now())
    # A deposit already claimed for crediting (confirmed) may be mid-call to the matcher: flag, don't orphan.
    flagged = Deposit.objects.filter(block_number__gt=number,
                                     status__in=[DepositStatus.CONFIRMED, DepositStatus.CREDITED],
                                     reorged_after_credit=False).update(reorged_after_credit=True)
    if flagged:
        log.error("reorg removed the blocks of %s deposits that were already credited or being credited: "
                  "flagged for operators", flagged)
    return orphaned


@dataclass
class _Found:
    asset: Asset
    address: DepositAddress
    tx_hash: str
    log_index: int
    sender: str
    value: int
    block_number: int
    block_hash: str


def _block_deposits(client: ChainClient, block: dict[str, Any], native: Asset | None,
                    tokens: dict[str, Asset], hot: str) -> list[_Found]:
    number, block_hash = int(block["number"]), _h(block["hash"])
    candidates: list[tuple[Asset, str, str, int, str, int, bool]] = []
    if native is not None:
        for t in client.native_transfers(block):
            candidates.append((native, t.to, t.tx_hash, t.index, t.sender, t.value, t.needs_receipt))
    if tokens:
        for t in client.token_transfers(number, number, list(tokens)):
            if t.block_hash != block_hash:
                raise ScanHalted(f"block {number} changed while it was being scanned; retrying next run")
            candidates.append((tokens[t.token], t.to, t.tx_hash, t.log_index, t.sender, t.value, False))
    if not candidates:
        return []
    ours = {a.address: a for a in DepositAddress.objects.filter(chain=CHAIN,
                                                                address__in={c[1] for c in candidates})}
    internal = set(ours) | {hot}
    found: list[_Found] = []
    receipts: dict[str, bool] = {}
    for asset, to, tx_hash, index, sender, value, needs_receipt in candidates:
        if to not in ours or sender in internal:
            continue  # not ours, or our own money moving (a gas top-up from the hot wallet)
        if needs_receipt:
            if tx_hash not in receipts:
                receipt = client.receipt(tx_hash)
                receipts[tx_hash] = bool(receipt and int(receipt["status"]) == 1)
            if not receipts[tx_hash]:
                continue
        found.append(_Found(asset, ours[to], tx_hash, index, sender, value, number, block_hash))
    return found


def _record_deposits(found: list[_Found]) -> int:
    created = 0
    for f in found:
        amount = from_units(f.value, f.asset.decimals)
        status = DepositStatus.BELOW_MINIMUM if amount < f.asset.min_deposit else DepositStatus.PENDING
        existing = Deposit.objects.filter(tx_hash=f.tx_hash, log_index=f.log_index).first()
        if existing is None:
            Deposit.objects.create(user_id=f.address.user_id, asset=f.asset, address=f.address, tx_hash=f.tx_hash,
                                   log_index=f.log_index, block_number=f.block_number, block_hash=f.block_hash,
                                   from_address=f.sender, amount=amount, status=status)
            created += 1
        elif existing.status == DepositStatus.ORPHANED:
            # The same transfer was mined again in the new branch: it is real once more.
            Deposit.objects.filter(pk=existing.pk, status=DepositStatus.ORPHANED).update(
                status=status, block_number=f.block_number, block_hash=f.block_hash, confirmations=0,
                updated_at=timezone.now())
        elif existing.block_hash != f.block_hash and existing.reorged_after_credit:
            log.warning("deposit %s reappeared in block %s after a reorg", existing.business_id, f.block_number)
    return created


def _h(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return "0x" + bytes(value).hex()


# ====================================================================== confirmations and crediting


@dataclass
class ConfirmResult:
    confirmed: int = 0
    credited: int = 0
    orphaned: int = 0
    flagged: int = 0
    errors: list[str] = field(default_factory=list)


def deposits_confirm(limit: int = 500) -> ConfirmResult:
    """Count confirmations, orphan deposits whose block left the chain, credit the confirmed ones."""
    client = get_chain()
    head = client.head()
    result = ConfirmResult()
    hashes: dict[int, str | None] = {}

    def canonical(number: int) -> str | None:
        if number not in hashes:
            hashes[number] = client.block_hash(number)
        return hashes[number]

    pending = Deposit.objects.filter(status=DepositStatus.PENDING).select_related("asset").order_by("id")[:limit]
    for d in pending:
        if canonical(d.block_number) != d.block_hash:
            if locks.claim_deposit(d.pk, DepositStatus.PENDING, DepositStatus.ORPHANED):
                result.orphaned += 1
            continue
        confirmations = max(head - d.block_number + 1, 0)
        if confirmations >= d.asset.deposit_confirmations:
            if locks.claim_deposit(d.pk, DepositStatus.PENDING, DepositStatus.CONFIRMED,
                                   confirmations=confirmations):
                result.confirmed += 1
        elif confirmations != d.confirmations:
            Deposit.objects.filter(pk=d.pk, status=DepositStatus.PENDING).update(confirmations=confirmations)

    for d in Deposit.objects.filter(status=DepositStatus.CONFIRMED).select_related("asset").order_by("id")[:limit]:
        if d.reorged_after_credit:
            continue  # its block vanished while it was being credited: operators decide
        try:
            deposit_credit(d)
            result.credited += 1
        except Exception as exc:  # the matcher is down or refused: retried next run
            result.errors.append(f"{d.business_id}: {exc}")
            log.warning("crediting deposit %s failed: %s", d.business_id, exc)

    # Credited deposits still shallow enough to be reorged: flag any whose block vanished.
    watch = head - settings.WALLET_REORG_DEPTH
    for d in Deposit.objects.filter(status=DepositStatus.CREDITED, reorged_after_credit=False,
                                    block_number__gt=watch).order_by("id")[:limit]:
        if canonical(d.block_number) != d.block_hash:
            Deposit.objects.filter(pk=d.pk).update(reorged_after_credit=True)
            result.flagged += 1
            log.error("credited deposit %s is no longer in the canonical chain: flagged", d.business_id)
    return result


def deposit_credit(deposit: Deposit) -> None:
    """Credit a confirmed deposit through the matcher, exactly once (business id = txhash:logindex)."""
    asset = deposit.asset
    _matcher_update(deposit.user_id, asset.symbol, "deposit", deposit.business_id,
                    amount_str(deposit.amount, asset.decimals),
                    {"tx_hash": deposit.tx_hash, "log_index": deposit.log_index, "block": deposit.block_number})
    locks.claim_deposit(deposit.pk, DepositStatus.CONFIRMED, DepositStatus.CREDITED, credited_at=timezone.now())


# ====================================================================== sweeping


@dataclass
class SweepResult:
    planned: list[int] = field(default_factory=list)
    advanced: int = 0
    confirmed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def sweeps_plan() -> list[Sweep]:
    """Create a sweep for each deposit address holding at least the asset's threshold (on chain)."""
    client = get_chain()
    planned: list[Sweep] = []
    gas_price = client.gas_price()
    for asset in [a for a in [native_asset(), *token_assets()] if a is not None]:
        threshold = policy_for(asset).sweep_threshold
        is_native = not asset.contract_address
        addresses = DepositAddress.objects.filter(
            deposits__asset=asset, deposits__status=DepositStatus.CREDITED, deposits__sweep__isnull=True,
        ).exclude(sweeps__status__in=SWEEP_ACTIVE).distinct()
        for address in addresses:
            units = (client.balance(address.address) if is_native
                     else client.token_balance(asset.contract_address, address.address))
            if is_native:
                units -= NATIVE_GAS * gas_price  # what actually moves after paying for the sweep's own gas
            amount = from_units(max(units, 0), asset.decimals)
            if units <= 0 or amount < threshold:
                continue
            try:
                with transaction.atomic():
                    sweep = Sweep.objects.create(address=address, asset=asset, amount=amount,
                                                 gas_price=Decimal(gas_price))
                    Deposit.objects.filter(address=address, asset=asset, status=DepositStatus.CREDITED,
                                           sweep__isnull=True).update(sweep=sweep)
            except IntegrityError:
                continue  # another sweep of this address is in flight
            planned.append(sweep)
    return planned


def sweeps_advance(limit: int = 100) -> SweepResult:
    """Move every active sweep one step: top up gas, sign, broadcast, follow to confirmation."""
    result = SweepResult()
    for sweep in Sweep.objects.filter(status__in=SWEEP_ACTIVE).select_related("asset", "address").order_by("id")[
            :limit]:
        try:
            if _sweep_step(sweep, result):
                result.advanced += 1
        except Exception as exc:
            result.errors.append(f"sweep {sweep.pk}: {exc}")
            Sweep.objects.filter(pk=sweep.pk).update(error=str(exc)[:2000])
            log.warning("sweep %s: %s", sweep.pk, exc)
    return result


def _sweep_step(sweep: Sweep, result: SweepResult) -> bool:
    client = get_chain()
    signer = get_signer()
    asset = sweep.asset
    is_native = not asset.contract_address
    gas_price = int(sweep.gas_price or client.gas_price())
    address = sweep.address.address
    if sweep.status == SweepStatus.PENDING:
        if is_native:
            balance = client.balance(address)
            value = balance - NATIVE_GAS * gas_price
            if value <= 0:
                return _sweep_fail(sweep, SweepStatus.PENDING, "balance no longer covers the gas", result)
            tx = {"to": signer.hot_address, "value": value, "gas": NATIVE_GAS, "gasPrice": gas_price,
                  "chainId": client.chain_id, "data": b""}
            return _sweep_sign(sweep, SweepStatus.PENDING, tx, from_units(value, asset.decimals))
        need = settings.WALLET_TOKEN_GAS_LIMIT * gas_price - client.balance(address)
        if need > 0:
            return _sweep_topup(sweep, need, gas_price)
        return _sweep_sign_token(sweep, SweepStatus.PENDING, gas_price)
    if sweep.status == SweepStatus.GAS_SENT:
        receipt = client.receipt(sweep.gas_topup_tx_hash)
        if receipt is None:
            client.send_raw(sweep.gas_topup_raw_tx)  # dropped or never sent: the same bytes, same nonce
            return False
        if int(receipt["status"]) != 1:
            return _sweep_fail(sweep, SweepStatus.GAS_SENT, "gas top-up failed on chain", result)
        return _sweep_sign_token(sweep, SweepStatus.GAS_SENT, gas_price)
    if sweep.status == SweepStatus.SIGNED:
        client.send_raw(sweep.raw_tx)
        return locks.claim_sweep(sweep.pk, SweepStatus.SIGNED, SweepStatus.BROADCAST)
    if sweep.status == SweepStatus.BROADCAST:
        receipt = client.receipt(sweep.tx_hash)
        if receipt is None:
            client.send_raw(sweep.raw_tx)
            return False
        if int(receipt["status"]) != 1:
            return _sweep_fail(sweep, SweepStatus.BROADCAST, "sweep transaction reverted", result)
        confirmations = client.head() - int(receipt["blockNumber"]) + 1
        if confirmations < asset.deposit_confirmations:
            return False
        if locks.claim_sweep(sweep.pk, SweepStatus.BROADCAST, SweepStatus.CONFIRMED,
                             block_number=int(receipt["blockNumber"]), error=""):
            result.confirmed += 1
            return True
    return False


def _sweep_fail(sweep: Sweep, from_status: str, reason: str, result: SweepResult) -> bool:
    with transaction.atomic():
        if not locks.claim_sweep(sweep.pk, from_status, SweepStatus.FAILED, error=reason):
            return False
        # Its deposits go back to the pool so the next plan sweeps them again.
        Deposit.objects.filter(sweep=sweep).update(sweep=None)
    result.failed += 1
    return True


def _ensure_nonce(address: str) -> None:
    locks.nonce_ensure(CHAIN, address, get_chain().pending_nonce(address))


def _sweep_topup(sweep: Sweep, need: int, gas_price: int) -> bool:
    client, signer = get_chain(), get_signer()
    _ensure_nonce(signer.hot_address)
    with transaction.atomic():
        # Claim the row first: only the winner takes a nonce, so a lost race never burns one.
        if not locks.claim_sweep(sweep.pk, SweepStatus.PENDING, SweepStatus.GAS_SENT):
            return False
        nonce = locks.claim_nonce(CHAIN, signer.hot_address)
        signed = signer.sign(hd.HOT_WALLET_INDEX, {
            "to": sweep.address.address, "value": need, "gas": NATIVE_GAS, "gasPrice": gas_price,
            "chainId": client.chain_id, "nonce": nonce, "data": b""})
        Sweep.objects.filter(pk=sweep.pk).update(gas_topup_amount=from_units(need, 18),
                                                 gas_topup_tx_hash=signed.tx_hash, gas_topup_raw_tx=signed.raw)
    client.send_raw(signed.raw)
    return True


def _sweep_sign_token(sweep: Sweep, from_status: str, gas_price: int) -> bool:
    client, signer = get_chain(), get_signer()
    units = client.token_balance(sweep.asset.contract_address, sweep.address.address)
    if units <= 0:
        return _sweep_fail(sweep, from_status, "no token balance left to sweep", SweepResult())
    tx = {"to": to_checksum_address(sweep.asset.contract_address), "value": 0,
          "gas": settings.WALLET_TOKEN_GAS_LIMIT, "gasPrice": gas_price, "chainId": client.chain_id,
          "data": client.erc20_transfer_data(signer.hot_address, units)}
    return _sweep_sign(sweep, from_status, tx, from_units(units, sweep.asset.decimals))


def _sweep_sign(sweep: Sweep, from_status: str, tx: dict[str, Any], amount: Decimal) -> bool:
    client, signer = get_chain(), get_signer()
    address = sweep.address.address
    _ensure_nonce(address)
    with transaction.atomic():
        if not locks.claim_sweep(sweep.pk, from_status, SweepStatus.SIGNED):
            return False
        nonce = locks.claim_nonce(CHAIN, address)
        signed = signer.sign(sweep.address.index, {**tx, "nonce": nonce})
        Sweep.objects.filter(pk=sweep.pk).update(nonce=nonce, raw_tx=signed.raw, tx_hash=signed.tx_hash,
                                                 amount=amount)
    client.send_raw(signed.raw)
    locks.claim_sweep(sweep.pk, SweepStatus.SIGNED, SweepStatus.BROADCAST)
    return True


def sweep_run(rounds: int = 1) -> SweepResult:
    """Plan and advance sweeps; ``rounds`` > 1 repeats the advance (the ``sweep`` command's --wait)."""
    planned = sweeps_plan()
    total = SweepResult(planned=[s.pk for s in planned])
    for _ in range(max(rounds, 1)):
        step = sweeps_advance()
        total.advanced += step.advanced
        total.confirmed += step.confirmed
        total.failed += step.failed
        total.errors += step.errors
    return total


# ====================================================================== withdrawals


class WithdrawalRefused(ApiError):
    status = 400
    code = "withdrawal_refused"


def _event(w: Withdrawal | int, action: str, from_status: str, to_status: str, actor: Any = None,
           note: str = "") -> None:
    WithdrawalEvent.objects.create(withdrawal_id=w if isinstance(w, int) else w.pk, action=action,
                                   from_status=from_status, to_status=to_status,
                                   actor=actor if actor is not None and getattr(actor, "pk", None) else None,
                                   note=note)


def check_withdrawal_address(address: str) -> str:
    """A withdrawal destination must carry a valid EIP-55 checksum; we refuse rather than guess."""
    address = (address or "").strip()
    if not is_hex_address(address):
        raise WithdrawalRefused("invalid_address", "The address is not a 20-byte hex Ethereum address.")
    if not is_checksum_address(address):
        raise WithdrawalRefused("invalid_address_checksum",
                                "The address fails its EIP-55 checksum (mixed-case letters); copy it again.")
    if int(address, 16) == 0:
        raise WithdrawalRefused("invalid_address", "The zero address burns funds.")
    if address == hd.hot_wallet_address(_xpub()) or DepositAddress.objects.filter(address=address).exists():
        raise WithdrawalRefused("internal_address", "Withdrawals to an exchange address are not allowed.")
    return address


def withdrawal_request(*, user: Any, asset: str, address: str, amount: str, totp_code: str | None = None,
                       client_request_id: str | None = None) -> Withdrawal:
    """Validate, check two-factor, record, and debit amount + fee through the matcher.

    Every refusal happens before the debit, so a refused request changes nothing.
    A request with a ``client_request_id`` seen before returns the first withdrawal.
    """
    from accounts.services import totp_check

    if client_request_id:
        existing = Withdrawal.objects.filter(user=user, client_request_id=client_request_id).first()
        if existing:
            return existing
    asset_obj = Asset.objects.filter(symbol=asset, chain=CHAIN).first()
    if asset_obj is None:
        raise WithdrawalRefused("unknown_asset", f"Unknown asset {asset!r}.")
    if not asset_obj.withdrawal_enabled:
        raise WithdrawalRefused("withdrawals_disabled", f"Withdrawals of {asset} are disabled.")
    if asset_obj.symbol != settings.WALLET_NATIVE_ASSET and not asset_obj.contract_address:
        raise WithdrawalRefused("withdrawals_disabled", f"{asset} has no contract on this chain.")
    if not isinstance(amount, str):
        raise WithdrawalRefused("invalid_amount", "The amount must be a decimal string.")
    try:
        units = parse_units(amount, asset_obj.decimals)
    except AmountError as exc:
        code = "invalid_precision" if exc.reason == "invalid_precision" else "invalid_amount"
        raise WithdrawalRefused(code, f"Invalid amount: {exc}") from None
    value = from_units(units, asset_obj.decimals)
    destination = check_withdrawal_address(address)
    policy = policy_for(asset_obj)
    if value < asset_obj.min_withdrawal:
        limit = format_decimal(asset_obj.min_withdrawal)
        raise WithdrawalRefused("below_min_withdrawal", f"The minimum withdrawal is {limit}.",
                                {"min_withdrawal": limit})
    if policy.max_withdrawal is not None and value > policy.max_withdrawal:
        limit = format_decimal(policy.max_withdrawal)
        raise WithdrawalRefused("above_max_withdrawal", f"The maximum withdrawal is {limit}.",
                                {"max_withdrawal": limit})
    totp_check(user, totp_code)
    fee = asset_obj.withdrawal_fee
    total = WIDE.add(value, fee)
    with transaction.atomic():
        locks.lock_user(user.pk)
        if policy.daily_withdrawal_limit is not None:
            since = timezone.now() - timedelta(hours=24)
            used = Withdrawal.objects.filter(user=user, asset=asset_obj, created_at__gte=since).exclude(
                status__in=WITHDRAWAL_REFUNDABLE).aggregate(s=Sum("amount"))["s"] or Decimal(0)
            if WIDE.add(used, value) > policy.daily_withdrawal_limit:
                limit = format_decimal(policy.daily_withdrawal_limit)
                raise WithdrawalRefused("daily_limit_exceeded", f"This exceeds the daily limit of {limit}.",
                                        {"daily_limit": limit, "used": format_decimal(used)})
        try:
            with transaction.atomic():
                w = Withdrawal.objects.create(user=user, asset=asset_obj, address=destination, amount=value, fee=fee,
                                              status=WithdrawalStatus.PENDING_DEBIT,
                                              client_request_id=client_request_id or None)
        except IntegrityError:
            existing = Withdrawal.objects.filter(user=user, client_request_id=client_request_id).first()
            if existing:
                return existing
            raise
        _event(w, "request", "", WithdrawalStatus.PENDING_DEBIT, user)
    return _withdrawal_debit(w, total)


def _withdrawal_debit(w: Withdrawal, total: Decimal) -> Withdrawal:
    from matcher.client import MatcherRejected, MatcherUnavailable

    asset = w.asset
    try:
        _matcher_update(w.user_id, asset.symbol, "withdraw", w.business_id, "-" + amount_str(total, asset.decimals),
                        {"address": w.address})
    except MatcherRejected as exc:
        # Nothing was debited: the request never happened.
        Withdrawal.objects.filter(pk=w.pk, status=WithdrawalStatus.PENDING_DEBIT).delete()
        code = exc.reason if exc.reason in ("insufficient_balance", "invalid_precision") else "withdrawal_refused"
        raise WithdrawalRefused(code, f"The matcher refused the debit: {exc.reason}.") from None
    except MatcherUnavailable:
        # Unknown whether the debit landed: the row stays pending_debit and withdrawals_reconcile
        # repeats the same idempotent debit later.
        raise ServiceUnavailable(details={"withdrawal_id": w.pk, "status": WithdrawalStatus.PENDING_DEBIT}) from None
    with transaction.atomic():
        if locks.claim_withdrawal(w.pk, WithdrawalStatus.PENDING_DEBIT, WithdrawalStatus.REQUESTED, debited=True):
            _event(w, "debit", WithdrawalStatus.PENDING_DEBIT, WithdrawalStatus.REQUESTED)
    w.refresh_from_db()
    if w.status == WithdrawalStatus.REQUESTED and w.amount < policy_for(asset).auto_approve_below:
        _transition(w, WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED, "auto_approve", None,
                    approved_at=timezone.now())
        w.refresh_from_db()
    return w


def _transition(w: Withdrawal, from_status: list[str] | str, to_status: str, action: str, actor: Any,
                note: str = "", **fields: Any) -> bool:
    with transaction.atomic():
        current = Withdrawal.objects.filter(pk=w.pk).values_list("status", flat=True).first()
        if not locks.claim_withdrawal(w.pk, from_status, to_status, **fields):
            return False
        _event(w, action, current or "", to_status, actor, note)
    return True


def withdrawal_cancel(*, user: Any, withdrawal_id: int) -> Withdrawal:
    """The user withdraws a request not yet signed; the debit is refunded."""
    w = Withdrawal.objects.filter(user=user, pk=withdrawal_id).first()
    if w is None:
        raise NotFound("withdrawal_not_found", "No such withdrawal.")
    if not _transition(w, [WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED], WithdrawalStatus.CANCELLED,
                       "cancel", user):
        w.refresh_from_db()
        raise Conflict("withdrawal_not_cancellable", f"A withdrawal in state {w.status} cannot be cancelled.")
    _refund_quietly(w)
    w.refresh_from_db()
    return w


def withdrawal_approve(*, withdrawal_id: int, operator: Any) -> bool:
    w = Withdrawal.objects.get(pk=withdrawal_id)
    return _transition(w, WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED, "approve", operator,
                       approved_by=operator, approved_at=timezone.now())


def withdrawal_reject(*, withdrawal_id: int, operator: Any, note: str = "") -> bool:
    w = Withdrawal.objects.get(pk=withdrawal_id)
    if not _transition(w, [WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED], WithdrawalStatus.REJECTED,
                       "reject", operator, note):
        return False
    _refund_quietly(w)
    return True


def withdrawal_refund(w: Withdrawal) -> bool:
    """Give amount + fee back, exactly once: the matcher deduplicates ("withdraw_refund", id)."""
    w.refresh_from_db()
    if w.status not in WITHDRAWAL_REFUNDABLE or not w.debited or w.refunded_at is not None:
        return False
    total = WIDE.add(w.amount, w.fee)
    _matcher_update(w.user_id, w.asset.symbol, "withdraw_refund", w.business_id, amount_str(total, w.asset.decimals),
                    {"status": w.status})
    with transaction.atomic():
        if Withdrawal.objects.filter(pk=w.pk, refunded_at__isnull=True).update(refunded_at=timezone.now()) == 1:
            _event(w, "refund", w.status, w.status)
            return True
    return False


def _refund_quietly(w: Withdrawal) -> None:
    try:
        withdrawal_refund(w)
    except Exception as exc:  # the matcher is down: withdrawals_reconcile retries
        log.warning("refund of withdrawal %s deferred: %s", w.pk, exc)


@dataclass
class SendResult:
    signed: int = 0
    broadcast: int = 0
    confirmed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def withdrawals_send(limit: int = 50) -> SendResult:
    """Sign approved withdrawals with the hot wallet's managed nonce, then broadcast them."""
    result = SendResult()
    ids = list(Withdrawal.objects.filter(status=WithdrawalStatus.APPROVED).order_by("id")
               .values_list("pk", flat=True)[:limit])
    if not ids:
        return result
    client, signer = get_chain(), get_signer()
    hot = signer.hot_address
    _ensure_nonce(hot)
    gas_price = client.gas_price()
    held: dict[str, int] = {"": client.balance(hot)}  # what the hot wallet holds on chain, per token ("" = ether)
    for pk in ids:
        w = Withdrawal.objects.select_related("asset").get(pk=pk)
        tx = _withdrawal_tx(client, w, gas_price)
        token = w.asset.contract_address
        if token and token not in held:
            held[token] = client.token_balance(token, hot)
        short = ""
        with transaction.atomic():
            if not locks.claim_withdrawal(pk, WithdrawalStatus.APPROVED, WithdrawalStatus.SIGNED, from_address=hot):
                continue  # another worker took it, or the user cancelled it just now
            nonce = locks.claim_nonce(CHAIN, hot)
            # Under the nonce lock every other signer's withdrawals are committed: count them.
            short = _hot_shortfall(w, tx, held, gas_price)
            if short:
                transaction.set_rollback(True)  # neither the claim nor the nonce is kept
            else:
                signed = signer.sign(hd.HOT_WALLET_INDEX, {**tx, "nonce": nonce})
                Withdrawal.objects.filter(pk=pk).update(nonce=nonce, raw_tx=signed.raw, tx_hash=signed.tx_hash,
                                                        error="")
                _event(pk, "sign", WithdrawalStatus.APPROVED, WithdrawalStatus.SIGNED, note=f"nonce {nonce}")
        if short:
            # Stays approved: signing it now would take a nonce the node cannot mine, and every later
            # withdrawal would queue behind it. A sweep or an operator's top-up lets it go next run.
            Withdrawal.objects.filter(pk=pk, status=WithdrawalStatus.APPROVED).update(error=short)
            result.errors.append(f"withdrawal {pk}: {short}")
            log.warning("withdrawal %s waits: %s", pk, short)
            continue
        result.signed += 1
        if _broadcast(client, pk, signed.raw, result):
            result.broadcast += 1
    return result


def _hot_shortfall(w: Withdrawal, tx: dict[str, Any], held: dict[str, int], gas_price: int) -> str:
    """Why the hot wallet cannot pay ``tx`` after the withdrawals already signed and not yet confirmed, or "".

    ``held`` is the chain's balance read before the transaction. Signed withdrawals already
    mined are subtracted twice (once on chain, once here) until they are confirmed: that
    only makes a withdrawal wait a little longer, never lets one through that cannot be paid.
    """
    ether = int(tx["gas"]) * gas_price + int(tx["value"])
    tokens = to_units(w.amount, w.asset.decimals) if w.asset.contract_address else 0
    in_flight = (Withdrawal.objects.filter(status__in=[WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST])
                 .exclude(pk=w.pk).select_related("asset"))
    for other in in_flight:
        ether += settings.WALLET_TOKEN_GAS_LIMIT * gas_price  # the most any withdrawal's gas costs
        if not other.asset.contract_address:
            ether += to_units(other.amount, other.asset.decimals)
        elif other.asset.contract_address == w.asset.contract_address:
            tokens += to_units(other.amount, other.asset.decimals)
    if ether > held[""]:
        return f"hot wallet short of ether: needs {format_units(ether, 18)}, holds {format_units(held[''], 18)}"
    if w.asset.contract_address and tokens > held[w.asset.contract_address]:
        decimals = w.asset.decimals
        return (f"hot wallet short of {w.asset.symbol}: needs {format_units(tokens, decimals)}, "
                f"holds {format_units(held[w.asset.contract_address], decimals)}")
    return ""


def _withdrawal_tx(client: ChainClient, w: Withdrawal, gas_price: int) -> dict[str, Any]:
    asset = w.asset
    units = to_units(w.amount, asset.decimals)
    base = {"gasPrice": gas_price, "chainId": client.chain_id}
    if asset.contract_address:
        return {**base, "to": to_checksum_address(asset.contract_address), "value": 0,
                "gas": settings.WALLET_TOKEN_GAS_LIMIT, "data": client.erc20_transfer_data(w.address, units)}
    # Ether to a contract runs its code: give it room (a revert then fails on chain and is refunded).
    gas = settings.WALLET_TOKEN_GAS_LIMIT if client.has_code(w.address) else NATIVE_GAS
    return {**base, "to": w.address, "value": units, "gas": gas, "data": b""}


def _broadcast(client: ChainClient, pk: int, raw: str, result: SendResult) -> bool:
    try:
        client.send_raw(raw)
    except Exception as exc:
        # Stays signed: the same bytes (same nonce) are sent again by withdrawals_track; a nonce
        # is never re-signed for something else.
        Withdrawal.objects.filter(pk=pk).update(error=str(exc)[:2000])
        result.errors.append(f"withdrawal {pk}: {exc}")
        log.warning("broadcast of withdrawal %s failed: %s", pk, exc)
        return False
    with transaction.atomic():
        if locks.claim_withdrawal(pk, WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST, error=""):
            _event(pk, "broadcast", WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST)
    return True


def withdrawals_track(limit: int = 200) -> SendResult:
    """Rebroadcast signed ones, and follow broadcast ones to N confirmations or to failure (refunded)."""
    result = SendResult()
    rows = list(Withdrawal.objects.filter(status__in=[WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST])
                .select_related("asset").order_by("nonce")[:limit])
    if not rows:
        return result
    client = get_chain()
    head = client.head()
    for w in rows:
        receipt = client.receipt(w.tx_hash)
        if receipt is None:
            if _broadcast(client, w.pk, w.raw_tx, result) and w.status == WithdrawalStatus.SIGNED:
                result.broadcast += 1
            continue
        if w.status == WithdrawalStatus.SIGNED:
            _transition(w, WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST, "broadcast", None)
        block = int(receipt["blockNumber"])
        if head - block + 1 < w.asset.deposit_confirmations:
            continue
        if int(receipt["status"]) == 1:
            if _transition(w, [WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST], WithdrawalStatus.CONFIRMED,
                           "confirm", None, block_number=block):
                result.confirmed += 1
        elif _transition(w, [WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST], WithdrawalStatus.FAILED,
                         "fail", None, "transaction reverted on chain", block_number=block,
                         error="transaction reverted on chain"):
            result.failed += 1
            _refund_quietly(w)
    return result


def withdrawals_reconcile(limit: int = 200) -> dict[str, int]:
    """Finish what a crash or a matcher outage left: debits in doubt and refunds owed."""
    done = {"debited": 0, "dropped": 0, "refunded": 0}
    stale = timezone.now() - timedelta(seconds=30)
    for w in Withdrawal.objects.filter(status=WithdrawalStatus.PENDING_DEBIT, created_at__lt=stale).select_related(
            "asset")[:limit]:
        try:
            _withdrawal_debit(w, WIDE.add(w.amount, w.fee))
            done["debited"] += 1
        except WithdrawalRefused:
            done["dropped"] += 1
        except ApiError:
            pass
    owed = Withdrawal.objects.filter(Q(status__in=WITHDRAWAL_REFUNDABLE), debited=True, refunded_at__isnull=True)
    for w in owed.select_related("asset")[:limit]:
        try:
            if withdrawal_refund(w):
                done["refunded"] += 1
        except Exception as exc:
            log.warning("refund of withdrawal %s still pending: %s", w.pk, exc)
    return done
