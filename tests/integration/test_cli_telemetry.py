"""Telemetry wired end to end: --gpu ssh:// against an in-process paramiko server and
--server-metrics against a local Prometheus endpoint land in timeseries.csv, gpu.csv,
summary.json; a source that cannot work stops the run before any request (exit 2)."""

import csv
import json

import paramiko
import pytest

from sse_perf_tool.cli import main

from prometheus_texts import VLLM_TEXT

from .metrics_server import MetricsServer
from .ssh_server import FakeSshServer, write_known_hosts

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def host_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture
def ssh(host_key, tmp_path):
    with FakeSshServer(host_key, password=PASSWORD, gpus=2, line_interval_s=0.2) as server:
        known = tmp_path / "known_hosts"
        write_known_hosts(known, server.port, host_key)
        yield server, str(known)


def _run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ssh_gpus_and_server_metrics_reach_every_output(ssh, mock_server, tmp_path, capsys, monkeypatch):
    server, known = ssh
    monkeypatch.setenv("SSE_PERF_SSH_PASSWORD", PASSWORD)
    with MetricsServer(VLLM_TEXT) as metrics:
        code, out, err = _run(["--base-url", mock_server.base_url, "--threads", 2, "--duration", 1.5,
                               "--gpu", f"ssh://bob@127.0.0.1:{server.port}", "--known-hosts", known,
                               "--server-metrics", metrics.url, "--output-dir", tmp_path / "o"], capsys)
    assert code == 0, err
    (run_dir,) = [p for p in (tmp_path / "o").iterdir() if p.is_dir()]
    source = f"ssh://127.0.0.1:{server.port}"
    rows = list(csv.DictReader(open(run_dir / "timeseries.csv")))
    assert f"gpu[{source}:0].util_pct" in rows[0] and f"gpu[{source}:1].mem_used_mib" in rows[0]
    assert "server[vllm:num_requests_running]" in rows[0]
    assert any(r[f"gpu[{source}:0].util_pct"] for r in rows)
    assert any(r["server[vllm:num_requests_running]"] for r in rows)
    gpu_rows = list(csv.DictReader(open(run_dir / "gpu.csv")))
    assert {r["index"] for r in gpu_rows} == {"0", "1"} and len(gpu_rows) >= 4
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["gpu"]) == {f"{source}:0", f"{source}:1"}
    assert summary["gpu"][f"{source}:0"]["util_pct_max"] is not None
    assert "output_tokens_per_joule" in summary["throughput"]  # None: nvidia-smi gives no energy
    assert "GPU%" in out
    texts = [out, err] + [p.read_text(encoding="utf-8") for p in run_dir.iterdir() if p.is_file()]
    assert not any(PASSWORD in t for t in texts)


def test_wrong_ssh_password_exits_2_before_any_request(ssh, mock_server, tmp_path, capsys, monkeypatch):
    server, known = ssh
    monkeypatch.setenv("SSE_PERF_SSH_PASSWORD", "wrong-password-123")
    code, _, err = _run(["--base-url", mock_server.base_url, "--gpu", f"ssh://bob@127.0.0.1:{server.port}",
                         "--known-hosts", known, "--output-dir", tmp_path], capsys)
    assert code == 2 and "wrong-password-123" not in err
    assert len(err.strip().splitlines()) == 1
    assert mock_server.stats.snapshot()["requests"] == 0


def test_unknown_host_key_exits_2(ssh, mock_server, tmp_path, capsys, monkeypatch):
    server, _ = ssh
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    monkeypatch.setenv("SSE_PERF_SSH_PASSWORD", PASSWORD)
    code, _, err = _run(["--base-url", mock_server.base_url, "--gpu", f"ssh://bob@127.0.0.1:{server.port}",
                         "--known-hosts", empty, "--output-dir", tmp_path], capsys)
    assert code == 2 and "host key" in err.lower()
    assert mock_server.stats.snapshot()["requests"] == 0


@pytest.mark.parametrize("args,needle", [
    (["--gpu", "gpu1"], "--gpu"),
    (["--gpu", "local", "--gpu-index", "x"], "--gpu-index"),
    (["--server-metrics", "http://127.0.0.1:1/metrics"], "server"),
])
def test_bad_telemetry_sources_exit_2(args, needle, mock_server, tmp_path, capsys):
    code, _, err = _run(["--base-url", mock_server.base_url, *args, "--output-dir", tmp_path], capsys)
    assert code == 2 and needle in err
    assert mock_server.stats.snapshot()["requests"] == 0
