"""The batching loop: group commit in front of the engine.

Requests queue up as ``Item``s; the loop applies them to the engine in order as
they come, into the open batch, and the moment no commit is in flight it seals
that batch, turns its events into rows (in the loop itself: a worker thread
only added GIL hand-overs to the same CPU work) and sends them to PostgreSQL.
While that commit runs, the next arrivals are applied into the next open batch
(at most one batch committing and one open, of at most ``batch_max`` calls).
Callers are answered only after the COMMIT of the batch that holds their
command.

If a commit fails, the engine in memory is ahead of the database and nothing
can make them agree again but a restart from the database: every caller still
waiting gets UNAVAILABLE and ``fatal`` is set; the process exits and is
restarted (docs/adr/0006). Commands it had applied but not committed were never
acknowledged, so losing them breaks no promise.
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matcher.engine import Engine, Result
from matcher.service.depth import DepthTracker
from matcher.service.persist import Batch, Persister, Rows
from matcher.service.state import LoadedState

log = logging.getLogger("matcher")

#: Commands that change the market configuration (persisted in matcher_matcherstate.config).
CONFIG_METHODS = frozenset({"halt_market", "resume_market", "set_fees", "add_asset", "add_market"})
PLACE_METHODS = frozenset({"place_limit", "place_market"})
DEFAULT_STP = "cancel_resting"
#: how long applying a batch may hold the loop before it lets other work run (answers, reads)
APPLY_SLICE_SECONDS = 0.001


class Unavailable(Exception):
    """The command was not acknowledged (the matcher is stopping or its commit failed)."""


@dataclass
class Item:
    """One request: a list of engine calls answered together (one, or a PlaceBatch)."""

    calls: list[tuple[str, dict[str, Any]]]
    future: asyncio.Future[list[Result]]
    results: list[Result] | None = None
    snapshot: bool = False


class _Open:
    """The open batch: commands applied to the engine and not yet handed to a commit."""

    __slots__ = ("batch", "rows", "items", "calls", "config_changed", "want_snapshot")

    def __init__(self, persister: Persister, time_ms: int) -> None:
        self.batch = Batch(time_ms=time_ms)
        self.rows = persister.start(self.batch)
        self.items: list[Item] = []
        self.calls = 0
        self.config_changed = False
        self.want_snapshot = False


class Core:
    def __init__(self, loaded: LoadedState, persister: Persister, *, batch_max: int = 500,
                 snapshot_every_ops: int = 0, on_commit: Callable[[], None] | None = None) -> None:
        self.engine: Engine = loaded.engine
        self.persister = persister
        self.op_seq = loaded.op_seq
        self.last_time = loaded.last_time
        self.depth = DepthTracker(self.engine, loaded.depth_seqs)
        self.batch_max = batch_max
        self.snapshot_every_ops = snapshot_every_ops
        self._last_snapshot_op = loaded.op_seq
        self.on_commit = on_commit
        self._pending: deque[Item] = deque()
        self._unanswered = 0
        self._open: _Open | None = None
        self._committing: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.fatal: BaseException | None = None
        self.failed = asyncio.Event()
        # figures for logs and the benchmark
        self.batches = 0
        self.commands = 0
        self.commit_seconds = 0.0
        self.apply_seconds = 0.0
        #: set by serve() when MATCHER_PROFILE is given: profiles the commit thread
        self.profiler: cProfile.Profile | None = None

    # ------------------------------------------------------------ submitting

    def submit(self, calls: list[tuple[str, dict[str, Any]]], snapshot: bool = False) -> asyncio.Future[list[Result]]:
        """Queue engine calls; the future resolves to their results after the commit."""
        fut: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        if self.fatal is not None or self._stopping:
            fut.set_exception(Unavailable("the matcher is stopping"))
            return fut
        self._pending.append(Item(calls, fut, snapshot=snapshot))
        self._unanswered += len(calls)
        self._wake.set()
        return fut

    @property
    def pending_calls(self) -> int:
        """Engine calls submitted and not yet answered (queued, applied, or committing)."""
        return self._unanswered

    async def call(self, method: str, params: dict[str, Any]) -> Result:
        return (await self.submit([(method, params)]))[0]

    def stop(self) -> None:
        """Finish what is queued, then end ``run``."""
        self._stopping = True
        self._wake.set()

    # ------------------------------------------------------------ the loop

    def _pipeline_free(self) -> bool:
        """No commit is in flight (or the last one has ended): the open batch may be sealed and sent."""
        return self._committing is None or self._committing.done()

    async def run(self) -> None:
        """Apply commands as they come into the open batch; seal and commit it as soon as PostgreSQL is free.

        While batch N commits, every command that arrives is applied at once into the open batch N+1,
        which is sealed (its rows built) and sent the moment commit N ends. A command therefore waits
        for at most the rest of one commit and then its own. The loop used to seal batch N+1 as soon
        as it had applied what was queued and then wait for commit N, so a command arriving during
        commit N went into batch N+2 and waited for two more commits (docs/matcher.md, fourth round).
        """
        try:
            while True:
                committing = self._committing
                if committing is not None and committing.done():
                    self._committing = None
                    committing.result()  # raises if that commit failed
                op = self._open
                if self._pending and (op is None or self._fits(op, self._pending[0])):
                    if op is None:
                        op = self._open = _Open(self.persister, self._now())
                    await self._fill(op)
                    continue
                if op is not None and self._pipeline_free():
                    self._open = None
                    rows = self._seal(op)
                    self._committing = asyncio.create_task(self._commit(rows, op.items))
                    # let the commit start now: a new task first runs when the loop next yields
                    await asyncio.sleep(0)
                    continue
                if op is None and not self._pending and self._stopping:
                    break
                self._wake.clear()
                await self._wake.wait()  # set by submit, stop and every commit's end
            if self._committing is not None:
                await self._committing
        except BaseException as exc:
            if self._open is not None:
                for item in self._open.items:
                    if not item.future.done():
                        item.future.set_exception(Unavailable("the matcher stopped after a failed commit"))
            self._fail(exc)
            raise

    def _fits(self, op: _Open, item: Item) -> bool:
        """Whether ``item`` may join the open batch: a batch holds at most ``batch_max`` calls, except
        that a request larger than that goes whole into a batch of its own."""
        return not op.calls or op.calls + len(item.calls) <= self.batch_max

    def _now(self) -> int:
        # never backwards, even if the wall clock is (times come in with the commands)
        ms = time.time_ns() // 1_000_000
        if ms > self.last_time:
            self.last_time = ms
        return self.last_time

    async def _fill(self, op: _Open) -> None:
        """Apply queued requests in order into the open batch, up to ``batch_max`` calls.

        Every ``APPLY_SLICE_SECONDS`` it yields to the loop, so that a commit that has ended can have
        its answers sent. It goes on while requests are queued even if PostgreSQL is then idle: with
        a backlog, stopping to seal after each slice made batches of ~25 commands instead of
        ``batch_max``, and their per-batch costs cut the rate (docs/matcher.md, fourth round). Nothing else changes
        the engine, so the batch stays one ordered run of commands; a query served in between sees
        a state after some prefix of it, as it already could between batches (those are never
        committed yet). Every command of a batch carries the batch's time, the time it was opened.
        """
        t0 = last_yield = time.perf_counter()
        yielded = 0.0
        apply = self.engine.apply
        pending = self._pending
        batch = op.batch
        now = batch.time_ms
        ops = batch.ops
        events = batch.events
        op_seq = self.op_seq
        while pending:
            item = pending[0]
            if not self._fits(op, item):
                break
            pending.popleft()
            op.calls += len(item.calls)
            results = []
            for method, params in item.calls:
                res = apply(method, params, now)
                results.append(res)
                if not res.ok:
                    continue
                op_seq += 1
                ops.append((op_seq, method, params))
                if res.raw:
                    events.extend(res.raw)
                if method in PLACE_METHODS:
                    stp = params.get("stp")
                    if stp is not None and stp != DEFAULT_STP:
                        batch.stps.append((res.value["id"], stp))
                elif method in CONFIG_METHODS:
                    op.config_changed = True
                    self._config_applied(method, params, res, batch)
            item.results = results
            op.items.append(item)
            op.want_snapshot = op.want_snapshot or item.snapshot
            if (t := time.perf_counter()) - last_yield > APPLY_SLICE_SECONDS:
                self.op_seq = op_seq
                op.rows.catch_up()  # rows built while the previous batch commits, not after
                await asyncio.sleep(0)
                last_yield = time.perf_counter()
                yielded += last_yield - t
        self.op_seq = op_seq
        self.apply_seconds += time.perf_counter() - t0 - yielded
        op.rows.catch_up()

    def _seal(self, op: _Open) -> Rows:
        """Close the open batch: the counters, depth diffs, configuration and snapshot it carries, and its rows."""
        engine = self.engine
        batch = op.batch
        now = batch.time_ms
        op_seq = self.op_seq
        self.commands += len(batch.ops)
        batch.op_seq = op_seq
        batch.event_seq = engine.event_seq
        batch.next_order_id = engine.next_order_id
        batch.next_deal_id = engine.next_deal_id
        if batch.events:
            batch.depth = self.depth.diffs(batch.events, engine.event_seq, now)
            if batch.depth:
                batch.depth_changed = True
                batch.depth_seqs = dict(self.depth.seqs)
        if op.config_changed:
            batch.config = engine.config()
            batch.depth_changed = True
            batch.depth_seqs = dict(self.depth.seqs)
        want_snapshot = op.want_snapshot
        if self.snapshot_every_ops and op_seq - self._last_snapshot_op >= self.snapshot_every_ops:
            want_snapshot = True
        if want_snapshot:
            batch.snapshot = engine.snapshot()
            self._last_snapshot_op = op_seq
        return op.rows.finish()

    def _config_applied(self, method: str, params: dict[str, Any], res: Result, batch: Batch) -> None:
        if method == "add_market":
            self.depth.add_market(res.value["name"])
        elif method in ("halt_market", "resume_market") or (method == "set_fees" and params.get("user") is None):
            m = res.value
            batch.market_rows[m["name"]] = (m["status"], m["maker_fee"], m["taker_fee"])

    def _execute(self, rows: Rows) -> None:
        if self.profiler is None:
            self.persister.execute(rows)
            return
        self.profiler.enable()  # commits run one at a time, so one profiler suffices for their threads
        try:
            self.persister.execute(rows)
        finally:
            self.profiler.disable()

    async def _commit(self, rows: Rows, items: list[Item]) -> None:
        batch = rows.batch
        t0 = time.perf_counter()
        try:
            if self.profiler is None and self.persister.can_send(rows):
                await self.persister.send(rows)  # from the loop: no thread to wake, no GIL to hand over
            else:
                await asyncio.to_thread(self._execute, rows)
        except BaseException as exc:
            log.critical("commit of batch (ops up to %s) failed: %r; the matcher must restart", batch.op_seq, exc)
            for item in items:
                if not item.future.done():
                    item.future.set_exception(Unavailable("commit failed; the command was not applied"))
            self._fail(exc)  # now, not when the next batch comes: serve() sees core.failed and exits
            raise
        finally:
            self._wake.set()  # the loop seals the open batch now
        self.commit_seconds += time.perf_counter() - t0
        self.batches += 1
        if self.on_commit is not None:
            self.on_commit()
        for item in items:
            self._unanswered -= len(item.calls)
            if not item.future.done():
                results = item.results or []
                if item.snapshot and batch.snapshot_id is not None:
                    results = [*results, Result(True, None, {"id": batch.snapshot_id, "op_seq": batch.op_seq}, [])]
                item.future.set_result(results)

    def _fail(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(Unavailable("the matcher stopped after a failed commit"))
        self._pending.clear()
        self.failed.set()
