"""GPU telemetry: local GPUs through NVML, remote GPUs through nvidia-smi over SSH.

Imports nothing outside this package (paramiko and pynvml are imported where used; pynvml
lazily). `parse_gpu_option` and `make_gpu_sampler` are what the CLI calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .base import Sample, Sampler, TelemetryError

__all__ = [
    "GpuOption",
    "Sample",
    "Sampler",
    "TelemetryError",
    "make_gpu_sampler",
    "parse_gpu_indices",
    "parse_gpu_option",
]


@dataclass(frozen=True)
class GpuOption:
    """One --gpu value: kind "local" or "ssh"; `target` is the ssh:// text as given (with
    user), `source` the name shown in columns and messages (no user)."""

    kind: str
    source: str
    target: Optional[str] = None


def parse_gpu_option(value: str) -> GpuOption:
    """ "local" or "ssh://user@host[:port]" -> GpuOption; anything else -> TelemetryError."""
    text = (value or "").strip()
    if text.lower() == "local":
        return GpuOption(kind="local", source="local")
    if text.lower().startswith("ssh://"):
        from .ssh import parse_target

        return GpuOption(kind="ssh", source=parse_target(text).source, target=text)
    raise TelemetryError(f"--gpu {text or '(empty)'}: expected 'local' or ssh://user@host[:port]")


def parse_gpu_indices(value: str) -> list[int]:
    """ "0,1" -> [0, 1] for --gpu-index; duplicates dropped, order kept."""
    indices: list[int] = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part.isdigit():
            raise TelemetryError(f"--gpu-index {value}: expected GPU indices like 0 or 0,1")
        if int(part) not in indices:
            indices.append(int(part))
    return indices


def make_gpu_sampler(
    value: str,
    *,
    indices: Optional[list[int]] = None,
    ssh_key: Optional[str] = None,
    ssh_password: Optional[str] = None,
    accept_new_host_key: bool = False,
    known_hosts: Optional[str] = None,
    nvml=None,
) -> Sampler:
    """The sampler for one --gpu value (not yet preflighted or started)."""
    option = parse_gpu_option(value)
    if option.kind == "local":
        from .nvml import NvmlSampler

        return NvmlSampler(indices=indices, nvml=nvml)
    from .ssh import SshSampler

    return SshSampler(
        option.target,
        key_filename=ssh_key,
        password=ssh_password,
        accept_new_host_key=accept_new_host_key,
        known_hosts=known_hosts,
        indices=indices,
    )
