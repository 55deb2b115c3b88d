"""What every telemetry source shares: the Sample value, TelemetryError, and the Sampler thread.

Imports nothing from the rest of sse_perf_tool. A sampler owns one daemon thread and hands each
tick's batch of samples to a sink; it never touches statistics or output files.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

_NS = 1_000_000_000

Sink = Callable[[list["Sample"]], None]


class TelemetryError(Exception):
    """A source the user asked for cannot work. The message is one clear line naming the option
    and the source; the CLI prints it and exits 2 before any request is sent."""


@dataclass(slots=True)
class Sample:
    """One reading of one GPU (or one scrape of server metrics).

    `at_ns` is time.perf_counter_ns() when the reading was taken (for a remote GPU: when its
    line arrived), the same clock as the request records. `values` hold None where the metric
    is not supported or could not be read: "not measured", never 0.
    """

    source: str  # "local", "ssh://h1", "ssh://h1:2222", or "server"
    index: Optional[int]  # GPU index; None for server metrics
    at_ns: int
    values: dict[str, Optional[float]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Column prefix: "gpu[local:0]", "gpu[ssh://h1:1]"; "server" for server metrics."""
        if self.index is None:
            return self.source
        return f"gpu[{self.source}:{self.index}]"


class Sampler:
    """Base class: `preflight()` before the run, `start(sink)` spawns one daemon thread,
    `stop()` ends it promptly. Problems during the run never raise into the caller: they are
    collected as one-line messages in `warnings` (disconnects, reconnects, gaps).

    Subclasses either implement `_tick()` (one batch per interval, run by the loop here) or
    override `_run()` for a source that pushes data itself (nvidia-smi over SSH).
    """

    source: str = ""
    _join_timeout_s = 1.5

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._sink: Optional[Sink] = None
        self.interval_s = 1.0

    # -- public --
    def preflight(self) -> None:
        """Raise TelemetryError when this source cannot work. Default: nothing to check."""

    def start(self, sink: Sink, interval_s: float = 1.0) -> None:
        if self._thread is not None:
            raise RuntimeError(f"telemetry sampler {self.source} already started")
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._sink = sink
        self.interval_s = float(interval_s)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run_guarded, name=f"sse-perf-telemetry {self.source}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread within about a second (every wait in the loops watches the stop
        event; network waits are interrupted by closing their sockets), then releases the
        source. Safe to call more than once, and without start()."""
        self._stop.set()
        self._interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # A scrape or read already in flight may outlive this; the daemon thread then
            # ends on its own and hands nothing more to the sink.
            thread.join(timeout=self._join_timeout_s)
        self._close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- for subclasses --
    def _warn(self, message: str) -> None:
        """list.append is atomic under the GIL: the sampling thread appends, the caller reads."""
        self.warnings.append(f"{self.source}: {message}")

    def _emit(self, batch: list[Sample]) -> None:
        if batch and self._sink is not None and not self._stop.is_set():
            self._sink(batch)

    def _tick(self) -> list[Sample]:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Called from stop() in the caller's thread: unblock network waits (close sockets)."""

    def _close(self) -> None:
        """Called from stop() after the thread ended: release the library or connection."""

    def _run(self) -> None:
        """One `_tick()` per interval on an absolute schedule; ticks missed because a tick ran
        long are skipped, not bunched up."""
        interval_ns = int(self.interval_s * _NS)
        next_ns = time.perf_counter_ns()
        while not self._stop.is_set():
            self._emit(self._tick())
            next_ns += interval_ns
            now = time.perf_counter_ns()
            if next_ns <= now:  # fell behind: skip to the next tick from now
                next_ns = now + interval_ns - (now - next_ns) % interval_ns
            self._stop.wait((next_ns - now) / _NS)

    def _run_guarded(self) -> None:
        """A bug in a sampler or in the sink must not pass silently: it ends this sampler with
        a warning that names the exception, and the run goes on without this source."""
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported in warnings, not swallowed
            self._warn(f"sampling stopped by an internal error: {type(exc).__name__}: {exc}")
