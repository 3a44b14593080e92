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


def test_collections_wait_for_two_idle_checks_and_everything_is_walked_at_the_bound(settings):
    settings.GC_FULL_MIN_SECONDS, settings.GC_FULL_MAX_SECONDS = 2.0, 120.0
    busy = [True]
    clock = Clock()
    pacing = CollectorPacing(lambda: not busy[0], clock=clock)
    clock.now += 10  # old enough for a collection, but requests are in flight: it waits
    assert pacing.due() is None and pacing.due() is None
    busy[0] = False
    assert pacing.due() is None  # one idle check: maybe a lull between two requests of a rush
    assert pacing.due() == "new"  # idle twice in a row: what is new is collected, the survivors frozen
    pacing.collect("new")
    assert pacing.freezes == 1 and pacing.due() is None  # just done: not again before the minimum
    clock.now += 100
    assert pacing.due() == "new"
    busy[0] = True
    clock.now += 10  # the bound for a walk of everything has come, in the middle of a rush: it waits...
    assert pacing.due() is None
    busy[0] = False
    pacing.due()
    assert pacing.due() == "everything"  # ...for the next quiet moment
    busy[0] = True
    pacing.collect("everything")
    clock.now += 240  # a load that never stops still gets it, at twice the bound
    assert pacing.due() == "everything"


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_survivors_are_frozen_and_garbage_frozen_earlier_is_still_found():
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: only the cyclic collector can free it
    gone = weakref.ref(first)
    pacing = CollectorPacing(lambda: True, clock=Clock())
    try:
        pacing.collect("new")  # the cycle is alive: it survives and is frozen with the rest
        assert gc.get_freeze_count() > 0
        del first, second
        gc.collect()  # CPython's own collections no longer look at what is frozen
        assert gone() is not None
        pacing.collect("new")  # a collection of what is new does not look at it either
        assert gone() is not None
        pacing.collect("everything")  # the walk of everything finds it
        assert gone() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process goes on as it was
