"""Pure functions over telemetry samples: the summary.json `gpu` section, gpu.csv rows and the
timeseries.csv column names. Never reads a clock; imports gpu.base only.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .base import Sample

_NS = 1_000_000_000

# Every GPU sample carries these keys (None where not measured), in this order.
GPU_METRICS = ("util_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w", "power_limit_w", "sm_clock_mhz",
               "energy_j")

# gpu.csv: one row per raw GPU sample. at_s = seconds since the run started (perf_counter).
GPU_CSV_FIELDS = ("at_s", "source", "index", *GPU_METRICS)



def gpu_name(sample: Sample) -> str:
    """"<source>:<index>", the summary key and the part inside gpu[...] columns."""
    return f"{sample.source}:{sample.index}"


def timeseries_columns(sample: Sample) -> dict[str, Optional[float]]:
    """{column: value} for timeseries.csv, per the contract: `gpu[local:0].util_pct`, ...
    for a GPU sample; `server[vllm:num_requests_running]`, ... for a server-metrics sample."""
    if sample.index is None:
        return {f"server[{name}]": value for name, value in sample.values.items()}
    prefix = sample.key
    return {f"{prefix}.{metric}": sample.values.get(metric) for metric in GPU_METRICS}


def gpu_csv_row(sample: Sample, start_ns: int) -> dict:
    """One gpu.csv row; values stay None (the CSV writer makes them empty cells)."""
    row = {"at_s": round((sample.at_ns - start_ns) / _NS, 3), "source": sample.source, "index": sample.index}
    for metric in GPU_METRICS:
        row[metric] = sample.values.get(metric)
    return row


class GpuCsvSink:
    """The aggregator's sink for gpu.csv: each GPU sample (not server metrics) as one row of
    `writer` (a CSV appender with GPU_CSV_FIELDS). A failure stops the writing and is kept in `error`."""

    def __init__(self, writer):
        self.writer = writer
        self.error: Optional[str] = None

    def samples(self, batch, start_ns: int) -> None:
        for sample in batch:
            if sample.index is None or self.error is not None:
                continue
            try:
                self.writer.write(gpu_csv_row(sample, start_ns))
            except OSError as exc:
                self.error = f"gpu.csv could not be written: {exc}"


def summarise_gpu(samples: Iterable[Sample]) -> dict:
    """{"local:0": {"util_pct_mean", "util_pct_max", "mem_used_mib_max", "power_w_mean",
    "energy_j", "mem_total_mib", "temp_c_max", "samples"}} over the GPU samples given (server
    samples are skipped). Means and maxima are over the readings that exist; None when a
    metric was never measured, never 0. energy_j is the last cumulative reading (joules since
    the sampler started), None when the GPU has no energy counter. GPUs keep first-seen order.
    """
    acc: dict[str, dict] = {}
    for sample in samples:
        if sample.index is None:
            continue
        entry = acc.setdefault(
            gpu_name(sample),
            {"util": [], "mem": [], "power": [], "temp": [], "total": None, "energy": None, "n": 0},
        )
        values = sample.values
        entry["n"] += 1
        _append(entry["util"], values.get("util_pct"))
        _append(entry["mem"], values.get("mem_used_mib"))
        _append(entry["power"], values.get("power_w"))
        _append(entry["temp"], values.get("temp_c"))
        if values.get("mem_total_mib") is not None:
            entry["total"] = values["mem_total_mib"]
        if values.get("energy_j") is not None:
            entry["energy"] = values["energy_j"]
    return {
        name: {
            "util_pct_mean": _mean(e["util"]),
            "util_pct_max": max(e["util"], default=None),
            "mem_used_mib_max": max(e["mem"], default=None),
            "power_w_mean": _mean(e["power"]),
            "energy_j": e["energy"],
            "mem_total_mib": e["total"],
            "temp_c_max": max(e["temp"], default=None),
            "samples": e["n"],
        }
        for name, e in acc.items()
    }


def total_energy_j(gpu_summary: dict) -> Optional[float]:
    """Energy of all GPUs together, for output_tokens_per_joule; None unless every GPU has an
    energy reading (a partial sum would overstate tokens per joule)."""
    if not gpu_summary:
        return None
    energies = [entry.get("energy_j") for entry in gpu_summary.values()]
    if any(e is None for e in energies):
        return None
    return float(sum(energies))


def _append(values: list, value) -> None:
    if value is not None:
        values.append(float(value))


def _mean(values: list) -> Optional[float]:
    return sum(values) / len(values) if values else None
