"""Full collections paced by the server (hyperion/collector.py): what lives long is frozen when the server is
idle, never in the middle of a rush while it can wait, and garbage frozen earlier is still found."""

from __future__ import annotations

import gc
import weakref

from hyperion.collector import CollectorPacing


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_collection_waits_for_two_idle_checks_and_never_waits_past_the_bound(settings):
    settings.GC_FULL_MIN_SECONDS, settings.GC_FULL_MAX_SECONDS = 5.0, 120.0
    busy = [True]
    clock = Clock()
    pacing = CollectorPacing(lambda: not busy[0], clock=clock)
    clock.now += 60  # old enough for an idle collection, but requests are in flight: it waits
    assert not pacing.due() and not pacing.due()
    busy[0] = False
    assert not pacing.due()  # one idle check: maybe a lull between two requests of a rush
    assert pacing.due()  # idle twice in a row
    pacing.collect()
    assert pacing.full_collections == 1 and not pacing.due()  # just collected: not again before the minimum
    busy[0] = True
    clock.now += 119
    assert not pacing.due()
    clock.now += 1  # a load that never stops still gets its full collection at the bound
    assert pacing.due()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_survivors_are_frozen_and_garbage_frozen_earlier_is_still_found():
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: only the cyclic collector can free it
    gone = weakref.ref(first)
    pacing = CollectorPacing(lambda: True, clock=Clock())
    try:
        pacing.collect()  # the cycle is alive: it survives and is frozen with everything else
        assert gc.get_freeze_count() > 0
        del first, second
        gc.collect()  # CPython's own collections no longer look at what is frozen
        assert gone() is not None
        pacing.collect()  # the next idle collection looks at everything again
        assert gone() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process goes on as it was
