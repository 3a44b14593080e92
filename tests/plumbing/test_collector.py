"""Full garbage collections paced by the server (hyperion/collector.py): never in the middle of a rush while
they can wait, always within the bound, and CPython's own thresholds given back at shutdown."""

from __future__ import annotations

import gc

from hyperion.collector import CollectorPacing


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_collection_waits_for_two_idle_checks_and_never_waits_past_the_bound(settings):
    settings.GC_FULL_MIN_SECONDS, settings.GC_FULL_MAX_SECONDS = 10.0, 120.0
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


async def test_the_server_takes_over_full_collections_and_gives_them_back(settings):
    settings.GC_PACING = True
    before = gc.get_threshold()
    pacing = CollectorPacing(lambda: True)
    pacing.start()
    try:
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] > 10**6  # no automatic full one
    finally:
        await pacing.stop()
    assert gc.get_threshold() == before
    settings.GC_PACING = False
    off = CollectorPacing(lambda: True)
    off.start()
    assert gc.get_threshold() == before and off.task is None
    await off.stop()
