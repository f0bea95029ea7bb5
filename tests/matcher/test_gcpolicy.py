"""The matcher's garbage-collector policy (matcher.service.gcpolicy): survivors of every collection are
frozen, so no collection walks the growing state again; a full collection reclaims what was frozen."""

import asyncio
import gc
import weakref

import pytest

from matcher.service.gcpolicy import FrozenSurvivorsGC


class Node:
    pass


@pytest.fixture
def collector():
    c = FrozenSurvivorsGC(young=1000)
    c.install()
    try:
        yield c
    finally:
        c.uninstall()


def test_survivors_of_a_collection_are_frozen_and_the_older_generations_stay_empty(collector):
    frozen = gc.get_freeze_count()
    state = [Node() for _ in range(5000)]  # new state that lives on, as resting orders do
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen + len(state)
    # nothing left for the older generations to walk again (with plain thresholds they hold all of it)
    assert gc.get_objects(generation=1) == [] and gc.get_objects(generation=2) == []
    assert collector.collections >= 1 and collector.longest_pause > 0


def test_automatic_collections_freeze_too(collector):
    before = collector.collections
    state = [Node() for _ in range(5000)]  # five young thresholds' worth: collections run by themselves
    assert collector.collections > before
    assert len(gc.get_objects(generation=1)) + len(gc.get_objects(generation=2)) < len(state)


def test_a_cycle_frozen_while_alive_is_reclaimed_by_the_full_collection(collector):
    node = Node()
    node.me = node  # a reference cycle: only the collector can free it
    ref = weakref.ref(node)
    gc.collect(0)  # frozen while alive
    del node
    gc.collect()
    assert ref() is not None  # frozen objects are not walked: the cycle stays
    assert collector.full() >= 1
    assert ref() is None
    assert collector.full_collections == 1


def test_the_full_collection_waits_for_a_quiet_moment(collector):
    busy = [True]

    async def scenario():
        task = asyncio.create_task(collector.full_when_quiet(lambda: not busy[0], every=0.01, poll=0.005))
        await asyncio.sleep(0.1)
        assert collector.full_collections == 0  # due, but commands are waiting
        busy[0] = False
        for _ in range(200):
            if collector.full_collections:
                break
            await asyncio.sleep(0.005)
        task.cancel()

    asyncio.run(scenario())
    assert collector.full_collections >= 1


def test_uninstall_restores_the_defaults():
    saved = gc.get_threshold()
    c = FrozenSurvivorsGC(young=1234)
    c.install()
    assert gc.get_threshold()[0] == 1234
    c.uninstall()
    assert gc.get_threshold() == saved and gc.get_freeze_count() == 0
    assert c._after_collection not in gc.callbacks


def test_the_unreachable_objects_young_collections_find_are_counted(collector):
    """The shutdown summary says how much cyclic garbage there was (in the benchmark: five objects per
    unary gRPC call, from grpc's handler lookup; none per stream message)."""
    before = collector.collected
    for _ in range(10):
        node = Node()
        node.me = node  # garbage only the collector frees
        del node
    gc.collect(0)
    assert collector.collected >= before + 10
    assert "unreachable objects found" in collector.summary()
