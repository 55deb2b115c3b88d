"""A fake NVML module (the pynvml functions NvmlSampler calls) with scripted GPUs, passed in at
NvmlSampler's nvml= seam: no GPU or driver needed. Shared by tests/unit/test_gpu_nvml.py and
tests/integration/test_gpu_nvml.py."""

from __future__ import annotations

from types import SimpleNamespace

MIB = 1024 * 1024


class NVMLError(Exception):
    value = 999

    def __str__(self):
        return f"fake NVML error {self.value}"


class NVMLError_NotSupported(NVMLError):
    value = 3


class NVMLError_LibraryNotFound(NVMLError):
    value = 12


class NVMLError_GpuIsLost(NVMLError):
    value = 15


class FakeGpu:
    """Scripted readings; None = "not supported on this GPU". energy_mj is a list consumed one
    value per reading (the last one repeats)."""

    def __init__(self, util=50, mem_used_mib=1024, mem_total_mib=81559, temp=45, power_mw=123450,
                 clock=1980, energy_mj=(1_000_000,), temp_error=None, power_limit_mw=700000):
        self.util = util
        self.mem_used = mem_used_mib * MIB
        self.mem_total = mem_total_mib * MIB
        self.temp = temp
        self.power_mw = power_mw
        self.power_limit_mw = power_limit_mw  # nvmlDeviceGetEnforcedPowerLimit: milliwatts
        self.clock = clock
        self.energy_mj = list(energy_mj) if energy_mj is not None else None
        self.temp_error = temp_error


def fake_nvml(gpus, library_present=True):
    calls = {"init": 0, "shutdown": 0}

    def handle(h):
        return gpus[h]

    def init():
        if not library_present:
            raise NVMLError_LibraryNotFound()
        calls["init"] += 1

    def shutdown():
        calls["shutdown"] += 1

    def util(h):
        return SimpleNamespace(gpu=handle(h).util, memory=10)

    def mem(h):
        g = handle(h)
        return SimpleNamespace(used=g.mem_used, total=g.mem_total, free=g.mem_total - g.mem_used)

    def temp(h, sensor):
        assert sensor == 0
        g = handle(h)
        if g.temp_error is not None:
            raise g.temp_error()
        return g.temp

    def power(h):
        if handle(h).power_mw is None:
            raise NVMLError_NotSupported()
        return handle(h).power_mw

    def power_limit(h):
        if handle(h).power_limit_mw is None:
            raise NVMLError_NotSupported()
        return handle(h).power_limit_mw

    def clock(h, kind):
        assert kind == 1
        return handle(h).clock

    def energy(h):
        g = handle(h)
        if g.energy_mj is None:
            raise NVMLError_NotSupported()
        return g.energy_mj.pop(0) if len(g.energy_mj) > 1 else g.energy_mj[0]

    return SimpleNamespace(
        NVMLError=NVMLError,
        NVMLError_NotSupported=NVMLError_NotSupported,
        NVMLError_LibraryNotFound=NVMLError_LibraryNotFound,
        NVMLError_GpuIsLost=NVMLError_GpuIsLost,
        NVML_TEMPERATURE_GPU=0,
        NVML_CLOCK_SM=1,
        nvmlInit=init,
        nvmlShutdown=shutdown,
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=util,
        nvmlDeviceGetMemoryInfo=mem,
        nvmlDeviceGetTemperature=temp,
        nvmlDeviceGetPowerUsage=power,
        nvmlDeviceGetEnforcedPowerLimit=power_limit,
        nvmlDeviceGetClockInfo=clock,
        nvmlDeviceGetTotalEnergyConsumption=energy,
        calls=calls,
    )
