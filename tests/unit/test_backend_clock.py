"""backends/clock.py and the ClockMap: a worker's clock onto the driver's, from scripted exchanges.

Each exchange is (t0, t1, t3): the driver's reading before, the worker's, the driver's after. The
scripts put the worker's reading anywhere within the round trip (asymmetric paths), so the true
offset is known and the estimate must stay within its own bound."""

from __future__ import annotations

from array import array

import pytest

from sse_perf_tool.backends import IDENTITY, ClockMap, translate_record
from sse_perf_tool.backends.clock import ClockSync, Sample, best_of, fit
from sse_perf_tool.records import RequestRecord

SECOND = 1_000_000_000
MS = 1_000_000


def exchange(at_ns: int, offset_ns: int, up_ns: int, down_ns: int) -> tuple[int, int, int]:
    """The driver asks at `at_ns`; the request takes up_ns to reach the worker, the answer down_ns back."""
    return at_ns, at_ns + up_ns + offset_ns, at_ns + up_ns + down_ns


def test_best_of_keeps_the_shortest_round_trip_and_bounds_the_true_offset():
    true = 3600 * SECOND + 123_456
    exchanges = [exchange(10 * SECOND, true, 4 * MS, 1 * MS),  # 5 ms, lopsided
                 exchange(11 * SECOND, true, 300_000, 100_000),  # 0.4 ms: the one kept
                 exchange(12 * SECOND, true, 2 * MS, 2 * MS)]
    sample = best_of(exchanges)
    assert sample.bound_ns == 200_000
    assert abs(sample.offset_ns - true) <= sample.bound_ns
    assert sample.at_ns == 11 * SECOND + 200_000


@pytest.mark.parametrize("up_ns,down_ns", [(0, 1 * MS), (1 * MS, 0), (250_000, 750_000), (1, 1)])
def test_any_asymmetry_stays_within_the_bound(up_ns, down_ns):
    true = -7 * SECOND
    sample = best_of([exchange(5 * SECOND, true, up_ns, down_ns)])
    assert abs(sample.offset_ns - true) <= sample.bound_ns


def test_best_of_refuses_nothing_and_a_clock_going_backwards():
    with pytest.raises(ValueError):
        best_of([])
    with pytest.raises(ValueError):
        best_of([(10, 5, 9)])


def test_fit_finds_the_drift_over_rounds_and_leaves_outliers_out():
    drift_ppm = 50.0
    base = 2 * SECOND

    def sample(t_s: float, bound_ns: int = 100_000, error_ns: int = 0) -> Sample:
        at = int(t_s * SECOND)
        return Sample(offset_ns=base + int(at * drift_ppm * 1e-6) + error_ns, bound_ns=bound_ns, at_ns=at)

    rounds = [sample(0), sample(10), sample(20), sample(25, bound_ns=50 * MS, error_ns=40 * MS), sample(30)]
    offset, drift, reference, bound = fit(rounds)
    assert drift == pytest.approx(drift_ppm, rel=0.01)
    clock = ClockMap(offset, bound, drift, reference)
    for t_s in (0, 15, 30, 40):  # between the rounds and a little past the last: within a microsecond
        at = int(t_s * SECOND)
        expected = base + int(at * drift_ppm * 1e-6)
        assert abs(clock.offset_at(at + expected) - expected) < 1_000
    assert bound <= 100_000  # the outlier's 50 ms bound is not the map's


def test_rounds_close_together_give_an_offset_and_no_drift():
    rounds = [Sample(5 * MS, 100_000, 0), Sample(5 * MS + 40_000, 80_000, SECOND // 10)]
    offset, drift, _, bound = fit(rounds)
    assert (offset, drift, bound) == (5 * MS + 40_000, 0.0, 80_000)


def test_clock_sync_rounds_update_the_map_in_place():
    """A scripted driver clock and worker: the worker runs 90 s ahead and 100 ppm fast."""
    driver = [0]

    def clock() -> int:
        driver[0] += 150_000  # each reading 0.15 ms after the last
        return driver[0]

    def worker_now() -> int:
        t = clock()
        return t + 90 * SECOND + int(t * 100e-6)

    sync = ClockSync(worker_now, clock=clock, exchanges=4)
    clock_map = sync.map
    sync.round()
    assert abs(clock_map.offset_ns - 90 * SECOND) <= clock_map.bound_ns
    assert clock_map.drift_ppm == 0.0  # one round: no drift yet
    driver[0] += 20 * SECOND
    sync.round()
    assert sync.map is clock_map  # the pool's workers hold this object
    assert clock_map.drift_ppm == pytest.approx(100.0, rel=0.05)
    worker_instant = driver[0] + 90 * SECOND + int(driver[0] * 100e-6)
    assert abs(clock_map.to_driver(worker_instant) - driver[0]) <= clock_map.bound_ns


def test_to_worker_undoes_to_driver():
    clock_map = ClockMap(offset_ns=-3600 * SECOND, bound_ns=MS, drift_ppm=80.0, reference_ns=10 * SECOND)
    for driver_ns in (0, 5 * SECOND, 10_000 * SECOND):
        assert abs(clock_map.to_driver(clock_map.to_worker(driver_ns)) - driver_ns) <= 1


def test_translate_record_moves_every_instant_and_keeps_every_duration():
    clock_map = ClockMap(offset_ns=3600 * SECOND, bound_ns=MS, drift_ppm=50.0, reference_ns=3600 * SECOND)
    sent = 3600 * SECOND + 20 * SECOND
    record = RequestRecord(7, 1, "q", "", 0.0, sent, first_byte_ns=sent + 5 * MS, first_token_ns=sent + 20 * MS,
                           first_answer_ns=sent + 30 * MS, ended_ns=sent + 900 * MS,
                           token_times_ns=array("q", [sent + 20 * MS, sent + 40 * MS, sent + 60 * MS]))
    before = (record.ttft_ms, record.e2e_ms, record.itl_ms, record.ttfb_ms)
    translate_record(record, clock_map)
    assert abs(record.sent_ns - (sent - clock_map.offset_at(sent))) == 0
    assert record.sent_ns < 100 * SECOND  # on the driver's timeline now
    assert (record.ttft_ms, record.e2e_ms, record.itl_ms, record.ttfb_ms) == before
    assert record.token_times_ns[0] == record.first_token_ns


def test_translate_record_leaves_a_record_alone_on_the_identity():
    record = RequestRecord(1, 1, "q", "", 0.0, 123, ended_ns=456, token_times_ns=array("q", [200, 300]))
    times = record.token_times_ns
    assert translate_record(record, IDENTITY) is record
    assert (record.sent_ns, record.ended_ns) == (123, 456)
    assert record.token_times_ns is times
    assert translate_record(None, ClockMap(offset_ns=5)) is None
