"""run_marketdata's work: fold the matcher's deals and depth diffs into Redis, then tell the websocket feed.

One ``MarketData`` per process. Per batch of Kafka messages and per market it
reads what it needs from Redis, computes with ``markets.aggregation``, writes
everything in one MULTI (so a reader never sees half a batch and a crash
never leaves one), and only then returns the pushes for the channel layer.
Offsets are committed after that, so delivery is at least once and each
step skips what Redis already holds:

* deals by deal id (``md:{M}:deal_id``): the engine numbers deals in order,
  and the deals table in PostgreSQL has the same ids, so ``--rebuild`` and
  the Kafka stream agree on where one stops and the other continues;
* depth diffs by ``depth_seq`` (``md:{M}:depth_seq``). A jump means a lost
  diff: the book is fetched again from the matcher (``client.depth``), as
  contract (C) says.

Depth pushes carry, for each merged view (interval x limit), the levels to
set and ``prev_seq``, the seq of that view's previous change. A subscriber
whose snapshot seq ``S`` satisfies ``prev_seq <= S < seq`` can apply the
update; otherwise it missed one. See docs/websocket.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import redis
from django.conf import settings

from markets import marketdata
from markets.aggregation import (
    DEPTH_LIMITS,
    DEPTH_MAX_LIMIT,
    EXACT,
    INTERVALS,
    TICKER_WINDOW_MS,
    Book,
    Kline,
    Level,
    Trade,
    bucket_start,
    fold_klines,
    levels_out,
    ticker,
    view_diff,
)
from markets.marketdata import HEARTBEAT_KEY, RECENT_DEALS, MarketSpec, depth_key, key, kline_key
from streaming import groups
from streaming.kafka import Event, consume_available, decode, make_consumer, topic

log = logging.getLogger(__name__)

#: Seconds between two attempts to fetch a market's book from the matcher after a gap.
RESYNC_BACKOFF_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 15


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Push:
    group: str
    message: dict[str, Any]


def matcher_depth(market: str) -> dict[str, Any]:
    """The whole book from the matcher, with its depth_seq (contract B)."""
    from matcher.client import get_client

    return get_client().depth(market, limit=settings.MARKETDATA_RESYNC_LEVELS)


@dataclass
class _DepthState:
    book: Book
    #: per merge interval, the top ``DEPTH_MAX_LIMIT`` levels at ``book.seq``
    views: dict[str, dict[str, list[Level]]] = field(default_factory=dict)
    #: per (interval, limit): the depth_seq at which that view last changed
    changed_at: dict[tuple[str, int], int] = field(default_factory=dict)


class MarketData:
    """Folds events into Redis. Not thread-safe: one consumer loop owns it."""

    def __init__(self, r: redis.Redis | None = None, *, clock: Callable[[], int] = now_ms,
                 resync: Callable[[str], dict[str, Any]] = matcher_depth, kline_keep: int | None = None) -> None:
        self.r = r if r is not None else marketdata.redis_client()
        self.clock = clock
        self.resync = resync
        self.kline_keep = kline_keep or settings.MARKETDATA_KLINE_KEEP
        self.specs: dict[str, MarketSpec] = {}
        self.depth: dict[str, _DepthState] = {}
        self._last_resync: dict[str, float] = {}
        self._pushed_tickers: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ batches

    def spec(self, market: object) -> MarketSpec | None:
        if not isinstance(market, str):
            return None
        if market not in self.specs:
            self.specs = marketdata.market_specs()
        return self.specs.get(market)

    def process(self, events: Iterable[Event]) -> list[Push]:
        """Fold one batch of events; returns the pushes to send once Redis holds the result."""
        deals: dict[str, list[Trade]] = defaultdict(list)
        diffs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ev in events:
            market = ev.data.get("market")
            if self.spec(market) is None:
                log.error("%s event seq %s for unknown market %r skipped", ev.type, ev.seq, market)
                continue
            assert isinstance(market, str)
            if ev.kind == "deals":
                try:
                    deals[market].append(Trade.from_event(ev.data))
                except (ValueError, KeyError) as exc:
                    log.error("malformed deal event seq %s skipped: %s", ev.seq, exc)
            elif ev.kind == "depth":
                diffs[market].append(ev.data)
        pushes: list[Push] = []
        for market, trades in deals.items():
            pushes += self.fold_deals(market, trades)
        for market, batch in diffs.items():
            pushes += self.fold_depth(market, batch)
        return pushes

    # ------------------------------------------------------------------ deals: klines, ticker, recent deals

    def fold_deals(self, market: str, trades: list[Trade]) -> list[Push]:
        r = self.r
        last_id = int(r.get(key(market, "deal_id")) or 0)
        fresh = {t.id: t for t in trades if t.id > last_id}
        new = [fresh[i] for i in sorted(fresh)]
        if not new:
            return []
        now = self.clock()
        reads = r.pipeline(transaction=False)
        wanted: list[tuple[str, int]] = []
        for iv in INTERVALS:
            for start in sorted({bucket_start(t.time, iv) for t in new}):
                reads.zrangebyscore(kline_key(market, iv), start, start)
                wanted.append((iv, start))
        reads.zrangebyscore(kline_key(market, "1m"), f"({now - TICKER_WINDOW_MS}", "+inf")
        results = reads.execute()
        existing: dict[str, dict[int, Kline]] = {iv: {} for iv in INTERVALS}
        for (iv, start), members in zip(wanted, results[:-1], strict=True):
            if members:
                existing[iv][start] = Kline.loads(members[-1])
        changed = {iv: fold_klines(existing[iv], new, iv) for iv in INTERVALS}
        minutes = {k.time: k for k in map(Kline.loads, results[-1])}
        minutes.update(changed["1m"])
        tick = ticker(market, minutes.values(), new[-1], now)

        tx = r.pipeline(transaction=True)
        for iv, candles in changed.items():
            self._write_klines(tx, market, iv, candles.values())
        deals_key = key(market, "deals")
        tx.lpush(deals_key, *[json.dumps(t.to_public(), separators=(",", ":")) for t in new])
        tx.ltrim(deals_key, 0, RECENT_DEALS - 1)
        tx.set(key(market, "deal_id"), new[-1].id)
        tx.set(key(market, "ticker"), json.dumps(tick))
        tx.execute()

        self._pushed_tickers[market] = tick
        klines = {iv: [k.to_dict() for k in sorted(c.values(), key=lambda k: k.time)] for iv, c in changed.items()}
        public = [t.to_public() for t in reversed(new)]  # newest first, as recent_deals()
        return [Push(groups.deals(market), groups.message("deals", market=market, prev_id=last_id, deals=public)),
                Push(groups.kline(market), groups.message("kline", market=market, klines=klines)),
                *self._ticker_pushes(market, tick)]

    def _write_klines(self, tx: Any, market: str, interval: str, candles: Iterable[Kline]) -> None:
        kk = kline_key(market, interval)
        for k in candles:
            tx.zremrangebyscore(kk, k.time, k.time)
            tx.zadd(kk, {k.dumps(): k.time})
        tx.zremrangebyrank(kk, 0, -(self.kline_keep + 1))

    def _ticker_pushes(self, market: str, tick: dict[str, Any]) -> list[Push]:
        return [Push(groups.ticker(market), groups.message("ticker", market=market, ticker=tick)),
                Push(groups.TICKER_ALL, groups.message("ticker", market=market, ticker=tick, all=True))]

    def refresh_tickers(self) -> list[Push]:
        """Recompute every market's ticker as the 24h window slides; push the ones whose figures changed.

        Guarded by WATCH on the deal id, so a refresh never overwrites a
        ticker that a deal batch (maybe in another instance) just wrote.
        """
        self.specs = marketdata.market_specs()
        pushes: list[Push] = []
        for market in sorted(self.specs):
            now = self.clock()
            try:
                with self.r.pipeline(transaction=True) as p:
                    p.watch(key(market, "deal_id"))
                    members = p.zrangebyscore(kline_key(market, "1m"), f"({now - TICKER_WINDOW_MS}", "+inf")
                    last_raw = p.lindex(key(market, "deals"), 0)
                    last = Trade.from_public(json.loads(last_raw)) if last_raw else None
                    tick = ticker(market, [Kline.loads(m) for m in members], last, now)
                    p.multi()
                    p.set(key(market, "ticker"), json.dumps(tick))
                    p.execute()
            except redis.WatchError:
                continue
            previous = self._pushed_tickers.get(market)
            if previous is None or _without_time(previous) != _without_time(tick):
                pushes += self._ticker_pushes(market, tick)
            self._pushed_tickers[market] = tick
        return pushes

    # ------------------------------------------------------------------ depth

    def depth_state(self, market: str) -> _DepthState:
        """The in-memory book, reloaded whenever Redis says another writer (``--rebuild``) moved it."""
        spec = self.specs[market]
        redis_seq = int(self.r.get(key(market, "depth_seq")) or 0)
        state = self.depth.get(market)
        if state is not None and state.book.seq == redis_seq:
            return state
        with self.r.pipeline(transaction=True) as p:
            p.hgetall(key(market, "book:asks"))
            p.hgetall(key(market, "book:bids"))
            p.get(key(market, "depth_seq"))
            asks, bids, seq = p.execute()
        book = Book(spec.price_prec, int(seq or 0))
        book.apply(list(asks.items()), list(bids.items()))
        return self._install(market, book)

    def _install(self, market: str, book: Book) -> _DepthState:
        """A book whose history we do not know: every view counts as changed at its seq (conservative)."""
        spec = self.specs[market]
        state = _DepthState(book)
        for iv in spec.merge_intervals:
            state.views[iv] = book.view(iv, DEPTH_MAX_LIMIT)
            for limit in DEPTH_LIMITS:
                state.changed_at[(iv, limit)] = book.seq
        self.depth[market] = state
        return state

    def _resync(self, market: str) -> _DepthState | None:
        now = time.monotonic()
        if now - self._last_resync.get(market, -1e9) < RESYNC_BACKOFF_SECONDS:
            return None
        self._last_resync[market] = now
        try:
            snap = self.resync(market)
            book = Book(self.specs[market].price_prec, int(snap["seq"]))
            book.apply(snap["asks"], snap["bids"])
        except Exception as exc:  # the matcher may be down: keep the last good book and retry later
            log.error("depth of %s: cannot fetch the book from the matcher: %s", market, exc)
            return None
        log.warning("depth of %s: book fetched again from the matcher at depth_seq %s", market, book.seq)
        old = self.depth.get(market)
        state = _DepthState(book, views=old.views if old else {}, changed_at=old.changed_at if old else {})
        self.depth[market] = state
        return state

    def fold_depth(self, market: str, diffs: list[dict[str, Any]]) -> list[Push]:
        state = self.depth_state(market)
        touched: dict[str, set[Decimal]] = {"asks": set(), "bids": set()}
        replaced = False
        for d in diffs:
            ds = d.get("depth_seq")
            if isinstance(ds, bool) or not isinstance(ds, int):
                log.error("depth diff of %s without an integer depth_seq skipped", market)
                continue
            if ds <= state.book.seq:
                continue  # already applied (at-least-once delivery)
            if ds != state.book.seq + 1:
                log.warning("depth of %s: gap, have %s, got %s", market, state.book.seq, ds)
                fetched = self._resync(market)
                if fetched is None:
                    break
                state, replaced = fetched, True
                if ds <= state.book.seq:
                    continue
                if ds != state.book.seq + 1:
                    log.error("depth of %s: still a gap after refetch (%s then %s)", market, state.book.seq, ds)
                    break
            try:
                state.book.apply(d.get("asks") or [], d.get("bids") or [])
            except ValueError as exc:
                log.error("depth diff %s of %s is malformed, book refetched: %s", ds, market, exc)
                fetched = self._resync(market)
                if fetched is None:
                    break
                state, replaced = fetched, True
                continue
            state.book.seq = ds
            for side in ("asks", "bids"):
                touched[side].update(Decimal(p) for p, _ in d.get(side) or [])
        if not replaced and not touched["asks"] and not touched["bids"]:
            return []
        return self._write_depth(market, state, touched, replaced)

    def _write_depth(self, market: str, state: _DepthState, touched: dict[str, set[Decimal]],
                     replaced: bool) -> list[Push]:
        book = state.book
        spec = self.specs[market]
        views = {iv: book.view(iv, DEPTH_MAX_LIMIT) for iv in spec.merge_intervals}
        tx = self.r.pipeline(transaction=True)
        for side, levels in (("asks", book.asks), ("bids", book.bids)):
            hk = key(market, f"book:{side}")
            if replaced:
                tx.delete(hk)
                if levels:
                    tx.hset(hk, mapping={_fmt(p): _fmt(a) for p, a in levels.items()})
                continue
            gone = [_fmt(p) for p in touched[side] if p not in levels]
            present = {_fmt(p): _fmt(levels[p]) for p in touched[side] if p in levels}
            if gone:
                tx.hdel(hk, *gone)
            if present:
                tx.hset(hk, mapping=present)
        tx.set(key(market, "depth_seq"), book.seq)
        for iv, view in views.items():
            tx.set(depth_key(market, iv), json.dumps(
                {"seq": book.seq, "asks": levels_out(view["asks"]), "bids": levels_out(view["bids"])},
                separators=(",", ":")))
        tx.execute()

        updates: dict[str, dict[str, Any]] = {}
        for iv, view in views.items():
            old = state.views.get(iv, {"asks": [], "bids": []})
            for limit in DEPTH_LIMITS:
                asks = view_diff(old["asks"][:limit], view["asks"][:limit])
                bids = view_diff(old["bids"][:limit], view["bids"][:limit])
                if not asks and not bids:
                    continue
                prev = state.changed_at.get((iv, limit), 0)
                state.changed_at[(iv, limit)] = book.seq
                updates.setdefault(iv, {})[str(limit)] = {"prev_seq": prev, "asks": asks, "bids": bids}
        state.views = views
        if not updates:
            return []
        return [Push(groups.depth(market), groups.message("depth", market=market, seq=book.seq, views=updates))]

    # ------------------------------------------------------------------ rebuild from PostgreSQL

    def rebuild(self, markets: list[str] | None = None, *, progress: bool = True, file: TextIO | None = None,
                depth: bool = True) -> dict[str, Any]:
        """Recompute klines, tickers and recent deals from ``trading.Deal``; refetch depth from the matcher.

        Returns ``{"deals": n, "markets": [...], "depth": {market: fetched?}}``.
        Meant to run while no consumer runs (the command refuses otherwise).
        """
        from tqdm import tqdm

        from trading.models import Deal

        self.specs = marketdata.market_specs()
        names = sorted(self.specs) if not markets else list(markets)
        unknown = [m for m in names if m not in self.specs]
        if unknown:
            raise ValueError(f"unknown market(s): {', '.join(unknown)}")
        total = Deal.objects.filter(market__name__in=names).count()
        done = 0
        with tqdm(total=total, unit="deal", desc="rebuild", disable=not progress, file=file or sys.stderr,
                  dynamic_ncols=True) as bar:
            for market in names:
                done += self._rebuild_market(market, bar)
        result: dict[str, Any] = {"deals": done, "markets": names, "depth": {}}
        if depth:
            for market in names:
                self._last_resync.pop(market, None)
                state = self._resync(market)
                if state is not None:
                    self._write_depth(market, state, {"asks": set(), "bids": set()}, replaced=True)
                result["depth"][market] = state is not None
        return result

    def _rebuild_market(self, market: str, bar: Any) -> int:
        from trading.models import Deal

        spec = self.specs[market]
        price_q, amount_q, quote_q = (Decimal(1).scaleb(-p) for p in (spec.price_prec, spec.amount_prec,
                                                                        spec.quote_prec))
        candles: dict[str, dict[int, Kline]] = {iv: {} for iv in INTERVALS}
        recent: deque[Trade] = deque(maxlen=RECENT_DEALS)
        rows = (Deal.objects.filter(market__name=market).order_by("id")
                .values_list("id", "time", "price", "amount", "quote_amount", "taker_side").iterator(chunk_size=5000))
        chunk: list[Trade] = []
        count = 0

        def flush() -> None:
            for iv in INTERVALS:
                fold_klines(candles[iv], chunk, iv)
                if len(candles[iv]) > 2 * self.kline_keep:  # bound memory on long histories
                    for start in sorted(candles[iv])[:-self.kline_keep]:
                        del candles[iv][start]
            recent.extend(chunk)
            bar.update(len(chunk))
            chunk.clear()

        for deal_id, when, price, amount, quote, side in rows:
            chunk.append(Trade(deal_id, _ms(when), price.quantize(price_q, context=EXACT),
                               amount.quantize(amount_q, context=EXACT), quote.quantize(quote_q, context=EXACT), side))
            count += 1
            if len(chunk) == 5000:
                flush()
        flush()

        now = self.clock()
        last = recent[-1] if recent else None
        tick = ticker(market, candles["1m"].values(), last, now)
        tx = self.r.pipeline(transaction=True)
        tx.delete(*[kline_key(market, iv) for iv in INTERVALS], key(market, "deals"), key(market, "deal_id"))
        for iv in INTERVALS:
            kept = sorted(candles[iv].values(), key=lambda k: k.time)[-self.kline_keep:]
            for i in range(0, len(kept), 1000):
                tx.zadd(kline_key(market, iv), {k.dumps(): k.time for k in kept[i:i + 1000]})
        if recent:
            tx.lpush(key(market, "deals"), *[json.dumps(t.to_public(), separators=(",", ":")) for t in recent])
            tx.set(key(market, "deal_id"), recent[-1].id)
        tx.set(key(market, "ticker"), json.dumps(tick))
        tx.execute()
        self._pushed_tickers[market] = tick
        return count


def _fmt(value: Decimal) -> str:
    return format(value, "f")


def _without_time(tick: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tick.items() if k != "time"}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


# ---------------------------------------------------------------------- the channel layer, from a sync loop


class Publisher:
    """Sends pushes through the channel layer from a private event loop in a daemon thread.

    The consumer loop is synchronous (confluent-kafka, redis-py); channels_redis
    is asyncio and keeps connections per event loop, so one long-lived loop
    serves every batch instead of a new loop (and new connections) per call.
    """

    def __init__(self) -> None:
        from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="publisher", daemon=True)
        self.thread.start()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)  # our own: its pools live on our loop

    def publish(self, pushes: list[Push], timeout: float = 10.0) -> None:
        if not pushes or self.layer is None:
            return

        async def send_all() -> None:
            assert self.layer is not None
            await asyncio.gather(*(self.layer.group_send(p.group, p.message) for p in pushes))

        asyncio.run_coroutine_threadsafe(send_all(), self.loop).result(timeout)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(groups.close_layer(self.layer), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            # closed here, not by the garbage collector: the pub/sub layer flushes itself when its loop
            # closes, which fails if that happens inside another running loop
            self.loop.close()


# ---------------------------------------------------------------------- the loop


def heartbeat(r: redis.Redis) -> None:
    r.set(HEARTBEAT_KEY, f"{socket.gethostname()}:{os.getpid()}", ex=HEARTBEAT_TTL_SECONDS)


def consumer_running(r: redis.Redis) -> str | None:
    value = r.get(HEARTBEAT_KEY)
    return str(value) if value is not None else None


def run(stop: threading.Event, *, group_id: str | None = None, batch_size: int = 500, poll_seconds: float = 0.5,
        md: MarketData | None = None, publisher: Publisher | None = None) -> None:
    """Consume deals and depth until ``stop`` is set (SIGTERM in the command)."""
    md = md or MarketData()
    own_publisher = publisher is None
    publisher = publisher or Publisher()
    consumer = make_consumer(group_id or settings.MARKETDATA_KAFKA_GROUP, "earliest")
    consumer.subscribe([topic("deals"), topic("depth")])
    refresh_every = settings.MARKETDATA_TICKER_REFRESH_SECONDS
    next_refresh = 0.0
    next_beat = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                heartbeat(md.r)
                next_beat = now + HEARTBEAT_TTL_SECONDS / 3
            if now >= next_refresh:
                publisher.publish(md.refresh_tickers())
                next_refresh = now + refresh_every
            messages = consume_available(consumer, batch_size, poll_seconds)
            events = [e for e in map(decode, messages) if e is not None]
            if events:
                publisher.publish(md.process(events))
            if any(m.error() is None for m in messages):
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
        md.r.delete(HEARTBEAT_KEY)
        if own_publisher:
            publisher.close()
