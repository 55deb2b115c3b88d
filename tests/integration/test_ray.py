"""`--ray`: the workers as Ray actors, on a real Ray cluster simulated on this machine
(ray.cluster_utils.Cluster: a head with no CPU and two nodes of one CPU each, on loopback), driven
through the CLI in a subprocess against the mock server, as a user runs it.

Marked `ray`; skipped where Ray is not installed (pip install -e '.[ray]'). One cluster for the
module, stopped at its end; Ray is told to keep to loopback, to report no usage statistics, and
to use a token made here (nothing is written to ~/.ray) before it is first imported. Every run has
a timeout; the kill and Ctrl-C tests end every process they start."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                  reason="Ray is not installed (pip install -e '.[ray]')")]

RUN_TIMEOUT_S = 180
HOUR_NS = 3600 * 1_000_000_000


def _ray_env(tmp: Path) -> dict:
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": str(tmp)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    env = _ray_env(ray_tmp)
    old = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # before Ray is first imported: it reads its auth mode then
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        made.add_node(num_cpus=1, resources={"n0": 1})
        made.add_node(num_cpus=1, resources={"n1": 1})
        made.wait_for_nodes()
        yield {"address": made.address, "env": env, "tmp": tmp}
    finally:
        made.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)  # Ray's session logs and sockets, the run's alone
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sse_perf(cluster, tmp_path, *args, extra_env=None, timeout=RUN_TIMEOUT_S):
    env = {**os.environ, **cluster["env"], **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "sse_perf_tool", *map(str, args), "--output-dir", str(tmp_path),
                           "--no-history"], capture_output=True, text=True, env=env, timeout=timeout)


def only_run(tmp_path: Path) -> Path:
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def records_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


def openai(server) -> list:
    return ["--base-url", server.base_url, "--api", "openai-chat"]


def test_a_closed_loop_run_on_two_nodes_writes_what_a_one_machine_run_writes(cluster, make_mock, tmp_path):
    server = make_mock(ttft_ms=20, itl_ms=5, tokens=8)
    done = sse_perf(cluster, tmp_path, "--ray", cluster["address"], "--ray-workers", 2, "--ray-spread", "strict",
                    *openai(server), "--threads", 4, "--duration", 4)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ray: 2 worker(s) on 2 node(s)" in done.stdout
    run = only_run(tmp_path)
    summary = summary_of(run)
    load = summary["run"]["load"]
    assert load["backend"] == "ray" and load["workers"] == 2
    assert len(load["nodes"]) == 2 and all(node["workers"] == 1 for node in load["nodes"])
    assert all(node["sse_perf"] and node["ray"] and node["python"] for node in load["nodes"])
    assert len({w["node_id"] for w in load["worker_list"]}) == 2
    records = records_of(run)
    assert summary["requests"]["ok"] == len(records) > 0
    assert all(r["ok"] and r["ttft_ms"] >= 19 for r in records)
    assert {r["thread_id"] for r in records} == {1, 2, 3, 4}
    assert (run / "report.html").stat().st_size > 10_000
    assert server.stats.snapshot()["requests"] == len(records)
    assert [w["channel"] for w in load["worker_list"]] == ["direct", "direct"]


def test_messages_through_ray_calls_where_no_connection_back_is_made(cluster, make_mock, tmp_path):
    """SSE_PERF_RAY_CHANNEL=calls: every message goes through Ray calls (one deliver and one poll in
    flight per worker): the same run, the same records, a channel named in the summary."""
    server = make_mock(ttft_ms=20, itl_ms=5, tokens=6)
    done = sse_perf(cluster, tmp_path, "--ray", cluster["address"], "--ray-workers", 2, *openai(server),
                    "--threads", 4, "--requests", 24, extra_env={"SSE_PERF_RAY_CHANNEL": "calls"})
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(tmp_path)
    load = summary_of(run)["run"]["load"]
    assert [w["channel"] for w in load["worker_list"]] == ["calls", "calls"]
    records = records_of(run)
    assert len(records) == 24 and all(r["ok"] and r["output_tokens"] == 6 for r in records)
    assert sorted(r["request_id"] for r in records) == list(range(1, 25))
    assert summary_of(run)["client"]["workers"] and server.stats.snapshot()["requests"] == 24


def test_open_loop_with_a_worker_an_hour_ahead_keeps_one_timeline(cluster, make_mock, tmp_path):
    """Worker 1's clock is skewed by an hour (a test-only hook): its records are put on the
    driver's clock, so queue time, TTFT and the per-second rows are those of an unskewed run."""
    server = make_mock(ttft_ms=20, itl_ms=5, tokens=4)
    done = sse_perf(cluster, tmp_path, "--ray", cluster["address"], "--ray-workers", 2, *openai(server),
                    "--rate", 5, "--threads", 4, "--duration", 4, "--seed", 7,
                    extra_env={"SSE_PERF_TEST_CLOCK_SKEW_NS": f"1:{HOUR_NS}"})
    assert done.returncode == 0, done.stderr[-3000:]
    run = only_run(tmp_path)
    load = summary_of(run)["run"]["load"]
    offsets = sorted(abs(w["clock_offset_ms"]) for w in load["worker_list"])
    assert offsets[0] == 0 and abs(offsets[1] - HOUR_NS / 1e6) < 5.0  # one on this clock, one an hour off
    assert load["clock_bound_ms_max"] is not None and load["clock_bound_ms_max"] < 5.0
    records = records_of(run)
    assert len(records) >= 15
    for record in records:
        assert record["ok"]
        assert 0 <= record["queue_ms"] < 1000
        assert 19 <= record["ttft_ms"] < 1000
        assert record["ttft_from_scheduled_ms"] >= record["ttft_ms"]
    with open(run / "timeseries.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert 4 <= len(rows) <= 6  # an hour-off record would have stretched the series
    assert sum(int(row["requests_ok"]) for row in rows) == len(records)


def test_a_thread_sweep_and_an_exact_request_count(cluster, make_mock, tmp_path):
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=3)
    sweep_dir, count_dir = tmp_path / "sweep", tmp_path / "count"
    sweep_dir.mkdir()
    count_dir.mkdir()
    done = sse_perf(cluster, sweep_dir, "--ray", cluster["address"], "--ray-workers", 2, *openai(server),
                    "--sweep-threads", "1,2", "--duration", 2)
    assert done.returncode == 0, done.stderr[-3000:]
    levels = summary_of(only_run(sweep_dir))["levels"]
    assert [block["level"] for block in levels] == [{"threads": 1}, {"threads": 2}]
    assert all(block["requests"]["ok"] > 0 for block in levels)
    done = sse_perf(cluster, count_dir, "--ray", cluster["address"], "--ray-workers", 2, *openai(server),
                    "--requests", 20, "--threads", 4)
    assert done.returncode == 0, done.stderr[-3000:]
    records = records_of(only_run(count_dir))
    assert len(records) == 20 and sorted(r["request_id"] for r in records) == list(range(1, 21))


def _ray_processes() -> list[tuple[int, bytes, int]]:
    """(pid, command line, parent pid) of every Ray process on this machine (their names start ray::)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if cmdline.startswith(b"ray::"):
                found.append((int(entry.name), cmdline, int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])))
        except (OSError, ValueError, IndexError):  # it ended while read
            continue
    return found


def _actor_pids() -> list[int]:
    return [pid for pid, cmdline, _ in _ray_processes() if cmdline.startswith(b"ray::SsePerfWorker")]


def test_a_killed_worker_fails_its_requests_and_the_run_goes_on(cluster, make_mock, tmp_path):
    server = make_mock(ttft_ms=50, itl_ms=50, tokens=20)  # a second a request: the kill finds some in flight
    env = dict(os.environ, **cluster["env"])
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--ray", cluster["address"], "--ray-workers", "2",
                             *openai(server), "--threads", "4", "--duration", "8", "--output-dir", str(tmp_path),
                             "--no-history"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.stats.snapshot()["requests"] < 6:
            time.sleep(0.2)
        pids = _actor_pids()
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "warning:" in err and "exited unexpectedly" in err
    records = records_of(only_run(tmp_path))
    failed = [r for r in records if not r["ok"]]
    assert failed and all(r["error_kind"] == "cancelled" and "worker" in r["error"] for r in failed)
    assert sum(r["ok"] for r in records) > len(failed)  # the other worker went on


def test_ctrl_c_of_the_process_group_writes_every_file(cluster, make_mock, tmp_path):
    server = make_mock(ttft_ms=20, itl_ms=20, tokens=50)
    env = dict(os.environ, **cluster["env"])
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--ray", cluster["address"], "--ray-workers", "2",
                             *openai(server), "--threads", "4", "--duration", "60", "--output-dir", str(tmp_path),
                             "--no-history"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.stats.snapshot()["requests"] < 4:
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    run = only_run(tmp_path)
    for name in ("summary.json", "records.jsonl", "timeseries.csv", "report.html"):
        assert (run / name).exists(), name
    assert summary_of(run)["run"]["load"]["backend"] == "ray"


def test_a_wrong_token_and_an_unreachable_cluster_exit_2_before_anything_is_sent(cluster, make_mock, tmp_path):
    server = make_mock()
    done = sse_perf(cluster, tmp_path, "--ray", cluster["address"], *openai(server), "--threads", 2,
                    "--duration", 1, extra_env={"RAY_AUTH_TOKEN": secrets.token_hex(32)}, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "could not reach the Ray cluster" in done.stderr
    assert server.stats.snapshot()["requests"] == 0
    assert not any(tmp_path.iterdir())
    with socket.socket() as closed_port:  # a port nothing listens on: refused at once, not retried for minutes
        closed_port.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed_port.getsockname()[1]}"
    done = sse_perf(cluster, tmp_path, "--ray", address, *openai(server), "--threads", 2, "--duration", 1,
                    timeout=60)
    assert done.returncode == 2 and f"could not reach the Ray cluster at '{address}'" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line
    assert server.stats.snapshot()["requests"] == 0


def test_ray_local_runs_a_private_ray_and_writes_nothing_to_home(make_mock, tmp_path):
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=4)
    home = tmp_path / "home"
    home.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    ray_tmp = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))
    env.update(HOME=str(home), RAY_TMPDIR=str(ray_tmp))
    try:
        done = subprocess.run([sys.executable, "-m", "sse_perf_tool", "--ray", "local", "--ray-workers", "2",
                               *openai(server), "--threads", "16", "--duration", "4", "--output-dir", str(out_dir)],
                              capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ray: 2 worker(s) on 1 node(s), all on this machine's clock" in done.stdout
    run = only_run_dir(out_dir)
    assert summary_of(run)["run"]["load"]["backend"] == "ray"
    assert (out_dir / "history.db").exists()
    assert not (home / ".ray").exists()


def only_run_dir(out_dir: Path) -> Path:
    runs = [p for p in out_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _orphaned_ray_processes() -> list[int]:
    """Ray processes whose parent is gone (re-parented to init): what a start cut short leaves."""
    return [pid for pid, _, ppid in _ray_processes() if ppid == 1]


def test_ctrl_c_while_a_private_ray_starts_stops_it_and_sends_nothing(make_mock, tmp_path):
    """Ray takes seconds to start; a Ctrl-C then waits for it to be up, stops it whole, exits 130."""
    server = make_mock()
    before = set(_orphaned_ray_processes())
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    ray_tmp = Path(tempfile.mkdtemp(prefix="ri-", dir="/tmp"))
    env.update(RAY_TMPDIR=str(ray_tmp))
    proc = subprocess.Popen([sys.executable, "-m", "sse_perf_tool", "--ray", "local", *openai(server), "--threads", "2",
                             "--duration", "5", "--output-dir", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        assert "ray: starting a private Ray" in proc.stdout.readline()  # printed as Ray begins to start
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted while Ray started: nothing was sent" in out
    assert server.stats.snapshot()["requests"] == 0
    assert not any(p.is_dir() for p in tmp_path.iterdir())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(_orphaned_ray_processes()) - before:
        time.sleep(0.5)
    assert not set(_orphaned_ray_processes()) - before
