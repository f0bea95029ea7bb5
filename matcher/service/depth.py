"""Depth diffs: per batch and market, the price levels whose total changed (contract C).

The tracker keeps what it last published for every level of every book; after
a batch it looks only at the levels the batch's order events touched (the
price of each limit order that traded, rested or was cancelled), reads their
total from the engine's book and publishes those that differ, "0" for a level
that is gone (exactly the string "0"). A client applying a ``client.depth()`` snapshot (seq N) and then
the diffs N+1, N+2, ... holds exactly the engine's book.
"""

from __future__ import annotations

from typing import Any

import orjson

from matcher.engine import Engine, OrderEvent, RawEvent
from matcher.engine.amounts import format_units
from matcher.engine.book import BUY, LIMIT


class DepthTracker:
    def __init__(self, engine: Engine, depth_seqs: dict[str, int]) -> None:
        self.engine = engine
        self.seqs = depth_seqs
        # market -> (asks {price: total}, bids {price: total}) as last published
        self.published: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        for name, m in engine.markets.items():
            self.add_market(name)
            asks, bids = self.published[name]
            for level in m.asks.levels.values():
                asks[level.price] = level.total
            for level in m.bids.levels.values():
                bids[level.price] = level.total

    def add_market(self, name: str) -> None:
        self.published.setdefault(name, ({}, {}))
        self.seqs.setdefault(name, 0)

    def diffs(self, events: list[RawEvent], last_seq: int, time_ms: int) -> list[tuple[str, int, str]]:
        """(market, depth_seq, Kafka message JSON) for every market whose book this batch changed."""
        touched: dict[str, set[tuple[bool, int]]] = {}
        for ev in events:
            if ev[0] is OrderEvent:
                o = ev[4]
                if o.type == LIMIT:
                    t = touched.get(o.market.name)
                    if t is None:
                        t = touched[o.market.name] = set()
                    t.add((o.side == BUY, o.price))
        out: list[tuple[str, int, str]] = []
        for name, levels in touched.items():
            m = self.engine.markets[name]
            pub_asks, pub_bids = self.published[name]
            asks: list[tuple[int, int]] = []
            bids: list[tuple[int, int]] = []
            for is_bid, price in levels:
                if is_bid:
                    level = m.bids.levels.get(-price)
                    pub, changed = pub_bids, bids
                else:
                    level = m.asks.levels.get(price)
                    pub, changed = pub_asks, asks
                total = level.total if level is not None else 0
                if pub.get(price, 0) != total:
                    changed.append((price, total))
                    if total:
                        pub[price] = total
                    else:
                        del pub[price]
            if not asks and not bids:
                continue
            asks.sort()
            bids.sort(reverse=True)
            seq = self.seqs[name] = self.seqs.get(name, 0) + 1
            pp, ap = m.price_prec, m.amount_prec
            data: dict[str, Any] = {
                "market": name,
                "depth_seq": seq,
                "asks": [[format_units(p, pp), format_units(a, ap) if a else "0"] for p, a in asks],
                "bids": [[format_units(p, pp), format_units(a, ap) if a else "0"] for p, a in bids],
            }
            msg = {"v": 1, "type": "depth", "seq": last_seq, "time": time_ms, "data": data}
            out.append((name, seq, orjson.dumps(msg).decode()))
        return out
