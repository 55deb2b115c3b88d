"""Where a run's worker processes come from: the seam between the worker pool's protocol and the
machinery that starts workers and carries their messages.

A backend launches N workers and hands back, for each, a Channel (its duplex message pipe, the
driver's end), a WorkerHandle (its liveness) and a ClockMap (its monotonic clock onto the
driver's). worker_pool.WorkerPool speaks the same protocol over every backend:

- ProcessBackend (backends/processes.py): `--processes P`, spawned processes on this machine over
  multiprocessing pipes; CLOCK_MONOTONIC is system-wide, so its clock map is the identity.
- RayBackend (backends/ray_backend.py): `--ray`, Ray actors on a cluster; each worker's clock is
  mapped by an NTP-style estimate (backends/clock.py). Imported only under --ray.

Records are stamped on the worker's clock and put on the driver's in one place,
`translate_record`, as they arrive; a duration within one record never crosses clocks.

Imports records only.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Optional, Protocol

from ..records import RequestRecord


class Channel(Protocol):
    """One worker's duplex message pipe, the driver's end."""

    def send(self, message: tuple) -> None:  # OSError (or ValueError) when broken
        ...

    def recv(self) -> tuple:  # EOFError when the worker is gone
        ...

    def close(self) -> None:
        ...


class WorkerHandle(Protocol):
    """The liveness of one worker. `where` names it in warnings and the summary."""

    exitcode: Optional[int]
    where: str

    def join(self, timeout: Optional[float] = None) -> None:
        ...

    def is_alive(self) -> bool:
        ...

    def terminate(self) -> None:
        ...


class ClockMap:
    """A worker's monotonic clock onto the driver's: driver = worker - offset(worker), where
    offset(t) = offset_ns + drift_ppm * 1e-6 * (t - reference_ns). `bound_ns` is the estimate's
    error bound (half the best round trip), None where the clocks are one (the identity).
    A resynchronisation replaces the fit in one assignment (`update`), so a reader on another
    thread sees the old fit or the new one, never half of each."""

    __slots__ = ("_fit", "bound_ns")

    def __init__(self, offset_ns: int = 0, bound_ns: Optional[int] = None, drift_ppm: float = 0.0,
                 reference_ns: int = 0):
        self._fit = (offset_ns, drift_ppm, reference_ns)
        self.bound_ns = bound_ns

    def update(self, offset_ns: int, drift_ppm: float, reference_ns: int, bound_ns: Optional[int]) -> None:
        self._fit = (offset_ns, drift_ppm, reference_ns)
        self.bound_ns = bound_ns

    @property
    def offset_ns(self) -> int:
        return self._fit[0]

    @property
    def drift_ppm(self) -> float:
        return self._fit[1]

    @property
    def reference_ns(self) -> int:
        return self._fit[2]

    @property
    def identity(self) -> bool:
        offset, drift, _ = self._fit
        return offset == 0 and drift == 0.0

    def offset_at(self, worker_ns: int) -> int:
        offset, drift, reference = self._fit
        if drift == 0.0:
            return offset
        return offset + round(drift * 1e-6 * (worker_ns - reference))

    def to_driver(self, worker_ns: int) -> int:
        return worker_ns - self.offset_at(worker_ns)

    def to_worker(self, driver_ns: int) -> int:
        """The worker instant w with to_driver(w) == driver_ns: w = d + a + b(w - r), solved for w."""
        offset, drift, reference = self._fit
        if drift == 0.0:
            return driver_ns + offset
        b = drift * 1e-6
        return reference + round((driver_ns + offset - reference) / (1 - b))

    def describe(self) -> dict:
        return {"clock_offset_ms": round(self.offset_ns / 1e6, 3),
                "clock_bound_ms": None if self.bound_ns is None else round(self.bound_ns / 1e6, 3),
                "clock_drift_ppm": round(self.drift_ppm, 3)}


IDENTITY = ClockMap()


@dataclass
class Launched:
    """One launched worker: what the pool needs of it."""

    channel: Channel
    handle: WorkerHandle
    clock: ClockMap


class Backend(Protocol):
    name: str  # "processes" | "ray"

    def launch(self, entry, count: int, api: str, settings, tokenizer: str) -> list[Launched]:
        """Start `count` workers, each running entry(conn, api, settings, tokenizer) (the pool's
        worker_main) on the far end of its channel."""
        ...

    def usable_cores(self) -> int:  # the cores the workers can use together (for the self-check)
        ...

    def describe(self) -> dict:  # for summary.json run.load
        ...

    def shutdown(self) -> None:
        ...


_INSTANTS = ("sent_ns", "first_byte_ns", "first_token_ns", "first_answer_ns", "ended_ns")


def translate_record(record: Optional[RequestRecord], clock: ClockMap) -> Optional[RequestRecord]:
    """`record`'s instants, stamped on a worker's clock, put on the driver's (in place). The
    offset is taken once, at the request's send instant, so every duration within the record is
    exactly the worker's own; only the instants move."""
    if record is None or clock.identity:
        return record
    shift = clock.offset_at(record.sent_ns)
    for name in _INSTANTS:
        value = getattr(record, name)
        if value is not None:
            setattr(record, name, value - shift)
    times = record.token_times_ns
    if times:
        record.token_times_ns = array("q", [instant - shift for instant in times])
    return record
