"""The batching loop overlaps PostgreSQL and Python: batch N commits while batch N+1 is applied."""

import asyncio
import threading
import types

import pytest

from matcher.engine import Engine
from matcher.service.core import Core
from matcher.service.state import LoadedState


class Builder:
    """A persister's row builder that builds nothing: the rows are the batch itself."""

    def __init__(self, batch, on_finish=None) -> None:
        self.batch = batch
        self.on_finish = on_finish

    def catch_up(self) -> None:
        pass

    def finish(self):
        if self.on_finish is not None:
            self.on_finish(self.batch)
        return types.SimpleNamespace(batch=self.batch)


class GatedPersister:
    """Preparing batch 2 waits (up to 5 s) for the commit of batch 1 to have begun.

    ``sends``: commits go out from the loop (``send``, as the matcher's one-statement batches do),
    else through a thread (``execute``, as batches with extra statements do)."""

    def __init__(self, sends: bool) -> None:
        self.sends = sends
        self.commit_began = threading.Event()
        self.prepared: list[int] = []
        self.commit_of_1_began_before_2_was_prepared: bool | None = None

    def start(self, batch):
        return Builder(batch, self.finished)

    def finished(self, batch) -> None:
        self.prepared.append(len(self.prepared) + 1)
        if len(self.prepared) == 2:
            # waits without the GIL, so a commit already handed to its thread can run meanwhile
            self.commit_of_1_began_before_2_was_prepared = self.commit_began.wait(5)

    def can_send(self, rows) -> bool:
        return self.sends

    async def send(self, rows) -> None:
        self.commit_began.set()

    def execute(self, rows) -> None:
        self.commit_began.set()


@pytest.mark.parametrize("sends", [True, False], ids=["from-the-loop", "in-a-thread"])
def test_a_batch_commits_while_the_next_one_is_applied(sends):
    engine = Engine()
    engine.add_asset("USDT", 6)
    persister = GatedPersister(sends)
    core = Core(LoadedState(engine, 0, 0, {}), persister, batch_max=1)  # type: ignore[arg-type]

    async def run():
        loop_task = asyncio.create_task(core.run())
        first = core.submit([("update_balance", {"user": 1, "asset": "USDT", "business": "deposit",
                                                 "business_id": "a", "change": "1"})])
        second = core.submit([("update_balance", {"user": 1, "asset": "USDT", "business": "deposit",
                                                  "business_id": "b", "change": "2"})])
        results = await asyncio.wait_for(asyncio.gather(first, second), 30)
        core.stop()
        await asyncio.wait_for(loop_task, 30)
        return results

    (first,), (second,) = asyncio.run(run())
    assert first.ok and second.ok
    assert persister.prepared == [1, 2]
    assert persister.commit_of_1_began_before_2_was_prepared is True


class HeldPersister:
    """Each commit waits until the test releases it; records the operations of every batch it commits."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent: list[list[int]] = []

    def start(self, batch):
        return Builder(batch)

    def can_send(self, rows) -> bool:
        return True

    async def send(self, rows) -> None:
        self.sent.append([op_seq for op_seq, _method, _params in rows.batch.ops])
        await self.release.wait()
        self.release.clear()


def deposit(business_id: str) -> list:
    return [("update_balance", {"user": 1, "asset": "USDT", "business": "deposit", "business_id": business_id,
                                "change": "1"})]


async def until(condition, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


def test_commands_arriving_during_a_commit_are_applied_at_once_and_commit_next_together():
    """Arrivals during commit N go into batch N+1, sealed when N ends; not into N+2 behind a batch sealed early."""
    engine = Engine()
    engine.add_asset("USDT", 6)
    persister = HeldPersister()
    core = Core(LoadedState(engine, 0, 0, {}), persister)  # type: ignore[arg-type]

    async def run():
        loop_task = asyncio.create_task(core.run())
        first = core.submit(deposit("a"))
        await until(lambda: persister.sent == [[1]])  # commit 1 in flight, held
        second = core.submit(deposit("b"))
        third = core.submit(deposit("c"))
        # applied while commit 1 still runs: the engine has them, nobody is answered yet
        await until(lambda: engine.balances(1)["USDT"] == (3_000_000, 0))
        assert persister.sent == [[1]] and not first.done() and core.pending_calls == 3
        persister.release.set()
        await until(lambda: len(persister.sent) == 2)
        assert first.done() and not second.done()
        persister.release.set()
        results = await asyncio.wait_for(asyncio.gather(first, second, third), 10)
        core.stop()
        await asyncio.wait_for(loop_task, 10)
        return results

    results = asyncio.run(run())
    assert all(res.ok for (res,) in results)
    assert persister.sent == [[1], [2, 3]]
    assert core.pending_calls == 0


def run_held(batch_max: int, later: list[list], applied: int) -> tuple[list, list[list[int]]]:
    """Deposit "a" (committing, held), then submit ``later``; check that exactly ``applied`` USDT units
    are applied while that commit is held, then release commits until every request is answered.

    The loop runs in a thread: a loop that spins never yields to asyncio's own timeouts, and must fail
    the test, not hang it."""
    engine = Engine()
    engine.add_asset("USDT", 6)
    persister = HeldPersister()
    core = Core(LoadedState(engine, 0, 0, {}), persister, batch_max=batch_max)  # type: ignore[arg-type]

    async def run():
        loop_task = asyncio.create_task(core.run())
        futures = [core.submit(deposit("a"))]
        await until(lambda: persister.sent == [[1]])
        futures += [core.submit(calls) for calls in later]
        await until(lambda: engine.balances(1)["USDT"][0] == applied)
        await asyncio.sleep(0.05)  # the rest waits for the held commit (and the loop is not spinning)
        assert engine.balances(1)["USDT"][0] == applied
        while not all(f.done() for f in futures):
            persister.release.set()
            await asyncio.sleep(0.001)
        core.stop()
        persister.release.set()
        await asyncio.wait_for(loop_task, 10)
        return [f.result() for f in futures]

    out: list = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(run())), daemon=True)
    thread.start()
    thread.join(30)
    assert out, "the batching loop did not finish"
    return out[0], persister.sent


def test_the_open_batch_holds_at_most_batch_max_calls():
    results, sent = run_held(2, [deposit(x) for x in "bcd"], 3_000_000)  # "d" waits: the open batch is full
    assert all(res.ok for (res,) in results)
    assert sent == [[1], [2, 3], [4]]


def test_a_request_that_does_not_fit_the_open_batch_waits_for_the_next_one():
    """1 call open, then a request of 2 with batch_max 2: it goes, whole, into the next batch (the loop
    must neither split it nor spin on it while the commit is held); one larger than batch_max goes
    whole into a batch of its own."""
    results, sent = run_held(2, [deposit("b"), deposit("c") + deposit("d"), deposit("e") * 3], 2_000_000)
    assert [[r.ok for r in rs] for rs in results] == [[True], [True], [True, True], [True, False, False]]
    assert sent == [[1], [2], [3, 4], [5]]
