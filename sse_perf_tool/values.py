"""One distribution's values: exact percentiles (linear interpolation, numpy's default) and
`Values`, which keeps a distribution of any size in bounded memory.

Pure; imports only the metric registry's distribution keys. No I/O, no threads, no clock.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

from .metrics import DIST_KEYS

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], pct: float) -> Optional[float]:
    """Linear interpolation between closest ranks (numpy's default, 'linear').

    `sorted_values` must be sorted ascending. None for an empty sequence.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return float(sorted_values[0])
    rank = (n - 1) * pct / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def distribution(values: Iterable[float]) -> dict:
    """count, mean, min, p50, p90, p95, p99, max. With no values: count 0 and None elsewhere."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return {key: (0 if key == "count" else None) for key in DIST_KEYS}
    out = {"count": n, "mean": math.fsum(ordered) / n, "min": float(ordered[0])}
    for pct in PERCENTILES:
        out[f"p{pct}"] = percentile(ordered, pct)
    out["max"] = float(ordered[-1])
    return out


EXACT_LIMIT = 100_000  # values a distribution keeps exactly; beyond, they fold into log buckets
RELATIVE_STEP = 1e-4  # bucket width beyond EXACT_LIMIT: percentiles within 0.005 % of the exact value
SMALLEST_BUCKETED = 1e-6  # ms (1 ns, the clock's resolution): smaller magnitudes share its bucket
LARGEST_BUCKETED = 1e9  # ms (11.6 days): larger magnitudes share its bucket
_STAGED_KEYS = 4096  # bucket keys counted in a Counter (C speed) before they move to the dense array
_PENDING = 1024  # once folded, values wait in `exact` and are folded this many at a time


class Values:
    """The values of one distribution in bounded memory.

    Up to `exact_limit` values are kept as they are (an array of doubles), and `distribution()`
    is exactly `distribution(list_of_values)`. Beyond that they fold into a histogram of
    logarithmic buckets RELATIVE_STEP wide: count, sum, min and max stay exact, and each
    percentile is read from its bucket's centre, within RELATIVE_STEP / 2 of the exact value.
    The histogram is a dense array of counts over the buckets between the smallest and largest
    value seen (8 bytes per bucket: about 0.55 MB for values spanning 1 ms to 1 s, 1.7 MB at
    most for SMALLEST_BUCKETED to LARGEST_BUCKETED), so memory grows with the range of the values,
    never their number, and a run of millions of requests (and hundreds of millions of ITL gaps)
    keeps a flat footprint.
    """

    __slots__ = ("exact", "exact_limit", "_threshold", "buckets", "dense", "base", "negatives", "zeros", "count",
                 "total", "lo", "hi")
    _INV_LOG_STEP = 1.0 / math.log1p(RELATIVE_STEP)
    _MIN_KEY = math.floor(math.log(SMALLEST_BUCKETED) / math.log1p(RELATIVE_STEP))
    _MAX_KEY = math.floor(math.log(LARGEST_BUCKETED) / math.log1p(RELATIVE_STEP))

    def __init__(self, exact_limit: int = EXACT_LIMIT):
        from array import array

        self.exact = array("d")  # every value while exact; once folded, those not yet folded
        self.exact_limit = exact_limit
        self._threshold = exact_limit + 1  # fold when `exact` reaches this length
        self.buckets = None  # once folded: a Counter of bucket keys not yet moved to `dense`
        self.dense = None  # array of counts; index i is bucket key base + i
        self.base = 0
        self.negatives = None  # Counter of the (rare) negative values' keys
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.lo = self.hi = None

    def __len__(self) -> int:
        return len(self.exact) if self.buckets is None else self.count + len(self.exact)

    def append(self, value: float) -> None:
        exact = self.exact
        exact.append(value)
        if len(exact) >= self._threshold:
            self._fold_pending()

    def extend(self, values) -> None:
        exact = self.exact
        exact.extend(values)
        if len(exact) >= self._threshold:
            self._fold_pending()

    def _fold_pending(self) -> None:
        """Fold what waits in `exact` (all the values, the first time) into the buckets."""
        if self.exact:
            self._fold(self.exact)
            self.exact = self.exact[:0]
        self._threshold = _PENDING

    def _fold(self, values) -> None:
        from collections import Counter

        if not len(values):
            return
        if self.buckets is None:
            self.buckets = Counter()
        self.count += len(values)
        self.total += math.fsum(values)
        lo, hi = min(values), max(values)
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        inv, log, floor = self._INV_LOG_STEP, math.log, math.floor
        if lo > 0:  # the usual case, at C speed: no per-value Python code
            self.buckets.update(map(floor, map(inv.__mul__, map(log, values))))
        else:
            for value in values:  # zeros (two events in one read: a 0 ms gap) and, in principle, negatives
                if value > 0:
                    self.buckets[floor(log(value) * inv)] += 1
                elif value == 0:
                    self.zeros += 1
                else:
                    if self.negatives is None:
                        self.negatives = Counter()
                    self.negatives[floor(log(-value) * inv)] += 1
        if len(self.buckets) > _STAGED_KEYS:
            self._flush()

    def _flush(self) -> None:
        """Move the staged keys' counts into the dense array, growing it to cover them."""
        from array import array

        low_key, high_key = self._MIN_KEY, self._MAX_KEY
        staged = [(min(max(key, low_key), high_key), n) for key, n in self.buckets.items()]
        self.buckets.clear()
        if not staged:
            return
        first = min(key for key, _ in staged)
        last = max(key for key, _ in staged)
        if self.dense is None:
            self.dense, self.base = array("q", bytes(8 * (last - first + 1))), first
        else:
            if first < self.base:
                self.dense[0:0] = array("q", bytes(8 * (self.base - first)))
                self.base = first
            top = self.base + len(self.dense) - 1
            if last > top:
                self.dense.extend(array("q", bytes(8 * (last - top))))
        dense, base = self.dense, self.base
        for key, n in staged:
            dense[key - base] += n

    def bucket_count(self) -> int:
        """Buckets held (the histogram's memory is 8 bytes each); 0 while the values are exact."""
        if self.buckets is None:
            return 0
        self._fold_pending()
        self._flush()
        return len(self.dense or ()) + len(self.negatives or ())

    def distribution(self) -> dict:
        if self.buckets is None:
            return distribution(self.exact)
        self._fold_pending()
        out = {"count": self.count, "mean": self.total / self.count, "min": float(self.lo)}
        ranks = {pct: (self.count - 1) * pct / 100.0 for pct in PERCENTILES}
        wanted = sorted({math.floor(r) for r in ranks.values()} | {min(math.floor(r) + 1, self.count - 1)
                                                                    for r in ranks.values()})
        at = self._values_at(wanted)
        for pct, rank in ranks.items():
            lo_index = math.floor(rank)
            low, high = at[lo_index], at[min(lo_index + 1, self.count - 1)]
            out[f"p{pct}"] = low + (high - low) * (rank - lo_index)
        out["max"] = float(self.hi)
        return out

    def weighted(self):
        """(value, count) in ascending order: each exact value once while the values are exact,
        else each bucket's centre (within min and max) with its count. For histograms."""
        if self.buckets is None:
            for value in sorted(self.exact):
                yield value, 1
            return
        self._fold_pending()
        for value, count in self._runs():
            yield min(max(value, self.lo), self.hi), count

    def _runs(self):
        """(bucket centre, count) in ascending order of value."""
        step = self._INV_LOG_STEP
        for key in sorted(self.negatives or (), reverse=True):  # a larger magnitude is a smaller value
            yield -math.exp((key + 0.5) / step), self.negatives[key]
        if self.zeros:
            yield 0.0, self.zeros
        self._flush()
        base = self.base
        for offset, n in enumerate(self.dense or ()):
            if n:
                yield math.exp((base + offset + 0.5) / step), n

    def _values_at(self, indexes: list) -> dict:
        """The value at each sorted position (ascending indexes), from the buckets' centres."""
        out, seen, pending = {}, 0, iter(indexes)
        index = next(pending, None)
        for value, count in self._runs():
            seen += count
            while index is not None and index < seen:
                out[index] = min(max(value, self.lo), self.hi)
                index = next(pending, None)
            if index is None:
                break
        return out
