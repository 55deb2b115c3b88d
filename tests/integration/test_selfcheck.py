"""selfcheck's probe on a real thread and the real clock: it reports every second and sees a busy CPU."""

import threading
import time


from sse_perf_tool.selfcheck import ClientProbe


def test_the_probe_reports_every_second_and_sees_a_busy_cpu():
    seconds = []
    probe = ClientProbe(seconds.append).start()
    stop = threading.Event()

    def burn():
        while not stop.is_set():
            sum(range(1000))

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    try:
        deadline = time.monotonic() + 6
        while len(seconds) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        probe.stop()
        burner.join(2)
    assert len(seconds) >= 2
    first = seconds[0]
    assert first.lag_p50_ms is not None and first.lag_p50_ms >= 0.0
    assert first.lag_p99_ms >= first.lag_p50_ms
    assert first.cpu_pct > 50.0  # the burning thread holds about one core
    assert len(probe.lags_ms) >= 50  # ~100 wake-ups a second
