"""The matcher's garbage-collector policy: short young collections, survivors frozen, a rare full one.

Reference counting frees almost everything the matcher allocates (events, results, rows, requests).
The cyclic collector still runs, and its pauses land straight in the latency of every command in
flight. With Python's default thresholds (700, 10, 10) it ran every ~200 commands, and full
collections walked the whole book: ~15 us per command in all and pauses of ~150 ms with a
2,000-order book. A young-generation collection walks every tracked object allocated since the
previous one that is still alive. With an order book that keeps growing, that is mostly new state
(resting orders, their cached row texts) that lives on, so the pause grows with the threshold:
~45 ms per collection at a threshold of 50,000 (measured at 5,000 commands/s). The older
generations then walk those same objects again, for longer.

The policy:

- The young generation is collected every ``young`` net allocations: a pause of about a millisecond.
- After every collection its survivors are frozen (``gc.freeze``): no later collection walks them
  again, so the older generations stay nearly empty and their collections cost nothing.
- The price is that an object frozen while alive is never collected if it later becomes part of an
  unreachable cycle; reference counting still frees everything else. The matcher's state does not
  do that: an order leaves the book unlinked, and its reference count frees it. In the benchmark
  (``bench/matcher_e2e.py``), fewer than 100 objects that were not engine state were found in frozen
  cycles after ~100 collections. As a safety net, ``full_when_quiet`` unfreezes everything and runs a
  full collection every ``FULL_EVERY`` seconds, at a moment when no command is waiting. It walks the
  whole state: 120-150 ms with ~40,000 resting orders (measured), once an hour.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("matcher")

#: young-generation threshold. At 5,000 commands/s on the 2-core machine (bench/matcher_e2e.py, 15 s of
#: phase 2): 394-471 collections per run, 156-203 ms in all, the longest 2.7-5.4 ms; with 5,000 there, in
#: the same four pairs of runs, 64-77 collections, 185-229 ms in all, the longest 8.1-10.7 ms. Without
#: gRPC (bench/commit_cost.py, ~120,000 commands) the total rises, 107 against 59 ms (~0.4 us per
#: command), the longest 1.6 against 6.4 ms. The pauses, which every command in flight waits out, are
#: what counts for latency (docs/matcher.md, fifth round).
YOUNG = 1_000
#: seconds between full collections (unfreeze, collect, freeze) at a quiet moment
FULL_EVERY = 3600.0


class FrozenSurvivorsGC:
    """Installed once per process by the matcher (``install``); ``uninstall`` restores the defaults."""

    def __init__(self, young: int = YOUNG) -> None:
        self.young = young
        self.collections = 0
        self.full_collections = 0
        #: unreachable objects the young collections found (cyclic garbage that reference counting missed)
        self.collected = 0
        #: time spent in collections (seconds), and the longest pause, for the shutdown log
        self.pause_seconds = 0.0
        self.longest_pause = 0.0
        self._started = 0.0
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        gc.collect()
        gc.freeze()  # the state loaded at start-up
        self._saved = gc.get_threshold()
        # older generations: survivors are frozen at once, so they hold almost nothing to walk
        gc.set_threshold(self.young, 10, 10)
        gc.callbacks.append(self._after_collection)

    def uninstall(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
        gc.unfreeze()

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        gc.freeze()
        self.collections += 1
        self.collected += info.get("collected", 0)
        pause = time.perf_counter() - self._started
        self.pause_seconds += pause
        self.longest_pause = max(self.longest_pause, pause)

    def summary(self) -> str:
        return (f"{self.collections} garbage collections, {self.pause_seconds * 1000:.0f} ms in all, longest "
                f"{self.longest_pause * 1000:.1f} ms, {self.collected} unreachable objects found; "
                f"{self.full_collections} full")

    def full(self) -> int:
        """Collect everything, frozen objects included; returns how many unreachable objects were found."""
        t0 = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.full_collections += 1
        log.info("full garbage collection: %d unreachable objects, %.0f ms", found,
                 (time.perf_counter() - t0) * 1000)
        return found

    async def full_when_quiet(self, quiet: Callable[[], bool], every: float = FULL_EVERY,
                              poll: float = 0.01) -> None:
        """Every ``every`` seconds, run ``full`` at the first moment ``quiet()`` holds (checked each ``poll``)."""
        while True:
            await asyncio.sleep(every)
            while not quiet():
                await asyncio.sleep(poll)
            self.full()
