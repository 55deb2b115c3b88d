"""The live view's server (--live) over real loopback HTTP: the token, the cookie, the Host check,
POST /stop, /events (replay, Last-Event-ID resume, a browser that stops reading), /metrics; and a
real `sse-perf --demo --live` run stopped through POST /stop as Ctrl-C stops it."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from sse_perf_tool.live_feed import LiveFeed
from sse_perf_tool.live_page import render_live_page
from sse_perf_tool.live_server import TOKEN_HEADER, LiveServer

from live_runs import start_live_run
from waiting import wait_until


def _row(second: int, ok: int = 2, **extra) -> dict:
    row = {"second": second, "active_threads": 4, "requests_started": 3, "requests_ok": ok, "requests_failed": 0,
           "output_tokens": 64 * ok, "ttft_p50_ms": 200.0 + second, "ttft_p95_ms": 210.0, "tpot_p50_ms": 20.0,
           "tpot_p95_ms": 21.0, "e2e_p50_ms": 1400.0, "e2e_p95_ms": 1460.0, "success_rate_pct": 100.0}
    row.update(extra)
    return row


LIVE = {"tokens_per_s": 128.0, "gpu_util_pct": None, "total_threads": 4}


@pytest.fixture
def served():
    """A LiveServer on a free loopback port with a fresh feed; (server, feed, stops: the Stop calls)."""
    stops: list = []
    server = LiveServer("127.0.0.1", 0)
    feed = LiveFeed("en", cores=1)
    page, csp = render_live_page("en", server.token, [("Target", "http://127.0.0.1:9/v1")], 3600)
    server.start(feed, page, csp, lambda: stops.append(time.monotonic()))
    yield server, feed, stops
    server.close()


def _request(server, method: str, path: str, headers: dict = None, body: bytes = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _bearer(server) -> dict:
    return {"Authorization": f"Bearer {server.token}"}


def test_every_page_needs_the_token_and_the_printed_url_turns_it_into_a_cookie(served):
    server, _, _ = served
    for path in ("/", "/events", "/metrics", "/?token=wrong"):
        status, _, body = _request(server, "GET", path)
        assert status == 403, path
        assert b"token" in body
    status, headers, _ = _request(server, "GET", f"/?token={server.token}")
    assert status == 303 and headers["Location"] == "/"  # the token leaves the address bar
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{server.cookie}={server.token};") and str(server.port) in server.cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, headers, body = _request(server, "GET", "/", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert b"http://" not in body.replace(b"http://127.0.0.1:9/v1", b"")  # no external URL: the page works offline


def test_a_foreign_host_header_is_refused_even_with_the_token(served):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends its own Host."""
    server, _, _ = served
    for host in ("evil.example", f"evil.example:{server.port}", "127.0.0.1:1"):
        status, _, body = _request(server, "GET", "/metrics", {**_bearer(server), "Host": host})
        assert status == 403 and b"Host" in body
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        assert _request(server, "GET", "/metrics", {**_bearer(server), "Host": host})[0] == 200


def test_stop_is_a_post_with_the_token_in_a_header_and_acts_once(served):
    server, _, stops = served
    cookie = {"Cookie": f"{server.cookie}={server.token}"}
    assert _request(server, "GET", "/stop", cookie)[0] == 404
    assert _request(server, "POST", "/stop", cookie)[0] == 403  # a cookie alone: what a CSRF form would send
    assert _request(server, "POST", "/stop", {TOKEN_HEADER: "wrong"})[0] == 403
    assert stops == []
    status, _, body = _request(server, "POST", "/stop", {TOKEN_HEADER: server.token})
    assert status == 202 and json.loads(body) == {"stopping": True, "first": True}
    status, _, body = _request(server, "POST", "/stop", {TOKEN_HEADER: server.token})
    assert status == 202 and json.loads(body)["first"] is False
    assert len(stops) == 1  # a second click does not become a second Ctrl-C (which would quit at once)


class _EventReader:
    """/events over a raw socket: the events as they arrive, parsed as an EventSource would."""

    def __init__(self, server, last_id=None):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {server.token}\r\n"
        if last_id is not None:
            head += f"Last-Event-ID: {last_id}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.buffer = b""
        self.head = self._until(b"\r\n\r\n")

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("stream closed")
            self.buffer += data
        part, self.buffer = self.buffer.split(mark, 1)
        return part

    def event(self) -> dict:
        """The next event (comments and retry lines skipped): {event, id, data}."""
        while True:
            block = self._until(b"\n\n").decode()
            fields = {"event": "message", "id": None, "data": None}
            for line in block.split("\n"):
                name, _, value = line.partition(": ")
                if name in ("event", "id"):
                    fields[name] = value
                elif name == "data":
                    fields["data"] = json.loads(value)
            if fields["data"] is not None:
                return fields

    def close(self):
        self.sock.close()


def test_events_replay_the_seconds_so_far_then_follow_and_resume_after_last_event_id(served):
    server, feed, _ = served
    for second in range(3):
        feed.second(_row(second), LIVE)
    first = _EventReader(server)
    assert b"text/event-stream" in first.head
    assert first.event()["event"] == "view"  # the charts to draw come first
    got = [first.event() for _ in range(3)]
    assert [(e["id"], e["data"]["second"]) for e in got] == [("0", 0), ("1", 1), ("2", 2)]
    assert wait_until(lambda: feed.watching() == 1)
    feed.second(_row(3), LIVE)
    live = first.event()
    assert live["id"] == "3" and live["data"]["cells"][0] == ["time", "4s"]
    first.close()  # the browser's connection breaks after second 3 ...
    feed.warning("!! load generator saturated from 4 s")
    feed.second(_row(4), LIVE)
    feed.second(_row(5), LIVE)
    again = _EventReader(server, last_id=3)  # ... and its EventSource comes back with Last-Event-ID: 3
    assert again.event()["event"] == "view"
    resumed = [again.event() for _ in range(3)]
    assert [e["event"] for e in resumed] == ["warning", "message", "message"]
    assert resumed[0]["data"]["text"] == "!! load generator saturated from 4 s"
    assert [e["data"]["second"] for e in resumed[1:]] == [4, 5]  # no gap, no second twice
    feed.end(130, "report/x", "report/x/report.html")
    end = again.event()
    assert end["event"] == "end" and end["data"] == {"exit_code": 130, "run_dir": "report/x",
                                                     "report": "report/x/report.html"}
    with pytest.raises(EOFError):  # the stream ends with the run
        again.event()
    again.close()


def test_a_browser_that_stops_reading_is_dropped_and_never_slows_the_feed(served):
    """A watcher whose socket takes nothing: the feed's calls (the aggregator's thread) go on; the
    watcher falls a queue behind and is dropped, and its connection is closed."""
    server, feed, _ = served
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", server.port))
    stuck.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer "
                  f"{server.token}\r\n\r\n".encode())
    reader = _EventReader(server)  # and one that reads
    assert wait_until(lambda: feed.watching() == 2)
    big = {f"server[x{i}]": float(i) for i in range(2000)}  # ~40 KB rows: the stuck socket's buffers fill fast
    done = threading.Event()
    seconds: list = []

    def aggregator():  # a second's row at a time, as the aggregator sends them (the reader keeps up)
        for second in range(feed.queue_max * 4):
            feed.second(_row(second, **big), LIVE)
            wait_until(lambda: len(seconds) >= second - 8, timeout_s=10)
        done.set()

    thread = threading.Thread(target=aggregator, daemon=True)
    thread.start()
    while len(seconds) < feed.queue_max * 4:
        event = reader.event()
        if event["event"] == "message":
            seconds.append(event["data"]["second"])
    assert done.wait(10)  # a bound against a hang: a blocking feed would never get here
    assert seconds == list(range(feed.queue_max * 4))  # the reading browser got every second
    assert feed.dropped == 1 and feed.watching() == 1
    reader.close()
    stuck.close()


def test_metrics_are_prometheus_text_of_the_run(served):
    from prometheus_client.parser import text_string_to_metric_families

    server, feed, _ = served
    feed.record({"ok": True, "error_kind": None, "output_tokens": 64, "ttft_ms": 200.0, "tpot_ms": 20.0,
                 "e2e_ms": 1460.0, "warmup": False})
    feed.record({"ok": False, "error_kind": "http_status", "output_tokens": 0, "ttft_ms": None, "tpot_ms": None,
                 "e2e_ms": None, "warmup": False})
    feed.second(_row(0), LIVE)
    status, headers, body = _request(server, "GET", "/metrics", _bearer(server))
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("sse_perf_requests_total", (("outcome", "ok"),))] == 1
    assert samples[("sse_perf_requests_total", (("outcome", "http_status"),))] == 1
    assert samples[("sse_perf_output_tokens_total", ())] == 64
    assert samples[("sse_perf_ttft_seconds_count", ())] == 1
    assert samples[("sse_perf_ttft_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("sse_perf_ttft_seconds_bucket", (("le", "0.1"),))] == 0
    assert samples[("sse_perf_active_threads", ())] == 4
    assert samples[("sse_perf_output_tokens_per_second", ())] == 128.0


# -- a real run ------------------------------------------------------------------------------------


def test_a_live_run_stopped_from_the_live_view_ends_as_ctrl_c_does(tmp_path):
    proc, url, lines = start_live_run(tmp_path)
    try:
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        assert wait_until(lambda: any(line.strip().startswith("2s") for line in lines), timeout_s=30)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/stop", headers={TOKEN_HEADER: token})
        assert conn.getresponse().status == 202
        conn.close()
        proc.wait(30)  # a bound against a hang only
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert any("interrupted (Ctrl-C)" in line for line in lines)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True and summary["requests"]["ok"] >= 1
    assert (run_dir / "report.html").is_file() and (run_dir / "timeseries.csv").is_file()


def test_an_address_in_use_is_refused_before_anything_is_sent(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        out = subprocess.run([sys.executable, "-m", "sse_perf_tool", "--demo", "--duration", "1", "--live",
                              f"127.0.0.1:{taken.getsockname()[1]}", "--output-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("sse-perf: error: --live 127.0.0.1:")
    assert "cannot listen there" in out.stderr
    assert out.stdout == "" and not any(tmp_path.iterdir())


def test_the_cli_refuses_a_reachable_live_address_with_one_line_and_exit_2(tmp_path):
    """Bad input: one clear line on stderr and exit code 2 before anything is sent (nothing is
    bound: validation fails first)."""
    proc = subprocess.run([sys.executable, "-m", "sse_perf_tool", "--demo", "--live", "0.0.0.0:0", "--duration", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sse-perf: error:"), proc.stderr
    assert "--allow-remote" in lines[0]
    assert "live view:" not in proc.stdout
    assert proc.stdout.strip() == "", proc.stdout
    assert not any(tmp_path.iterdir()), "no run folder, no history: nothing was run"
