"""The batching loop overlaps PostgreSQL and Python: batch N commits while batch N+1 is applied."""

import asyncio
import threading
import types

import pytest

from matcher.engine import Engine
from matcher.service.core import Core
from matcher.service.state import LoadedState


class GatedPersister:
    """Preparing batch 2 waits (up to 5 s) for the commit of batch 1 to have begun.

    ``sends``: commits go out from the loop (``send``, as the matcher's one-statement batches do),
    else through a thread (``execute``, as batches with extra statements do)."""

    def __init__(self, sends: bool) -> None:
        self.sends = sends
        self.commit_began = threading.Event()
        self.prepared: list[int] = []
        self.commit_of_1_began_before_2_was_prepared: bool | None = None

    def prepare(self, batch):
        self.prepared.append(len(self.prepared) + 1)
        if len(self.prepared) == 2:
            # waits without the GIL, so a commit already handed to its thread can run meanwhile
            self.commit_of_1_began_before_2_was_prepared = self.commit_began.wait(5)
        return types.SimpleNamespace(batch=batch)

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
