"""Local GPU sampling through a fake NVML module passed in at the seam, plus the pure summary
functions over GPU samples. No GPU or driver needed."""

from __future__ import annotations

import sys

import pytest

from fake_nvml import FakeGpu, NVMLError_GpuIsLost, fake_nvml
from sse_perf_tool.gpu import GpuOption, make_gpu_sampler, parse_gpu_indices, parse_gpu_option
from sse_perf_tool.gpu.base import Sample, TelemetryError
from sse_perf_tool.gpu.nvml import NOT_AVAILABLE, NvmlSampler
from sse_perf_tool.gpu.summary import (
    GPU_CSV_FIELDS,
    gpu_csv_row,
    summarise_gpu,
    timeseries_columns,
    total_energy_j,
)


# -- sampling --
def test_two_gpus_are_read_with_units_converted():
    nvml = fake_nvml([FakeGpu(util=70), FakeGpu(util=20, mem_used_mib=2048, power_mw=60000)])
    sampler = NvmlSampler(nvml=nvml)
    sampler.preflight()
    batch = sampler.sample_gpus()
    assert [s.index for s in batch] == [0, 1]
    assert all(s.source == "local" for s in batch)
    assert [s.key for s in batch] == ["gpu[local:0]", "gpu[local:1]"]
    assert batch[0].values == {
        "util_pct": 70.0,
        "mem_used_mib": 1024.0,
        "mem_total_mib": 81559.0,
        "temp_c": 45.0,
        "power_w": 123.45,
        "power_limit_w": 700.0,  # nvmlDeviceGetEnforcedPowerLimit, milliwatts
        "sm_clock_mhz": 1980.0,
        "energy_j": 0.0,  # the first reading is the baseline
    }
    assert batch[1].values["mem_used_mib"] == 2048.0 and batch[1].values["power_w"] == 60.0
    assert sampler.warnings == []
    sampler.stop()
    assert nvml.calls == {"init": 1, "shutdown": 1}


def test_chosen_indices_only():
    sampler = NvmlSampler(indices=[1], nvml=fake_nvml([FakeGpu(), FakeGpu(util=9)]))
    sampler.preflight()
    batch = sampler.sample_gpus()
    assert [(s.index, s.values["util_pct"]) for s in batch] == [(1, 9.0)]


def test_gpu_without_power_or_energy_reads_none_without_crashing():
    """NotSupported is a property of the GPU, not a fault: None, and no warning."""
    sampler = NvmlSampler(nvml=fake_nvml([FakeGpu(power_mw=None, energy_mj=None, power_limit_mw=None)]))
    sampler.preflight()
    for _ in range(3):
        (sample,) = sampler.sample_gpus()
        assert sample.values["power_w"] is None and sample.values["power_limit_w"] is None
        assert sample.values["energy_j"] is None
        assert sample.values["util_pct"] == 50.0
    assert sampler.warnings == []


def test_energy_is_cumulative_joules_and_survives_a_counter_reset():
    """The counter (mJ since driver load) goes 1000 J -> 1500 J, then resets to 200 J and
    rises to 700 J: energy counted is 500 + 200 + 500 = 1200 J, never decreasing."""
    counter = [1_000_000, 1_500_000, 200_000, 700_000]
    sampler = NvmlSampler(nvml=fake_nvml([FakeGpu(energy_mj=counter)]))
    sampler.preflight()
    energy = [sampler.sample_gpus()[0].values["energy_j"] for _ in range(4)]
    assert energy == [0.0, 500.0, 700.0, 1200.0]
    assert energy == sorted(energy)
    assert any("energy counter went backwards" in w for w in sampler.warnings)


def test_other_nvml_error_leaves_metric_empty_and_warns_once():
    sampler = NvmlSampler(nvml=fake_nvml([FakeGpu(temp_error=NVMLError_GpuIsLost)]))
    sampler.preflight()
    for _ in range(3):
        (sample,) = sampler.sample_gpus()
        assert sample.values["temp_c"] is None
        assert sample.values["util_pct"] == 50.0
    assert len(sampler.warnings) == 1
    assert "GPU 0" in sampler.warnings[0] and "temp_c" in sampler.warnings[0]


# -- preflight failures --
def test_missing_nvml_library_is_a_clear_telemetry_error():
    sampler = NvmlSampler(nvml=fake_nvml([FakeGpu()], library_present=False))
    with pytest.raises(TelemetryError) as info:
        sampler.preflight()
    assert str(info.value) == NOT_AVAILABLE
    assert str(info.value) == "--gpu local: NVML is not available (no NVIDIA driver/libnvidia-ml found)"


def test_missing_pynvml_package_is_a_clear_telemetry_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    with pytest.raises(TelemetryError) as info:
        NvmlSampler().preflight()
    assert str(info.value).startswith(NOT_AVAILABLE)
    assert "nvidia-ml-py" in str(info.value)


def test_real_pynvml_without_a_driver_fails_in_preflight():
    """On a machine without an NVIDIA driver the real binding must give the same clear error."""
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present here")
    with pytest.raises(TelemetryError) as info:
        NvmlSampler().preflight()
    assert str(info.value).startswith(NOT_AVAILABLE)


def test_index_out_of_range_is_rejected_and_nvml_shut_down():
    nvml = fake_nvml([FakeGpu(), FakeGpu()])
    with pytest.raises(TelemetryError) as info:
        NvmlSampler(indices=[0, 2], nvml=nvml).preflight()
    assert "--gpu-index 2" in str(info.value) and "2 GPU(s)" in str(info.value)
    assert nvml.calls == {"init": 1, "shutdown": 1}


def test_no_gpu_is_rejected():
    with pytest.raises(TelemetryError, match="no GPU"):
        NvmlSampler(nvml=fake_nvml([])).preflight()


def test_start_without_preflight_still_checks():
    sampler = NvmlSampler(nvml=fake_nvml([], library_present=False))
    with pytest.raises(TelemetryError):
        sampler.start(lambda batch: None)
    sampler.stop()


# -- options --
def test_parse_gpu_option():
    assert parse_gpu_option("local") == GpuOption(kind="local", source="local")
    ssh = parse_gpu_option("ssh://bob@h1:2222")
    assert (ssh.kind, ssh.source, ssh.target) == ("ssh", "ssh://h1:2222", "ssh://bob@h1:2222")
    assert parse_gpu_option("ssh://bob@h1:22").source == "ssh://h1"
    for bad in ("", "remote", "http://h1", "ssh://"):
        with pytest.raises(TelemetryError, match="--gpu"):
            parse_gpu_option(bad)


def test_parse_gpu_indices():
    assert parse_gpu_indices("0,1") == [0, 1]
    assert parse_gpu_indices(" 3 , 1,3") == [3, 1]
    for bad in ("", "a", "0,-1", "1.5"):
        with pytest.raises(TelemetryError, match="--gpu-index"):
            parse_gpu_indices(bad)


def test_make_gpu_sampler_builds_the_right_kind():
    nvml = fake_nvml([FakeGpu()])
    local = make_gpu_sampler("local", indices=[0], nvml=nvml)
    assert isinstance(local, NvmlSampler) and local.indices == [0]
    remote = make_gpu_sampler("ssh://bob@h1:2222", ssh_password="pw")
    assert remote.source == "ssh://h1:2222"
    assert "pw" not in repr(remote)


# -- summary --
def _gpu(source, index, at_s, **values):
    return Sample(source=source, index=index, at_ns=int(at_s * 1e9), values=values)


def test_summarise_gpu_means_maxima_and_last_energy():
    samples = [
        _gpu("local", 0, 1, util_pct=20.0, mem_used_mib=100.0, mem_total_mib=800.0, power_w=100.0, energy_j=0.0, temp_c=40.0),
        _gpu("local", 0, 2, util_pct=80.0, mem_used_mib=300.0, mem_total_mib=800.0, power_w=None, energy_j=150.0, temp_c=50.0),
        _gpu("local", 0, 3, util_pct=None, mem_used_mib=200.0, mem_total_mib=800.0, power_w=200.0, energy_j=None),
        _gpu("ssh://h1", 1, 1, util_pct=10.0, mem_used_mib=5.0, power_w=None, energy_j=None),
        Sample(source="server", index=None, at_ns=0, values={"vllm:num_requests_running": 3.0}),
    ]
    summary = summarise_gpu(samples)
    assert list(summary) == ["local:0", "ssh://h1:1"]
    local = summary["local:0"]
    assert local["util_pct_mean"] == 50.0 and local["util_pct_max"] == 80.0
    assert local["mem_used_mib_max"] == 300.0
    assert local["power_w_mean"] == 150.0
    assert local["energy_j"] == 150.0  # last known cumulative value
    assert local["samples"] == 3 and local["temp_c_max"] == 50.0 and local["mem_total_mib"] == 800.0
    remote = summary["ssh://h1:1"]
    assert remote["power_w_mean"] is None and remote["energy_j"] is None  # not measured, not 0
    assert total_energy_j(summary) is None  # one GPU without energy: no total
    assert total_energy_j({"local:0": local}) == 150.0
    assert total_energy_j({}) is None


def test_columns_and_csv_rows_follow_the_contract():
    sample = _gpu("ssh://h1", 1, 12.3456, util_pct=40.0, mem_used_mib=1.0)
    cols = timeseries_columns(sample)
    assert cols["gpu[ssh://h1:1].util_pct"] == 40.0
    assert cols["gpu[ssh://h1:1].mem_used_mib"] == 1.0
    assert cols["gpu[ssh://h1:1].power_w"] is None
    assert "gpu[ssh://h1:1].temp_c" in cols
    server = Sample(source="server", index=None, at_ns=0, values={"vllm:num_requests_running": 2.0})
    assert timeseries_columns(server) == {"server[vllm:num_requests_running]": 2.0}
    row = gpu_csv_row(sample, start_ns=int(2e9))
    assert tuple(row) == GPU_CSV_FIELDS
    assert row["at_s"] == 10.346 and row["source"] == "ssh://h1" and row["index"] == 1
    assert row["energy_j"] is None


