"""Channel-layer group names and the messages sent to them: the one vocabulary of publishers and consumers.

Public groups are per market, private ones per user. Publishers
(``run_marketdata`` for depth, kline and ticker; ``run_stream_relay`` for
deals, orders and balances) send one message per group per batch; each
websocket consumer filters what its subscriptions want and renders the push.
Group names allow only ASCII letters, digits, ``-``, ``_`` and ``.``, which
market names (``ETH_USDT``) satisfy.
"""

from __future__ import annotations

from typing import Any

#: ``type`` of every message (Channels dispatches it to ``StreamConsumer.stream_push``).
PUSH = "stream.push"


def depth(market: str) -> str:
    return f"md.depth.{market}"


def kline(market: str) -> str:
    return f"md.kline.{market}"


def ticker(market: str) -> str:
    return f"md.ticker.{market}"


TICKER_ALL = "md.ticker._all"


def deals(market: str) -> str:
    return f"md.deals.{market}"


def user(user_id: int) -> str:
    return f"user.{int(user_id)}"


def message(kind: str, **fields: Any) -> dict[str, Any]:
    """A group message: ``kind`` is depth / kline / ticker / deals / order / asset."""
    return {"type": PUSH, "kind": kind, **fields}


async def close_layer(layer: Any) -> None:
    """Close a channel layer's connections from inside its event loop.

    The core layer has ``close_pools``; the pub/sub layer resolves every
    attribute per running loop, so even asking for one outside the loop
    fails, and it closes its connections with ``flush``.
    """
    close = getattr(layer, "close_pools", None) or getattr(layer, "flush", None)
    if close is not None:
        await close()
