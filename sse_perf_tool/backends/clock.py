"""A worker's clock offset, estimated the way NTP does over the channel the backend already has.

One exchange: the driver reads its clock (t0), asks the worker for its clock (t1), reads its own
again (t3). If the worker's reading was taken halfway, offset = t1 - (t0 + t3) / 2; wherever it was
taken within the round trip, the true offset is within (t3 - t0) / 2 of that: the bound. A round
makes several exchanges and keeps the one with the shortest round trip (the tightest bound). Rounds
repeat during a run; the offset's drift is fitted over the last rounds (least squares), so that
records between two rounds are mapped with the offset of their own instant.

Pure apart from the clock and the worker call it is given (both injectable: tests script them).
Imports the backends' ClockMap only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from . import ClockMap

EXCHANGES = 8  # per round; the shortest round trip is kept
KEEP_ROUNDS = 6  # the drift is fitted over these
MIN_FIT_SPAN_NS = 1_000_000_000  # rounds closer together than this give no drift (offset only)
OUTLIER_FACTOR = 4  # a round whose bound is this many times the best one kept is left out of the fit


@dataclass(frozen=True)
class Sample:
    """One round's result: offset = worker - driver, its bound, and the driver instant it holds at."""

    offset_ns: int
    bound_ns: int
    at_ns: int  # the driver's midpoint of the exchange kept

    @property
    def worker_at_ns(self) -> int:
        return self.at_ns + self.offset_ns


def best_of(exchanges: list[tuple[int, int, int]]) -> Sample:
    """The sample of the exchange (t0, t1, t3) with the shortest round trip."""
    if not exchanges:
        raise ValueError("no clock exchange to estimate from")
    t0, t1, t3 = min(exchanges, key=lambda e: e[2] - e[0])
    if t3 < t0:
        raise ValueError("the driver's clock went backwards during an exchange")
    middle = t0 + (t3 - t0) // 2
    return Sample(offset_ns=t1 - middle, bound_ns=(t3 - t0 + 1) // 2, at_ns=middle)


def fit(samples: list[Sample]) -> tuple[int, float, int, int]:
    """(offset_ns at the reference, drift in ppm, reference on the worker's clock, bound_ns) from
    the rounds so far: the latest round's offset where they span too short a time for a drift;
    else the least-squares line through the rounds that are not outliers."""
    latest = samples[-1]
    best_bound = min(s.bound_ns for s in samples)
    kept = [s for s in samples if s.bound_ns <= max(1, best_bound) * OUTLIER_FACTOR] or [latest]
    reference = kept[-1].worker_at_ns
    span = kept[-1].at_ns - kept[0].at_ns
    if len(kept) < 2 or span < MIN_FIT_SPAN_NS:
        return kept[-1].offset_ns, 0.0, reference, kept[-1].bound_ns
    xs = [s.worker_at_ns - reference for s in kept]
    ys = [s.offset_ns for s in kept]
    n = len(kept)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    offset_at_reference = round(mean_y - slope * mean_x)
    return offset_at_reference, slope * 1e6, reference, max(s.bound_ns for s in kept[-2:])


class ClockSync:
    """Rounds of exchanges with one worker, folded into its ClockMap (updated in place)."""

    def __init__(self, worker_now: Callable[[], int], clock: Callable[[], int] = time.perf_counter_ns,
                 exchanges: int = EXCHANGES, keep: int = KEEP_ROUNDS):
        self.worker_now = worker_now
        self.clock = clock
        self.exchanges = exchanges
        self.keep = keep
        self.samples: list[Sample] = []
        self.map = ClockMap(bound_ns=None)
        self.same_clock = False  # a backend found the worker on this machine's clock: no rounds needed

    def round(self) -> Sample:
        """One round: `exchanges` exchanges, the best kept; the map is refitted."""
        exchanges = []
        for _ in range(self.exchanges):
            t0 = self.clock()
            t1 = self.worker_now()
            t3 = self.clock()
            exchanges.append((t0, t1, t3))
        sample = best_of(exchanges)
        self.samples = (self.samples + [sample])[-self.keep:]
        offset, drift, reference, bound = fit(self.samples)
        self.map.update(offset, drift, reference, bound)
        return sample

    @property
    def bound_ns(self) -> Optional[int]:
        return self.map.bound_ns
