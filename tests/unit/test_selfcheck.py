"""selfcheck: the probe measures lag and CPU every second; saturation needs a sustained breach;
the lags and CPU of --processes workers merge into the probe's seconds (scripted clocks)."""

import threading

import pytest

from sse_perf_tool.selfcheck import (LAG_LIMIT_MS, SUSTAINED_S, ClientProbe, breach, machine_busy_from, saturation_from,
                                     usable_cores)
from waiting import wait_until


def _rows(values, machine=None):
    """values: (lag_p99_ms, cpu_pct) per second; `machine`: the whole machine's CPU (% of one core) each second."""
    return [{"second": i, "client.lag_p99_ms": lag, "client.cpu_pct": cpu, "client.machine_cpu_pct": machine}
            for i, (lag, cpu) in enumerate(values)]


def test_a_sustained_lag_breach_while_busy_marks_its_first_second():
    rows = _rows([(1, 60), (9, 60), (1, 60), (8, 60), (7, 70), (6, 80), (1, 60)])
    assert saturation_from(rows, cores=1) == 3
    assert machine_busy_from(rows, cores=1) is None


def test_lag_while_sse_perf_is_nearly_idle_is_a_busy_machine_not_saturation():
    """Issue 13: the lag came from other processes (sse-perf at 1.6-2.4 % CPU): that is 'machine
    busy', never 'use fewer threads'."""
    rows = _rows([(1, 2), (9, 2), (1, 2), (8, 2.4), (7, 1.6), (6, 2), (1, 2)], machine=190.0)
    assert saturation_from(rows, cores=1, all_cores=2) is None
    assert machine_busy_from(rows, cores=1, all_cores=2) == 3
    quiet = _rows([(1, 2), (9, 2), (1, 2), (8, 2.4), (7, 1.6), (6, 2), (1, 2)], machine=20.0)
    assert machine_busy_from(quiet, cores=1, all_cores=2) is None  # lag not explained by other work


def test_breach_tells_the_causes_apart():
    assert breach(1.0, 10.0, cores=1) is None
    assert breach(None, None, cores=1) is None
    assert breach(1.0, 95.0, cores=1) == "client"  # CPU near the usable core, even without lag
    assert breach(20.0, 60.0, 1, 190.0, 2) == "client"  # lag while sse-perf is busy: its own threads
    assert breach(20.0, 10.0, 1, 190.0, 2) == "machine"  # lag while sse-perf idles and others fill the machine
    assert breach(20.0, 10.0, 1, 40.0, 2) == "client"  # lag while the machine idles too: not others' doing
    assert breach(20.0, 60.0, 2, 300.0, 4) == "machine"  # 60 % of two usable cores is little
    assert breach(20.0, 10.0, 1, None, 2, load_avg=3.5) == "machine"  # no /proc/stat: the load says it
    assert breach(20.0, 10.0, 1, None, 2, load_avg=0.5) == "client"
    assert breach(20.0, None, cores=1) == "client"  # CPU unknown: the tool is not cleared


def test_short_spikes_are_not_saturation():
    rows = _rows([(1, 10), (50, 60), (50, 60), (1, 10), (50, 95), (1, 10)])
    assert saturation_from(rows, cores=1) is None


def test_cpu_above_90_percent_of_the_usable_cores_is_saturation():
    assert saturation_from(_rows([(1, 95)] * SUSTAINED_S), cores=1) == 0
    assert saturation_from(_rows([(1, 95)] * 5), cores=2) is None  # 95% of 200%
    assert saturation_from(_rows([(1, 185)] * 5), cores=2) == 0


def test_a_short_run_saturated_throughout_counts_and_missing_values_do_not():
    assert saturation_from(_rows([(LAG_LIMIT_MS + 1, 60)] * 2), cores=1) == 0
    assert saturation_from(_rows([(None, None)] * 10), cores=1) is None
    assert saturation_from([], cores=1) is None


def test_usable_cores_is_capped_by_processes():
    assert usable_cores(1) == 1
    assert 1 <= usable_cores(64) <= 64


def test_the_summary_section_has_the_contract_fields():
    probe = ClientProbe(lambda s: None)
    probe.lags_ms.extend([0.1] * 98 + [20.0, 30.0])
    client = probe.summary(_rows([(20, 50), (25, 60), (30, 70)]))
    assert set(client) >= {"lag_ms_p50", "lag_ms_p99", "cpu_pct_mean", "cpu_pct_max", "saturated_from_s",
                           "machine_busy_from_s", "load_avg_max", "machine_cpu_pct_max", "machine_cores"}
    assert client["lag_ms_p50"] == pytest.approx(0.1) and client["lag_ms_p99"] > 19
    assert client["cpu_pct_mean"] == pytest.approx(60.0) and client["cpu_pct_max"] == 70
    assert client["saturated_from_s"] == 0 and client["machine_busy_from_s"] is None


# -- the self-check merges the lags and CPU of --processes workers ------------------------------


class SteppingClock:
    """The probe's clock: 0, then (k s, k s + 10 ms) for k = 1, 2, ...: every 10 ms sleep measures
    exactly 10 ms (own lag 0) and every loop closes one probe second."""

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            n, self.calls = self.calls, self.calls + 1
        if n == 0:
            return 0
        k = (n + 1) // 2
        return k * 1_000_000_000 + (0 if n % 2 else 10_000_000)


class CpuClock:
    """CPU seconds of the 'whole load generator': 0.5 s more at every call."""

    def __init__(self):
        self.value = 0.0

    def __call__(self) -> float:
        self.value += 0.5
        return self.value


def _probe_seconds(other_lags):
    seconds: list = []
    probe = ClientProbe(seconds.append, clock=SteppingClock(), cpu_clock=CpuClock(), other_lags=other_lags)
    probe.start()
    try:
        assert wait_until(lambda: len(seconds) >= 3, 3.0), seconds  # a bound against a hang: the loop runs on the scripted clock
    finally:
        probe.stop()
    return probe, seconds


def test_the_workers_lags_count_in_each_second_and_in_the_summary():
    """other_lags' samples join the probe's own: a second whose own lag is 0 ms but whose workers
    reported 99 samples of 50 ms has p50 = p99 = 50 ms, the next second (no worker samples) is back
    to 0, and the run's lag p99 in the summary includes the workers' samples."""
    calls = []

    def other_lags():
        calls.append(1)
        return [50.0] * 99 if len(calls) == 1 else []

    probe, seconds = _probe_seconds(other_lags)
    assert calls, "other_lags was never asked"
    first, second = seconds[0], seconds[1]
    assert first.lag_p50_ms == 50.0 and first.lag_p99_ms == 50.0
    assert second.lag_p50_ms == 0.0 and second.lag_p99_ms == 0.0
    summary = probe.summary([], processes=3)
    assert summary["lag_ms_p99"] == 50.0
    assert summary["cores_usable"] == usable_cores(3)


def test_without_other_lags_only_the_probes_own_samples_count():
    """The control for the test above: the same clock without other_lags gives 0 ms everywhere."""
    probe, seconds = _probe_seconds(None)
    assert all(s.lag_p99_ms == 0.0 for s in seconds)
    assert probe.summary([])["lag_ms_p99"] == 0.0


def test_cpu_percent_comes_from_the_given_cpu_clock():
    """cpu_clock is the whole load generator's CPU (this process plus the workers): each second's
    cpu_pct is its CPU seconds over the second's length (0.5 s per 1.01 s, then per 1.00 s)."""
    _, seconds = _probe_seconds(lambda: [])
    assert seconds[0].cpu_pct == pytest.approx(100 * 0.5 / 1.01)
    assert seconds[1].cpu_pct == pytest.approx(50.0)
    assert seconds[2].cpu_pct == pytest.approx(50.0)


def test_a_busy_machine_is_said_with_the_share_of_its_cpus_other_processes_took(monkeypatch):
    """Lag while sse-perf idles: the final line names what the other processes used, as a share of
    every CPU of the machine (not sse-perf's fault)."""
    from sse_perf_tool import live, selfcheck

    monkeypatch.setattr(selfcheck, "machine_cores", lambda: 4)
    rows = [{"second": k, "client.cpu_pct": 5.0, "client.machine_cpu_pct": 365.0, "client.lag_p99_ms": 40.0}
            for k in range(3)]
    assert selfcheck._others_share(rows) == 90.0
    text = " ".join(live._client_lines({"lag_ms_p50": 1.0, "lag_ms_p99": 40.0, "cpu_pct_mean": 5.0, "cpu_pct_max": 5.0,
                                        "cores_usable": 1, "machine_busy_from_s": 1, "machine_cores": 4,
                                        "load_avg_max": 3.9, "others_cpu_pct_max": 90.0},
                                       live.SUMMARY_LABELS["en"]))
    assert "other processes used up to 90% of its 4 CPUs" in text and "sse-perf used little" in text


def test_each_worker_is_judged_on_its_own_core():
    """A worker whose one process ran at 95 % of its core for three seconds was the limit from the
    first of them; one at 30 % with a short lag was not; one with no reports has no verdict."""
    from sse_perf_tool.selfcheck import per_worker

    busy = [{"second": s, "client.lag_p99_ms": 2.0, "client.cpu_pct": cpu} for s, cpu in enumerate([40, 95, 96, 97, 50])]
    calm = [{"second": s, "client.lag_p99_ms": 1.0 + s, "client.cpu_pct": 30.0} for s in range(5)]
    verdicts = per_worker([({"worker": 1, "where": "node a"}, busy), ({"worker": 2, "where": "node b"}, calm),
                           ({"worker": 3, "where": "node c"}, [])])
    assert [v["worker"] for v in verdicts] == [1, 2, 3]
    assert verdicts[0]["saturated_from_s"] == 1 and verdicts[0]["where"] == "node a"
    assert verdicts[0]["cpu_pct_mean"] == pytest.approx(75.6)
    assert verdicts[1]["saturated_from_s"] is None and verdicts[1]["lag_ms_p99_max"] == 5.0
    assert verdicts[2] == {"worker": 3, "where": "node c", "lag_ms_p99_max": None, "cpu_pct_mean": None,
                           "saturated_from_s": None}


def test_a_worker_busy_for_fewer_seconds_than_a_verdict_needs_is_not_the_limit():
    from sse_perf_tool.selfcheck import SUSTAINED_S, per_worker

    short = [{"second": s, "client.lag_p99_ms": 9.0, "client.cpu_pct": 99.0} for s in range(SUSTAINED_S - 1)]
    assert per_worker([({"worker": 1}, short)])[0]["saturated_from_s"] is None
