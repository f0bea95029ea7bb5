"""The Ethereum JSON-RPC client (web3.py) and what the wallets read from a node.

One client per process, built from ``ETH_RPC_URL``; tests install an
in-process EVM (eth-tester) or an Anvil node with ``use_web3``. Everything that
talks to the node lives here, so services stay readable and every call is a
plain function of block numbers and addresses.

Ether that reaches an address through a contract's CALL (an "internal
transfer") appears in no transaction's ``to``/``value``: only block tracing
shows it. The client uses ``debug_traceBlockByNumber`` with the ``callTracer``
(geth, Anvil, Reth, Nethermind), else ``trace_block`` (Erigon, Nethermind,
Anvil), else falls back to top-level transfers only and says so in the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from eth_utils import to_checksum_address

if TYPE_CHECKING:
    from web3 import Web3

# web3 is imported where it is used, not here: the admin imports this module, so every Django
# process (the matcher, the web workers, each management command) would otherwise pay web3's
# second of import time at start-up for a chain it never talks to.

log = logging.getLogger(__name__)

#: keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts" / "build"
ERC20_TRANSFER_SELECTOR = "0xa9059cbb"


@lru_cache(maxsize=8)
def artifact(name: str) -> dict[str, Any]:
    """A compiled contract (abi, bytecode) committed under contracts/build/."""
    with open(CONTRACTS_DIR / f"{name}.json") as f:
        data: dict[str, Any] = json.load(f)
    return data


@dataclass(frozen=True)
class NativeTransfer:
    """Ether moved to ``to`` inside ``tx_hash``; ``index`` is -1 for the transaction's own value."""

    tx_hash: str
    index: int
    sender: str
    to: str
    value: int
    needs_receipt: bool  # True when found without tracing: the transaction may have reverted


@dataclass(frozen=True)
class TokenTransfer:
    token: str
    tx_hash: str
    log_index: int
    sender: str
    to: str
    value: int
    block_number: int
    block_hash: str


class ChainClient:
    """Thin, typed helpers over a ``Web3`` instance."""

    def __init__(self, w3: Web3, tracing: str = "auto") -> None:
        self.w3 = w3
        self.tracing = tracing  # auto | debug | trace | off; "auto" settles on the first block traced
        self._chain_id: int | None = None

    # ---------------------------------------------------------------- reads

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block(self, number: int, full: bool = False) -> dict[str, Any] | None:
        try:
            return dict(self.w3.eth.get_block(number, full_transactions=full))
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    def block_hash(self, number: int) -> str | None:
        block = self.block(number)
        return _hex(block["hash"]) if block else None

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def token_balance(self, token: str, address: str) -> int:
        contract = self.w3.eth.contract(address=to_checksum_address(token), abi=artifact("CGToken")["abi"])
        return int(contract.functions.balanceOf(to_checksum_address(address)).call())

    def gas_price(self) -> int:
        return int(self.w3.eth.gas_price)

    def pending_nonce(self, address: str) -> int:
        return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    def has_code(self, address: str) -> bool:
        return len(self.w3.eth.get_code(to_checksum_address(address))) > 0

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        from web3.exceptions import TransactionNotFound

        try:
            return dict(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    # ---------------------------------------------------------------- writes

    def send_raw(self, raw: str) -> str:
        """Broadcast a signed transaction; a node that already has it counts as success."""
        from web3 import Web3
        from web3.exceptions import Web3RPCError

        try:
            return _hex(self.w3.eth.send_raw_transaction(raw))
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text or "known transaction" in text:
                return _hex(Web3.keccak(hexstr=raw))
            raise

    # ---------------------------------------------------------------- scanning

    def native_transfers(self, block: dict[str, Any]) -> list[NativeTransfer]:
        """Every ether movement in ``block`` with a positive value (callers keep those to our addresses)."""
        number = int(block["number"])
        txs = list(block["transactions"])
        if not txs:
            return []
        mode = self.tracing
        if mode in ("auto", "debug"):
            traced = self._debug_trace(number, txs)
            if traced is not None:
                self.tracing = "debug"
                return traced
            if mode == "debug":
                raise RuntimeError("debug_traceBlockByNumber is not available on this node (WALLET_TRACING=debug)")
        if mode in ("auto", "trace"):
            traced = self._parity_trace(number)
            if traced is not None:
                self.tracing = "trace"
                return traced
            if mode == "trace":
                raise RuntimeError("trace_block is not available on this node (WALLET_TRACING=trace)")
        if mode == "auto":
            log.warning("node offers no block tracing: ether sent to deposit addresses by contracts "
                        "will not be seen (see README, node features)")
            self.tracing = "off"
        return [NativeTransfer(_hex(tx["hash"]), -1, _addr(tx["from"]), _addr(tx["to"]), int(tx["value"]), True)
                for tx in txs if tx.get("to") and int(tx["value"]) > 0]

    def _debug_trace(self, number: int, txs: list[Any]) -> list[NativeTransfer] | None:
        result = self._rpc("debug_traceBlockByNumber", [hex(number), {"tracer": "callTracer"}])
        if result is None:
            return None
        out: list[NativeTransfer] = []
        for pos, item in enumerate(result):
            frame = item.get("result", item)
            tx_hash = item.get("txHash") or _hex(txs[pos]["hash"])
            counter = [0]
            self._walk_call_frame(frame, tx_hash, counter, out)
        return out

    def _walk_call_frame(self, frame: dict[str, Any], tx_hash: str, counter: list[int],
                         out: list[NativeTransfer]) -> None:
        # Depth-first pre-order: frame k of a transaction gets index -(k+1). A frame with an error
        # reverted together with everything under it; its numbers are still consumed so that the
        # numbering of the other frames does not depend on which ones failed.
        stack: list[tuple[dict[str, Any], bool]] = [(frame, False)]
        while stack:
            node, reverted = stack.pop()
            k = counter[0]
            counter[0] += 1
            reverted = reverted or bool(node.get("error"))
            kind = str(node.get("type", "CALL")).upper()
            raw = node.get("value") or 0
            value = int(raw, 16) if isinstance(raw, str) else int(raw)
            if not reverted and value > 0 and kind in ("CALL", "SELFDESTRUCT") and node.get("to"):
                out.append(NativeTransfer(_hex(tx_hash), -(k + 1), _addr(node["from"]), _addr(node["to"]), value,
                                          False))
            for child in reversed(node.get("calls") or []):
                stack.append((child, reverted))

    def _parity_trace(self, number: int) -> list[NativeTransfer] | None:
        result = self._rpc("trace_block", [hex(number)])
        if result is None:
            return None
        out: list[NativeTransfer] = []
        position: dict[str, int] = {}
        failed: dict[str, list[tuple[int, ...]]] = {}
        for trace in result:
            tx_hash = trace.get("transactionHash")
            if not tx_hash:
                continue  # block and uncle rewards
            k = position.get(tx_hash, 0)
            position[tx_hash] = k + 1
            address = tuple(trace.get("traceAddress") or [])
            bad = failed.setdefault(tx_hash, [])
            if trace.get("error"):
                bad.append(address)
            if any(address[: len(p)] == p for p in bad):
                continue
            action = trace.get("action") or {}
            kind = trace.get("type")
            if kind == "call" and action.get("callType", "call") == "call":
                sender, to, value = action.get("from"), action.get("to"), int(action.get("value") or "0x0", 16)
            elif kind == "suicide":
                sender, to = action.get("address"), action.get("refundAddress")
                value = int(action.get("balance") or "0x0", 16)
            else:
                continue
            if value > 0 and to:
                out.append(NativeTransfer(_hex(tx_hash), -(k + 1), _addr(sender), _addr(to), value, False))
        return out

    def _rpc(self, method: str, params: list[Any]) -> Any:
        """Call a tracing method; None when the node does not offer it."""
        from web3.exceptions import Web3RPCError

        try:
            response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        except (NotImplementedError, ValueError) as exc:
            log.info("%s unavailable: %s", method, exc)
            return None
        except Web3RPCError as exc:
            log.info("%s unavailable: %s", method, exc)
            return None
        if "error" in response:
            log.info("%s unavailable: %s", method, response["error"])
            return None
        return response.get("result")

    def token_transfers(self, from_block: int, to_block: int, tokens: Iterable[str]) -> list[TokenTransfer]:
        tokens = [to_checksum_address(t) for t in tokens]
        if not tokens:
            return []
        logs = self.w3.eth.get_logs({"fromBlock": from_block, "toBlock": to_block, "address": tokens,
                                     "topics": [TRANSFER_TOPIC]})
        out: list[TokenTransfer] = []
        for entry in logs:
            topics = entry["topics"]
            if entry.get("removed") or len(topics) != 3:
                continue  # not the standard indexed Transfer(address,address,uint256)
            data = bytes(entry["data"])
            if len(data) != 32:
                continue
            out.append(TokenTransfer(
                token=_addr(entry["address"]), tx_hash=_hex(entry["transactionHash"]),
                log_index=int(entry["logIndex"]), sender=_addr("0x" + bytes(topics[1])[-20:].hex()),
                to=_addr("0x" + bytes(topics[2])[-20:].hex()), value=int.from_bytes(data, "big"),
                block_number=int(entry["blockNumber"]), block_hash=_hex(entry["blockHash"]),
            ))
        return out

    def erc20_transfer_data(self, to: str, value: int) -> str:
        return ERC20_TRANSFER_SELECTOR + to_checksum_address(to)[2:].lower().rjust(64, "0") + f"{value:064x}"


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _addr(value: Any) -> str:
    return str(to_checksum_address(value))


def _is_not_found(exc: Exception) -> bool:
    from web3.exceptions import BlockNotFound

    return isinstance(exc, BlockNotFound)


_client: ChainClient | None = None


def get_chain() -> ChainClient:
    """The process-wide client for ``ETH_RPC_URL`` (or whatever ``use_web3`` installed)."""
    global _client
    if _client is None:
        from web3 import Web3
        from web3.middleware import ExtraDataToPOAMiddleware

        w3 = Web3(Web3.HTTPProvider(settings.ETH_RPC_URL, request_kwargs={"timeout": settings.ETH_RPC_TIMEOUT}))
        if settings.ETH_POA:
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        _client = ChainClient(w3, settings.WALLET_TRACING)
    return _client


def use_web3(w3: Web3 | None, tracing: str | None = None) -> ChainClient | None:
    """Point the process at another node (tests: eth-tester or Anvil); None goes back to settings."""
    global _client
    _client = ChainClient(w3, tracing or settings.WALLET_TRACING) if w3 is not None else None
    return _client
