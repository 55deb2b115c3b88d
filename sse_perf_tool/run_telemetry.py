"""The telemetry a run asked for (--gpu, --server-metrics): its samplers built and preflighted with
the other inputs (nothing imported when none was asked for), gpu.csv for the GPU samples, and each
sampler started on the aggregator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .config import ConfigError, RunConfig


def telemetry_samplers(cfg: RunConfig, ssh_password: Optional[str]) -> list:
    """Build and preflight every telemetry source asked for (none: nothing imported); raises
    ConfigError (exit 2) when one cannot be used, after stopping those already built."""
    if not cfg.gpu and not cfg.server_metrics:
        return []
    from .gpu import TelemetryError, make_gpu_sampler, parse_gpu_indices

    samplers = []
    try:
        indices = parse_gpu_indices(cfg.gpu_index) if cfg.gpu_index else None
        for value in cfg.gpu:
            samplers.append(make_gpu_sampler(
                value, indices=indices, ssh_key=cfg.ssh_key, ssh_password=ssh_password,
                accept_new_host_key=cfg.ssh_accept_new_host_key, known_hosts=cfg.known_hosts))
        if cfg.server_metrics:
            from .server_metrics import PrometheusSampler

            for url in cfg.server_metrics:
                samplers.append(PrometheusSampler(url, names=list(cfg.server_metric_names)))
        for sampler in samplers:
            sampler.preflight()
    except TelemetryError as exc:
        for sampler in samplers:
            sampler.stop()
        raise ConfigError(str(exc)) from None
    return samplers


def gpu_csv_writer(samplers: list, run_dir: Path):
    """The CSV appender of gpu.csv when a GPU is sampled (not only server metrics), else None."""
    if not any(s.source != "server" for s in samplers):
        return None
    from .gpu.summary import GPU_CSV_FIELDS
    from .storage import CsvAppender

    return CsvAppender(run_dir / "gpu.csv", GPU_CSV_FIELDS)


def start_samplers(samplers: list, aggregator) -> None:
    """Start each sampler, its batches going to the aggregator."""
    server_samplers = [s for s in samplers if s.source == "server"]
    for sampler in samplers:
        position = server_samplers.index(sampler) if sampler in server_samplers else 0
        sampler.start(_sample_sink(aggregator, sampler, position))


def _sample_sink(aggregator, sampler, index: int):
    """Where a sampler's batches go. With several --server-metrics URLs, the second and later
    ones get their host in the column (`server[name@host:port]`) so columns never collide."""
    if sampler.source != "server" or index == 0:
        return aggregator.submit_samples
    from urllib.parse import urlsplit

    host = urlsplit(sampler.url).netloc

    def sink(samples):
        for sample in samples:
            sample.values = {f"{name}@{host}": value for name, value in sample.values.items()}
        aggregator.submit_samples(samples)

    return sink
