"""Open-loop arrival schedules: when each request is due, as offsets from the start.

Pure and seeded: never reads a clock, imports nothing from the package.
"""

from __future__ import annotations

import random
from typing import Iterator, Optional

ARRIVALS = ("poisson", "constant")
_NS = 1_000_000_000


def arrival_offsets_ns(rate: float, arrival: str = "poisson", seed: Optional[int] = None) -> Iterator[int]:
    """Endless offsets (integer ns after the start) of requests arriving at `rate` per second.

    `poisson`: exponential gaps with mean 1/rate (a Poisson process, as vLLM's bench serve and
    GuideLLM send); `constant`: exactly 1/rate apart. The first request is due at 0. Offsets are
    accumulated in float seconds and rounded once, so constant spacing does not drift.
    """
    if rate <= 0:
        raise ValueError(f"rate must be greater than 0 (got {rate})")
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)} (got {arrival!r})")
    if arrival == "constant":
        index = 0
        while True:
            yield round(index * _NS / rate)
            index += 1
    rng = random.Random(f"{seed}:arrivals")
    at_s = 0.0
    while True:
        yield round(at_s * _NS)
        at_s += rng.expovariate(rate)
