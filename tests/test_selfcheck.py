"""selfcheck: the probe measures lag and CPU every second; saturation needs a sustained breach."""

import threading
import time

import pytest

from sse_perf_tool.selfcheck import LAG_LIMIT_MS, SUSTAINED_S, ClientProbe, saturation_from, usable_cores


def _rows(values):
    """values: (lag_p99_ms, cpu_pct) per second."""
    return [{"second": i, "client.lag_p99_ms": lag, "client.cpu_pct": cpu} for i, (lag, cpu) in enumerate(values)]


def test_a_sustained_lag_breach_marks_its_first_second():
    rows = _rows([(1, 10), (9, 10), (1, 10), (8, 10), (7, 10), (6, 10), (1, 10)])
    assert saturation_from(rows, cores=1) == 3


def test_short_spikes_are_not_saturation():
    rows = _rows([(1, 10), (50, 10), (50, 10), (1, 10), (50, 95), (1, 10)])
    assert saturation_from(rows, cores=1) is None


def test_cpu_above_90_percent_of_the_usable_cores_is_saturation():
    assert saturation_from(_rows([(1, 95)] * SUSTAINED_S), cores=1) == 0
    assert saturation_from(_rows([(1, 95)] * 5), cores=2) is None  # 95% of 200%
    assert saturation_from(_rows([(1, 185)] * 5), cores=2) == 0


def test_a_short_run_saturated_throughout_counts_and_missing_values_do_not():
    assert saturation_from(_rows([(LAG_LIMIT_MS + 1, 10)] * 2), cores=1) == 0
    assert saturation_from(_rows([(None, None)] * 10), cores=1) is None
    assert saturation_from([], cores=1) is None


def test_usable_cores_is_capped_by_processes():
    assert usable_cores(1) == 1
    assert 1 <= usable_cores(64) <= 64


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


def test_the_summary_section_has_the_contract_fields():
    probe = ClientProbe(lambda s: None)
    probe.lags_ms.extend([0.1] * 98 + [20.0, 30.0])
    client = probe.summary(_rows([(20, 40), (25, 50), (30, 60)]))
    assert set(client) >= {"lag_ms_p50", "lag_ms_p99", "cpu_pct_mean", "cpu_pct_max", "saturated_from_s"}
    assert client["lag_ms_p50"] == pytest.approx(0.1) and client["lag_ms_p99"] > 19
    assert client["cpu_pct_mean"] == pytest.approx(50.0) and client["cpu_pct_max"] == 60
    assert client["saturated_from_s"] == 0
