"""The load generator checks itself: a probe thread measures how late a 10 ms sleep wakes up
(scheduling lag: GIL and CPU contention), the process's CPU use and the machine's load, once a second.

Imports nothing from the package. The verdicts (`breach`, `saturation_from`, `machine_busy_from`)
are pure functions, so the rules are tested without threads: lag while sse-perf itself is busy
means the tool is the limit; lag while it is nearly idle means other processes took the CPU.
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from dataclasses import dataclass
from typing import Callable, Optional

PROBE_SLEEP_S = 0.010
LAG_LIMIT_MS = 5.0  # lag p99 above this: timings carry the client's own delay
CPU_LIMIT_FRACTION = 0.90  # of the cores the process can use
OWN_CPU_FRACTION = 0.50  # lag with sse-perf's own CPU below this share of its cores ...
OTHERS_CPU_FRACTION = 0.50  # ... while other processes use at least this share of the machine: it is busy
SUSTAINED_S = 3  # a breach must last this many seconds in a row
_NS = 1_000_000_000


def usable_cores(processes: int = 1) -> int:
    """Cores the process may run on, capped by the number of processes: threads of one Python
    process share one interpreter lock, so one process uses about one core for Python code."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, processes))


@dataclass
class ClientSecond:
    """One second of the probe: lag percentiles (ms) and CPU use (percent of one core)."""

    at_ns: int
    lag_p50_ms: Optional[float]
    lag_p99_ms: Optional[float]
    cpu_pct: Optional[float]
    load_avg: Optional[float] = None  # the machine's 1-minute load average (runnable processes)
    machine_cpu_pct: Optional[float] = None  # every process's CPU, percent of one core (/proc/stat)


def machine_cpu_times() -> Optional[tuple]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux /proc/stat), or None.
    Steal time counts as busy: a hypervisor that takes the CPU is other work too."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    try:
        ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    except ValueError:
        return None
    idle = ticks[3] + ticks[4]
    total = sum(ticks)
    return total - idle, total


def machine_load() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_cores() -> int:
    return os.cpu_count() or 1


def _percentile(sorted_values, pct: float) -> Optional[float]:
    n = len(sorted_values)
    if n == 0:
        return None
    rank = (n - 1) * pct / 100.0
    lo = int(rank)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


class ClientProbe:
    """One daemon thread: sleeps 10 ms in a loop, measures each wake-up's lateness, and hands a
    ClientSecond to `sink` every second. Keeps every lag value (100 per second, 8 bytes each) for
    the run's percentiles."""

    def __init__(self, sink: Callable[[ClientSecond], None], clock: Callable[[], int] = time.perf_counter_ns,
                 cpu_clock: Callable[[], float] = time.process_time,
                 other_lags: Optional[Callable[[], list]] = None):
        """`cpu_clock`: CPU seconds of the whole load generator (with --processes, this process plus
        its workers). `other_lags`: lag samples (ms) taken elsewhere since the last call (the worker
        processes' own probes); they count in each second's percentiles and the run's."""
        self.sink = sink
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.other_lags = other_lags
        self.lags_ms = array("d")
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "ClientProbe":
        self._thread = threading.Thread(target=self._run, name="sse-perf-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        clock, cpu_clock = self.clock, self.cpu_clock
        second_start, cpu_start = clock(), cpu_clock()
        machine_start, cores = machine_cpu_times(), machine_cores()
        lags: list[float] = []
        while not self._stop.is_set():
            before = clock()
            time.sleep(PROBE_SLEEP_S)
            after = clock()
            lag_ms = max(0.0, (after - before) / 1e6 - PROBE_SLEEP_S * 1000)
            lags.append(lag_ms)
            self.lags_ms.append(lag_ms)
            if after - second_start >= _NS:
                if self.other_lags is not None:
                    others = self.other_lags()
                    lags.extend(others)
                    self.lags_ms.extend(others)
                cpu_now = cpu_clock()
                cpu_pct = 100.0 * (cpu_now - cpu_start) / ((after - second_start) / _NS)
                ordered = sorted(lags)
                machine_now = machine_cpu_times()
                machine_pct = None
                if machine_start is not None and machine_now is not None and machine_now[1] > machine_start[1]:
                    machine_pct = 100.0 * cores * (machine_now[0] - machine_start[0]) / (machine_now[1] - machine_start[1])
                self.sink(ClientSecond(after, _percentile(ordered, 50), _percentile(ordered, 99), cpu_pct,
                                       machine_load(), machine_pct))
                second_start, cpu_start, lags, machine_start = after, cpu_now, [], machine_now

    def summary(self, seconds: list[dict], processes: int = 1) -> dict:
        """The summary's `client` section; `seconds` are timeseries rows with the client columns."""
        ordered = sorted(self.lags_ms)
        cpu = [row["client.cpu_pct"] for row in seconds if row.get("client.cpu_pct") is not None]
        load = [row["client.load_avg"] for row in seconds if row.get("client.load_avg") is not None]
        machine = [row["client.machine_cpu_pct"] for row in seconds if row.get("client.machine_cpu_pct") is not None]
        cores = usable_cores(processes)
        return {
            "lag_ms_p50": _percentile(ordered, 50),
            "lag_ms_p99": _percentile(ordered, 99),
            "cpu_pct_mean": sum(cpu) / len(cpu) if cpu else None,
            "cpu_pct_max": max(cpu) if cpu else None,
            "cores_usable": cores,
            "saturated_from_s": saturation_from(seconds, cores),
            "machine_busy_from_s": machine_busy_from(seconds, cores),
            "load_avg_max": max(load) if load else None,
            "machine_cpu_pct_max": max(machine) if machine else None,
            "machine_cores": machine_cores(),
            # the most the other processes took in one second, as a share of every CPU of the machine
            "others_cpu_pct_max": _others_share(seconds),
        }


def per_worker(workers: list) -> list[dict]:
    """The self-check of each worker process on its own (one process: one core's worth of Python):
    `workers` holds (what names it, its seconds as rows with client.lag_p99_ms and client.cpu_pct).
    Each entry: that name, its worst second's lag p99, its mean CPU, and the first of SUSTAINED_S
    seconds in a row in which it was the limit (None if never: a worker's few seconds of a short
    run, busy while the others start, are not a verdict)."""
    out = []
    for info, rows in workers:
        lags = [row["client.lag_p99_ms"] for row in rows if row.get("client.lag_p99_ms") is not None]
        cpu = [row["client.cpu_pct"] for row in rows if row.get("client.cpu_pct") is not None]
        out.append(dict(info, lag_ms_p99_max=max(lags) if lags else None,
                        cpu_pct_mean=sum(cpu) / len(cpu) if cpu else None,
                        saturated_from_s=_sustained_from(rows, 1, "client", 1, short_counts=False)))
    return out


def breach(lag_p99_ms: Optional[float], cpu_pct: Optional[float], cores: int,
           machine_cpu_pct: Optional[float] = None, machine_cores: Optional[int] = None,
           load_avg: Optional[float] = None) -> Optional[str]:
    """What one second says: "client" when sse-perf itself is the limit (its CPU near its usable
    cores, or scheduling lag not explained by other work), "machine" when the lag came while sse-perf
    used little CPU and other processes used much of the machine (its CPU from /proc/stat less
    ours; where that is unknown, a load average of at least one per core), None when clean."""
    if cpu_pct is not None and cpu_pct > CPU_LIMIT_FRACTION * 100.0 * cores:
        return "client"
    if lag_p99_ms is None or lag_p99_ms <= LAG_LIMIT_MS:
        return None
    if cpu_pct is not None and cpu_pct < OWN_CPU_FRACTION * 100.0 * cores:
        all_cores = machine_cores or 1
        if machine_cpu_pct is not None:
            if machine_cpu_pct - cpu_pct >= OTHERS_CPU_FRACTION * 100.0 * all_cores:
                return "machine"
        elif load_avg is not None and load_avg >= all_cores:
            return "machine"
    return "client"


def row_breach(row: dict, cores: int, all_cores: Optional[int] = None) -> Optional[str]:
    """`breach` for a timeseries row (its client.* columns)."""
    return breach(row.get("client.lag_p99_ms"), row.get("client.cpu_pct"), cores, row.get("client.machine_cpu_pct"),
                  all_cores or machine_cores(), row.get("client.load_avg"))


def saturation_from(seconds: list[dict], cores: int, all_cores: Optional[int] = None) -> Optional[int]:
    """The first second of the first SUSTAINED_S seconds in a row in which sse-perf itself was the
    limit (`breach` "client"; a shorter run counts when it breached throughout); None if never."""
    return _sustained_from(seconds, cores, "client", all_cores)


def machine_busy_from(seconds: list[dict], cores: int, all_cores: Optional[int] = None) -> Optional[int]:
    """As saturation_from, for seconds of lag while other processes took the CPU (`breach` "machine")."""
    return _sustained_from(seconds, cores, "machine", all_cores)


def _sustained_from(seconds: list[dict], cores: int, kind: str, all_cores: Optional[int],
                    short_counts: bool = True) -> Optional[int]:
    streak_start, streak = None, 0
    for row in seconds:
        if row_breach(row, cores, all_cores) == kind:
            if streak == 0:
                streak_start = row["second"]
            streak += 1
            if streak >= SUSTAINED_S:
                return streak_start
        else:
            streak = 0
    if short_counts and streak and streak == len(seconds):  # a run shorter than SUSTAINED_S, saturated throughout
        return streak_start
    return None


def _others_share(seconds: list[dict]):
    """Max over the seconds of (the machine's busy CPU - sse-perf's own) / the machine's CPUs, in %."""
    cores = machine_cores() or 1
    shares = [max(0.0, row["client.machine_cpu_pct"] - (row.get("client.cpu_pct") or 0.0)) / cores
              for row in seconds if row.get("client.machine_cpu_pct") is not None]
    return max(shares) if shares else None
