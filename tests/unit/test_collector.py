"""The garbage collector's settings for the load (collector.py): frozen and a higher first
threshold inside, exactly as before outside, nested blocks sharing the outermost one's, and put
back when the block fails."""

from __future__ import annotations

import gc

import pytest

from sse_perf_tool import collector


def test_the_load_freezes_what_was_there_and_raises_the_first_threshold_then_puts_both_back():
    before = gc.get_threshold()
    kept = [[] for _ in range(100)]  # containers made before the load
    assert gc.get_freeze_count() == 0
    with collector.for_the_load():
        assert gc.get_threshold() == (collector.GEN0_THRESHOLD, before[1], before[2])
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)
        with collector.for_the_load():  # a worker's load inside a run's: one setting for both
            assert gc.get_threshold()[0] == collector.GEN0_THRESHOLD and gc.get_freeze_count() == frozen
        assert gc.get_threshold()[0] == collector.GEN0_THRESHOLD  # still the outer load's
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # collectable again
    del kept


def test_a_failing_load_puts_the_collector_back():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError):
        with collector.for_the_load():
            raise RuntimeError("the run failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_garbage_made_during_the_load_is_still_collected():
    class Node:
        pass

    import weakref

    with collector.for_the_load():
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
