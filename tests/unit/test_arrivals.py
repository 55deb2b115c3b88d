"""arrivals: Poisson schedules have the right mean and variance; constant ones exact spacing."""

import itertools
import math

import pytest

from sse_perf_tool.arrivals import arrival_offsets_ns


def _gaps_s(rate, arrival, seed, n):
    offsets = list(itertools.islice(arrival_offsets_ns(rate, arrival, seed), n + 1))
    return [(b - a) / 1e9 for a, b in zip(offsets, offsets[1:])], offsets


def test_poisson_gaps_have_mean_and_variance_of_an_exponential():
    """Exponential(rate): mean 1/rate, variance 1/rate^2. With n = 20,000 gaps the sample mean's
    standard error is (1/rate)/sqrt(n); allow 4 of them. The variance's relative error is about
    sqrt(8/n) for an exponential; allow 4 of those too."""
    rate, n = 8.0, 20_000
    gaps, offsets = _gaps_s(rate, "poisson", 42, n)
    assert offsets[0] == 0
    mean = sum(gaps) / n
    var = sum((g - mean) ** 2 for g in gaps) / (n - 1)
    assert abs(mean - 1 / rate) <= 4 * (1 / rate) / math.sqrt(n)
    assert abs(var / (1 / rate**2) - 1) <= 4 * math.sqrt(8 / n)
    assert all(g >= 0 for g in gaps)


def test_poisson_counts_per_second_have_variance_equal_to_mean():
    """Index of dispersion ~1 (Poisson), unlike a constant schedule (0)."""
    rate = 20.0
    offsets = list(itertools.takewhile(lambda o: o < 2000 * 10**9, arrival_offsets_ns(rate, "poisson", 3)))
    counts = [0] * 2000
    for o in offsets:
        counts[o // 10**9] += 1
    mean = sum(counts) / len(counts)
    var = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
    assert abs(mean - rate) < 0.5
    assert 0.85 < var / mean < 1.15


def test_poisson_is_repeatable_with_a_seed_and_differs_without():
    a = list(itertools.islice(arrival_offsets_ns(5.0, "poisson", 7), 50))
    b = list(itertools.islice(arrival_offsets_ns(5.0, "poisson", 7), 50))
    c = list(itertools.islice(arrival_offsets_ns(5.0, "poisson", 8), 50))
    assert a == b and a != c


def test_constant_spacing_is_exact_and_does_not_drift():
    gaps, offsets = _gaps_s(3.0, "constant", None, 30_000)
    assert offsets[0] == 0
    assert offsets[-1] == round(30_000 * 1e9 / 3.0)
    assert max(gaps) - min(gaps) < 2e-9


@pytest.mark.parametrize("rate, arrival", [(0, "poisson"), (-1, "constant"), (1, "bursty")])
def test_bad_arguments_are_refused(rate, arrival):
    with pytest.raises(ValueError):
        next(arrival_offsets_ns(rate, arrival, 1))
