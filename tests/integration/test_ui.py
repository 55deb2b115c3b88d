"""`sse-perf ui` over real loopback HTTP: every page and call needs the token, a foreign Host is
refused, a POST needs the token in its header, a run folder serves only its own files, bad
addresses are usage errors, and Ctrl-C stops the console and the runs it started."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys

import pytest

from live_runs import start_console
from waiting import wait_until


@pytest.fixture
def console(tmp_path):
    proc, url = start_console(tmp_path)
    yield proc, url, tmp_path
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _call(url: str, method: str, path: str, headers: dict = None, body=None):
    port = int(url.split(":")[2].split("/")[0])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _token(url: str) -> str:
    return url.split("token=")[1]


def test_no_page_or_call_without_the_token(console):
    _, url, _ = console
    for path in ("/", "/new", "/targets", "/runs/1", "/compare?ids=1,2"):
        assert _call(url, "GET", path)[0] == 403, path
    bearer = {"Authorization": f"Bearer {_token(url)}"}
    assert _call(url, "GET", "/", bearer)[0] == 200
    for path in ("/api/check", "/api/start", "/api/targets/save", "/api/stop"):
        status, _ = _call(url, "POST", path, {"Cookie": f"x={_token(url)}", **bearer}, {"demo": True})
        assert status == 403, path  # the cookie or bearer alone is what a forged form could send
    status, body = _call(url, "POST", "/api/check", {"X-SSE-Perf-Token": _token(url)}, {"demo": True, "threads": "2"})
    assert status == 200 and json.loads(body)["command"] == "sse-perf --demo --threads 2"


def test_a_foreign_host_header_is_refused(console):
    _, url, _ = console
    headers = {"Authorization": f"Bearer {_token(url)}", "Host": "rebound.example:80"}
    assert _call(url, "GET", "/", headers)[0] == 403
    assert _call(url, "POST", "/api/check", {"X-SSE-Perf-Token": _token(url), "Host": "rebound.example"},
                 {"demo": True})[0] == 403


def test_a_run_serves_only_its_own_files_by_name(console):
    _, url, tmp_path = console
    bearer = {"Authorization": f"Bearer {_token(url)}"}
    for path in ("/runs/1/files/../../../etc/passwd", "/runs/1/files/%2e%2e%2fhistory.db", "/runs/1/files/history.db",
                 "/runs/999/report"):
        assert _call(url, "GET", path, bearer)[0] == 404, path


def test_targets_keep_no_secret(console):
    _, url, _ = console
    post = {"X-SSE-Perf-Token": _token(url)}
    status, body = _call(url, "POST", "/api/targets/save", post,
                         {"name": "gpu1", "base_url": "http://gpu1:8000/v1", "api": "openai-chat",
                          "headers": "Authorization: Bearer sk-live-123456"})
    answer = json.loads(body)
    assert status == 200 and answer["ok"] is False and "headers" in answer["errors"]
    assert "sk-live-123456" not in body.decode()
    status, body = _call(url, "POST", "/api/targets/save", post,
                         {"name": "gpu1", "base_url": "http://gpu1:8000/v1/", "api": "openai-chat", "key_env": "GPU1_KEY",
                          "headers": "X-Team: llm"})
    assert json.loads(body)["ok"] is True
    status, body = _call(url, "GET", "/targets", {"Authorization": f"Bearer {_token(url)}"})
    assert b"http://gpu1:8000/v1<" in body and b"GPU1_KEY" in body


@pytest.mark.parametrize("extra,needle", [(["--host", "0.0.0.0"], "--allow-remote"), (["--port", "99999"], "port")])
def test_bad_addresses_are_one_line_and_exit_2(tmp_path, extra, needle):
    out = subprocess.run([sys.executable, "-m", "sse_perf_tool", "ui", "--output-dir", str(tmp_path), *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and needle in out.stderr, out.stderr
    assert out.stdout == ""


def test_a_port_in_use_is_exit_2(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        out = subprocess.run([sys.executable, "-m", "sse_perf_tool", "ui", "--port", str(taken.getsockname()[1]),
                              "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert out.returncode == 2 and "cannot listen" in out.stderr and out.stderr.count("\n") == 1


def test_ctrl_c_stops_the_console_and_the_runs_it_started(console):
    proc, url, tmp_path = console
    status, body = _call(url, "POST", "/api/start", {"X-SSE-Perf-Token": _token(url)},
                         {"demo": True, "threads": "2", "duration": "120"})
    started = json.loads(body)
    assert status == 200 and started["ok"] is True and started["live_url"].startswith("http://127.0.0.1:")
    proc.send_signal(signal.SIGINT)
    proc.wait(60)  # a bound against a hang only
    assert proc.returncode == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert wait_until(lambda: (run_dir / "summary.json").is_file(), timeout_s=10)
    assert json.loads((run_dir / "summary.json").read_text())["run"]["interrupted"] is True
