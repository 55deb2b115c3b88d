"""Local GPU sampling's thread through a fake NVML module (no GPU or driver needed): one batch per
tick, a prompt stop. The reading and the pure functions: tests/unit/test_gpu_nvml.py."""

from __future__ import annotations

import threading
import time

from fake_nvml import FakeGpu, fake_nvml
from sse_perf_tool.gpu.base import Sample
from sse_perf_tool.gpu.nvml import NvmlSampler


# -- the thread --
def test_thread_delivers_one_batch_per_tick_and_stops_promptly():
    nvml = fake_nvml([FakeGpu(), FakeGpu()])
    sampler = NvmlSampler(nvml=nvml)
    sampler.preflight()
    batches: list[list[Sample]] = []
    lock = threading.Lock()

    def sink(batch):
        with lock:
            batches.append(batch)

    sampler.start(sink, interval_s=0.02)
    deadline = time.monotonic() + 3
    while len(batches) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    assert not sampler.running
    assert len(batches) >= 4
    assert all([s.index for s in b] == [0, 1] for b in batches)
    at = [b[0].at_ns for b in batches]
    assert at == sorted(at)
    count = len(batches)
    time.sleep(0.06)
    assert len(batches) == count  # nothing after stop()
    assert nvml.calls["shutdown"] == 1


