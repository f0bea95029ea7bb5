"""The batching loop: group commit in front of the engine.

Requests queue up as ``Item``s; the loop takes everything queued (up to a cap),
applies it to the engine in order, turns the events into rows (in the loop
itself: a worker thread only added GIL hand-overs to the same CPU work) and
hands them to the persister's thread, then immediately goes on collecting and
applying the next batch while PostgreSQL commits (at most one batch committing
and one being prepared). Callers are answered only after the
COMMIT of the batch that holds their command.

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
        self._pending: list[Item] = []
        self._pending_calls = 0
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
        self._pending_calls += len(calls)
        self._wake.set()
        return fut

    @property
    def pending_calls(self) -> int:
        """Engine calls queued and not yet taken into a batch."""
        return self._pending_calls

    async def call(self, method: str, params: dict[str, Any]) -> Result:
        return (await self.submit([(method, params)]))[0]

    def stop(self) -> None:
        """Finish what is queued, then end ``run``."""
        self._stopping = True
        self._wake.set()

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        committing: asyncio.Task[None] | None = None
        items: list[Item] = []  # applied to the engine, not yet handed to a commit
        try:
            while True:
                if not self._pending:
                    if self._stopping:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                items = self._take()
                batch = await self._apply(items)
                # rows built here, in the loop: in a worker thread they cost as much CPU plus GIL hand-overs
                rows = self.persister.prepare(batch)
                if committing is not None:
                    await committing  # commits stay in order; raises if the previous one failed
                committing = asyncio.create_task(self._commit(rows, items))
                items = []
                # let the commit start now: a new task first runs when the loop next yields, which
                # applying the next batch does only after a millisecond; without this the commit of
                # batch N began only after batch N+1 was applied, and PostgreSQL and the loop took turns
                await asyncio.sleep(0)
            if committing is not None:
                await committing
        except BaseException as exc:
            for item in items:
                if not item.future.done():
                    item.future.set_exception(Unavailable("the matcher stopped after a failed commit"))
            self._fail(exc)
            raise

    def _take(self) -> list[Item]:
        pending = self._pending
        n = 0
        count = 0
        for item in pending:
            if count and count + len(item.calls) > self.batch_max:
                break
            count += len(item.calls)
            n += 1
        items = pending[:n]
        del pending[:n]
        self._pending_calls -= count
        return items

    def _now(self) -> int:
        # never backwards, even if the wall clock is (times come in with the commands)
        ms = time.time_ns() // 1_000_000
        if ms > self.last_time:
            self.last_time = ms
        return self.last_time

    async def _apply(self, items: list[Item]) -> Batch:
        """Apply the items to the engine in order, yielding to the loop every ``APPLY_SLICE_SECONDS``.

        A batch of a few hundred commands holds the loop for several milliseconds. The commit of the
        previous batch usually ends meanwhile, and its callers' answers then waited for the whole
        batch to be applied. Yielding lets them go out at once. Nothing else changes the engine, so
        the batch stays one ordered run of commands; a query served in between sees a state after
        some prefix of it, as it already could between batches (those are never committed yet).
        """
        t0 = last_yield = time.perf_counter()
        yielded = 0.0
        engine = self.engine
        apply = engine.apply
        now = self._now()
        batch = Batch(time_ms=now)
        ops = batch.ops
        events = batch.events
        op_seq = self.op_seq
        config_changed = False
        want_snapshot = False
        for item in items:
            results = []
            for method, params in item.calls:
                res = apply(method, params, now)
                results.append(res)
                if not res.ok:
                    continue
                op_seq += 1
                ops.append((op_seq, method, params))
                if res.events:
                    events.extend(res.events)
                if method in PLACE_METHODS:
                    stp = params.get("stp")
                    if stp is not None and stp != DEFAULT_STP:
                        batch.stps.append((res.value["id"], stp))
                elif method in CONFIG_METHODS:
                    config_changed = True
                    self._config_applied(method, params, res, batch)
            item.results = results
            want_snapshot = want_snapshot or item.snapshot
            if (t := time.perf_counter()) - last_yield > APPLY_SLICE_SECONDS:
                await asyncio.sleep(0)
                last_yield = time.perf_counter()
                yielded += last_yield - t
        self.op_seq = op_seq
        self.commands += len(ops)
        batch.op_seq = op_seq
        batch.event_seq = engine.event_seq
        batch.next_order_id = engine.next_order_id
        batch.next_deal_id = engine.next_deal_id
        if events:
            batch.depth = self.depth.diffs(events, engine.event_seq, now)
            if batch.depth:
                batch.depth_changed = True
                batch.depth_seqs = dict(self.depth.seqs)
        if config_changed:
            batch.config = engine.config()
            batch.depth_changed = True
            batch.depth_seqs = dict(self.depth.seqs)
        if self.snapshot_every_ops and op_seq - self._last_snapshot_op >= self.snapshot_every_ops:
            want_snapshot = True
        if want_snapshot:
            batch.snapshot = engine.snapshot()
            self._last_snapshot_op = op_seq
        self.apply_seconds += time.perf_counter() - t0 - yielded
        return batch

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
        self.commit_seconds += time.perf_counter() - t0
        self.batches += 1
        if self.on_commit is not None:
            self.on_commit()
        for item in items:
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
