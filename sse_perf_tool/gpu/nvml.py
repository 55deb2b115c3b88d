"""Local GPUs through NVML (`pynvml` from the nvidia-ml-py package), one reading per GPU per tick.

Imports gpu.base only. The NVML module is a seam: tests pass a fake one; by default `pynvml`
is imported lazily, so a machine without it can still run sse-perf without `--gpu local`.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from .base import Sample, Sampler, TelemetryError

_MIB = 1024 * 1024

NOT_AVAILABLE = "--gpu local: NVML is not available (no NVIDIA driver/libnvidia-ml found)"


def import_pynvml():
    """The real NVML binding, or TelemetryError when it is not installed."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        raise TelemetryError(f"{NOT_AVAILABLE}: the Python package nvidia-ml-py is not installed") from None
    return pynvml


class NvmlSampler(Sampler):
    """Reads utilisation %, memory used/total MiB, temperature C, power W (and its enforced limit), SM clock MHz and
    energy for each chosen local GPU.

    energy_j is the energy in joules since this sampler's first reading, from NVML's total-energy
    counter (mJ since the driver was loaded; Volta and newer). When the counter goes backwards
    (driver reload) the delta after the reset counts from the new value, so energy_j never
    decreases. A metric the GPU does not support reads None; it never stops the sampler.
    """

    source = "local"

    def __init__(self, indices: Optional[list[int]] = None, nvml: Any = None):
        super().__init__()
        self.indices = list(indices) if indices is not None else None
        self._nvml = nvml
        self._initialised = False
        self._handles: list[tuple[int, Any]] = []
        self._energy_last_mj: dict[int, int] = {}
        self._energy_total_j: dict[int, float] = {}
        self._noted: set[tuple[int, str, str]] = set()

    # -- lifecycle --
    def preflight(self) -> None:
        self._open()

    def _open(self) -> None:
        if self._initialised:
            return
        if self._nvml is None:
            self._nvml = import_pynvml()
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            if _is(nvml, exc, "NVMLError_LibraryNotFound"):
                raise TelemetryError(NOT_AVAILABLE) from None
            if _is(nvml, exc, "NVMLError_DriverNotLoaded"):
                raise TelemetryError(f"{NOT_AVAILABLE}: {_text(exc)}") from None
            raise TelemetryError(f"--gpu local: NVML failed to start: {_text(exc)}") from None
        self._initialised = True
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if count == 0:
                raise TelemetryError("--gpu local: NVML found no GPU on this machine")
            wanted = self.indices if self.indices is not None else list(range(count))
            bad = [i for i in wanted if not 0 <= i < count]
            if bad:
                raise TelemetryError(
                    f"--gpu-index {','.join(map(str, bad))}: this machine has {count} GPU(s), "
                    f"indices 0-{count - 1}"
                )
            self._handles = [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in wanted]
        except nvml.NVMLError as exc:
            self._shutdown()
            raise TelemetryError(f"--gpu local: NVML cannot list the GPUs: {_text(exc)}") from None
        except TelemetryError:
            self._shutdown()
            raise

    def start(self, sink, interval_s: float = 1.0) -> None:
        self._open()  # raises TelemetryError when preflight() was skipped and NVML cannot work
        super().start(sink, interval_s)

    def _close(self) -> None:
        if self.running:  # a read still in flight past stop()'s wait: shutting NVML down under it could crash
            self._warn("NVML left open: a reading was still in progress at stop()")
            return
        self._shutdown()

    def _shutdown(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                self._warn(f"nvmlShutdown failed: {_text(exc)}")

    # -- sampling --
    def _tick(self) -> list[Sample]:
        return self.sample_gpus()

    def sample_gpus(self) -> list[Sample]:
        """One reading of every chosen GPU (opens NVML on first use)."""
        self._open()
        return [self._sample_one(index, handle) for index, handle in self._handles]

    def _sample_one(self, index: int, handle: Any) -> Sample:
        nvml = self._nvml
        at_ns = time.perf_counter_ns()
        util = self._read(index, "util_pct", nvml.nvmlDeviceGetUtilizationRates, handle)
        mem = self._read(index, "mem_used_mib", nvml.nvmlDeviceGetMemoryInfo, handle)
        temp = self._read(index, "temp_c", nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        power_mw = self._read(index, "power_w", nvml.nvmlDeviceGetPowerUsage, handle)
        limit_mw = self._read(index, "power_limit_w", nvml.nvmlDeviceGetEnforcedPowerLimit, handle) \
            if hasattr(nvml, "nvmlDeviceGetEnforcedPowerLimit") else None
        clock = self._read(index, "sm_clock_mhz", nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM)
        energy_mj = self._read(index, "energy_j", nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
        return Sample(
            source=self.source,
            index=index,
            at_ns=at_ns,
            values={
                "util_pct": _num(getattr(util, "gpu", None)),
                "mem_used_mib": _mib(getattr(mem, "used", None)),
                "mem_total_mib": _mib(getattr(mem, "total", None)),
                "temp_c": _num(temp),
                "power_w": None if power_mw is None else power_mw / 1000.0,
                "power_limit_w": None if limit_mw is None else limit_mw / 1000.0,
                "sm_clock_mhz": _num(clock),
                "energy_j": self._energy(index, energy_mj),
            },
        )

    def _energy(self, index: int, counter_mj: Optional[int]) -> Optional[float]:
        """Cumulative joules since the first reading. The counter is unsigned and only resets
        when the driver reloads; a value below the last one is taken as a reset, and the energy
        after it is the new value itself (counted from zero)."""
        if counter_mj is None:
            return self._energy_total_j.get(index)
        counter_mj = int(counter_mj)
        last = self._energy_last_mj.get(index)
        if last is None:
            self._energy_total_j[index] = 0.0
        elif counter_mj >= last:
            self._energy_total_j[index] += (counter_mj - last) / 1000.0
        else:
            self._energy_total_j[index] += counter_mj / 1000.0
            self._warn(f"GPU {index}: energy counter went backwards (driver reload?); counted from the new value")
        self._energy_last_mj[index] = counter_mj
        return self._energy_total_j[index]

    def _read(self, index: int, metric: str, fn, *args):
        """Calls one NVML getter. Not supported on this GPU (or by this driver) -> None,
        silently; any other NVML error -> None and one warning per GPU, metric and error."""
        nvml = self._nvml
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            if not (_is(nvml, exc, "NVMLError_NotSupported") or _is(nvml, exc, "NVMLError_FunctionNotFound")):
                note = (index, metric, type(exc).__name__)
                if note not in self._noted:
                    self._noted.add(note)
                    self._warn(f"GPU {index}: reading {metric} failed: {_text(exc)} (left empty)")
            return None


def _is(nvml: Any, exc: BaseException, name: str) -> bool:
    cls = getattr(nvml, name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - pynvml's __str__ calls into the library, which may be gone
        text = ""
    return text or type(exc).__name__


def _num(value) -> Optional[float]:
    return None if value is None else float(value)


def _mib(n_bytes) -> Optional[float]:
    return None if n_bytes is None else n_bytes / _MIB
