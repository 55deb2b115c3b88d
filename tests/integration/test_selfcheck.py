"""selfcheck's probe on a real thread and the real clocks: it reports every second, measures its
wake-up lag, and counts the CPU of the whole process (the share of the machine it gets does not
matter: the check compares with what another thread of the process used in the same second)."""

import threading
import time

from sse_perf_tool.selfcheck import ClientProbe

MS = 1_000_000  # ns


def test_the_probe_reports_every_second_and_sees_a_busy_cpu():
    """While another thread burns CPU: two seconds come, with lags that are non-negative and
    ordered, from ~100 wake-ups a second; the first second's cpu_pct is at least the CPU the
    burning thread alone used in that second (its own thread_time over the second's span), within
    a few points for the instants the probe reads its clocks at."""
    first_reading: list[int] = []

    def clock() -> int:  # the probe's default clock, remembering where its first second began
        now = time.perf_counter_ns()
        if not first_reading:
            first_reading.append(now)
        return now

    burned: list[tuple[int, int]] = []  # (perf_counter_ns, thread_time_ns) of the burning thread
    stop = threading.Event()

    def burn():
        while not stop.is_set():
            sum(range(20_000))
            burned.append((time.perf_counter_ns(), time.thread_time_ns()))

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    seconds = []
    probe = ClientProbe(seconds.append, clock=clock).start()
    try:
        deadline = time.monotonic() + 10  # a bound against a hang only
        while len(seconds) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        probe.stop()
        burner.join(5)
    assert len(seconds) >= 2
    first = seconds[0]
    assert first.lag_p50_ms is not None and first.lag_p50_ms >= 0.0
    assert first.lag_p99_ms >= first.lag_p50_ms
    assert len(probe.lags_ms) >= 50  # ~100 wake-ups a second
    start, end = first_reading[0], first.at_ns
    inside = [cpu_ns for at, cpu_ns in burned if start + 10 * MS <= at <= end]
    assert len(inside) >= 2, "the burning thread never ran during the probe's first second"
    burner_pct = 100.0 * (inside[-1] - inside[0]) / (end - start)
    assert first.cpu_pct >= burner_pct - 5.0, (first.cpu_pct, burner_pct)
    assert burner_pct > 0.0
