"""Remote GPUs over SSH, the parts without a connection: ssh:// targets and the nvidia-smi lines
and command. The sampler against an in-process SSH server is in tests/integration/test_gpu_ssh.py."""

from __future__ import annotations


import pytest

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.gpu.ssh import SshTarget, nvidia_smi_command, parse_nvidia_smi_line, parse_target


# -- parsing --
def test_parse_target_forms():
    assert parse_target("ssh://bob@h1") == SshTarget("bob", "h1", 22)
    assert parse_target("ssh://bob@h1").source == "ssh://h1"
    assert parse_target("ssh://bob@h1:2222").source == "ssh://h1:2222"
    assert parse_target("ssh://bob@[::1]:2222") == SshTarget("bob", "::1", 2222)
    assert parse_target("ssh://bob@[::1]:2222").source == "ssh://[::1]:2222"
    assert parse_target("ssh://h1").user  # the local user, as ssh does


@pytest.mark.parametrize("bad", ["http://h1", "ssh://", "ssh://bob@h1:99999", "ssh://bob@h1/x", "h1", "ssh://bob@h1?x=1"])
def test_parse_target_rejects_bad_targets(bad):
    with pytest.raises(TelemetryError, match="bad SSH target"):
        parse_target(bad)


def test_password_in_target_is_refused_without_echoing_it():
    with pytest.raises(TelemetryError) as info:
        parse_target("ssh://bob:hunter2@h1")
    assert "hunter2" not in str(info.value)


def test_parse_nvidia_smi_lines():
    index, values = parse_nvidia_smi_line("1, 87, 40960, 81559, 61, 312.50, 1980, 700.00")
    assert index == 1
    assert values == {
        "util_pct": 87.0,
        "mem_used_mib": 40960.0,
        "mem_total_mib": 81559.0,
        "temp_c": 61.0,
        "power_w": 312.5,
        "sm_clock_mhz": 1980.0,
        "power_limit_w": 700.0,
        "energy_j": None,
    }
    _, values = parse_nvidia_smi_line("0, 5, 512, 81559, 31, [N/A], [Not Supported], [N/A]\r")
    assert values["power_w"] is None and values["sm_clock_mhz"] is None and values["util_pct"] == 5.0
    assert values["power_limit_w"] is None
    assert parse_nvidia_smi_line("No devices were found") is None
    assert parse_nvidia_smi_line("x, 1, 2, 3, 4, 5, 6, 7") is None


def test_streaming_command_asks_for_every_field_once():
    command = nvidia_smi_command(1.0)
    assert command.startswith("nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,")
    assert "temperature.gpu,power.draw,clocks.sm,enforced.power.limit " in command
    assert "--format=csv,noheader,nounits" in command and command.endswith("-lms 1000")
    assert nvidia_smi_command(0.5, [0, 2]).endswith("-lms 500 -i 0,2")
