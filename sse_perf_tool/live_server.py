"""The live view's HTTP server (--live): the page, `/events` (Server-Sent Events from the
LiveFeed), `/metrics` (Prometheus text) and `POST /stop`, on web_guard's threading server (the
standard library's: one local user and a few watchers need no more; each stream has its own
thread). The token, its cookie, the Host check and the safety headers are web_guard's; the page
has the report's Content-Security-Policy with connections allowed to this origin only, and may
not be framed.

Imports web_guard; the feed is duck-typed (`watch`, `leave`, `watching`, `metrics`).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Optional

from .web_guard import TOKEN_HEADER, GuardedHandler, GuardedServer

__all__ = ["LiveServer", "TOKEN_HEADER"]

WRITE_TIMEOUT_S = 10.0  # a browser that takes no byte for this long is dropped
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies and the browser from closing a quiet stream
RETRY_MS = 1000  # how soon a browser reconnects after the stream broke


class LiveServer(GuardedServer):
    """Bound when made (an address in use fails here, before anything is sent); serving from
    `start()` until `close()`."""

    def __init__(self, host: str, port: int, token: Optional[str] = None):
        super().__init__(host, port, _Handler, token, name="sse-perf-live")
        self.feed = None
        self.page: bytes = b""
        self.csp = "default-src 'none'"
        self._stop: Callable[[], None] = lambda: None
        self.stop_requested = False
        self._stop_lock = threading.Lock()

    def start(self, feed, page: bytes, csp: str, stop: Callable[[], None]) -> "LiveServer":
        self.feed, self.page, self.csp, self._stop = feed, page, csp, stop
        self.serve()
        return self

    def request_stop(self) -> bool:
        """The Stop button: the run's stop is called once; False when it was asked already."""
        with self._stop_lock:
            if self.stop_requested:
                return False
            self.stop_requested = True
        self._stop()
        return True

    def linger(self, limit_s: float = 1.0) -> None:
        """After the end event: a moment (at most `limit_s`) for every open stream to take it."""
        deadline = time.monotonic() + limit_s
        while self.feed is not None and self.feed.watching() and time.monotonic() < deadline:
            time.sleep(0.02)


class _Handler(GuardedHandler):
    server_version = "sse-perf-live"

    def guarded_get(self, path: str, query: dict) -> None:
        live = self.guard
        if path == "/":
            self.send(200, live.page, "text/html; charset=utf-8",
                      headers=(("Content-Security-Policy", live.csp + "; frame-ancestors 'none'"),))
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            self.send(200, live.feed.metrics.text(), CONTENT_TYPE_LATEST)
        elif path == "/events":
            self._events()
        else:
            self.refuse(404, "sse-perf live: no such page (/, /events, /metrics)")

    def guarded_post(self, path: str, body: bytes) -> None:
        if path != "/stop":
            self.refuse(404, "sse-perf live: the only action is POST /stop")
            return
        first = self.guard.request_stop()
        self.send(202, b'{"stopping":true,"first":' + (b"true" if first else b"false") + b"}", "application/json")

    def _events(self) -> None:
        live = self.guard
        last = self.headers.get("Last-Event-ID", "").strip()
        watcher, replay = live.feed.watch(int(last) if last.isdigit() else None)
        try:
            self.connection.settimeout(WRITE_TIMEOUT_S)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.safety_headers()
            self.send_header("X-Accel-Buffering", "no")  # a proxy in front must not hold the events back
            self.end_headers()
            self.wfile.write(f"retry: {RETRY_MS}\n\n".encode("ascii") + b"".join(replay))
            self.wfile.flush()
            if replay and replay[-1].startswith(b"event: end"):
                return
            quiet = 0.0
            while not live.closing.is_set() and not watcher.dropped:
                try:
                    message = watcher.queue.get(timeout=1.0)
                except queue.Empty:
                    quiet += 1.0
                    if quiet >= KEEPALIVE_S:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        quiet = 0.0
                    continue
                quiet = 0.0
                self.wfile.write(message)
                self.wfile.flush()
                if message.startswith(b"event: end"):
                    return
        except OSError:  # the browser went away, or took nothing for WRITE_TIMEOUT_S: it is dropped
            return
        finally:
            live.feed.leave(watcher)
