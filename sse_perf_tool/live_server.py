"""The live view's HTTP server (--live): the page, `/events` (Server-Sent Events from the
LiveFeed), `/metrics` (Prometheus text) and `POST /stop`, on the standard library's threading
HTTP server (one local user and a few watchers need no more; each stream has its own thread).

Security: it binds what --live says (127.0.0.1 by default; config.parse_live_address refuses
any other address without --allow-remote). Every request needs the run's random token: the URL
printed in the terminal carries it once (`/?token=...`), the answer sets it as a cookie (HttpOnly,
SameSite=Strict, named for the port) and sends the browser on to `/`; a scraper may send it as
`Authorization: Bearer TOKEN`. `POST /stop` needs the token in the X-SSE-Perf-Token header, which
no other site's page can send (no CSRF). On a loopback address the Host header must name that
address (a DNS-rebinding page cannot use the port). The page has the report's
Content-Security-Policy, with connections allowed to this origin only.

Imports nothing of the package but live_feed's types (duck-typed: `watch`, `leave`, `metrics`).
"""

from __future__ import annotations

import hmac
import queue
import secrets
import socket
import threading
import time
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WRITE_TIMEOUT_S = 10.0  # a browser that takes no byte for this long is dropped
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies and the browser from closing a quiet stream
RETRY_MS = 1000  # how soon a browser reconnects after the stream broke
TOKEN_HEADER = "X-SSE-Perf-Token"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, ipv6: bool):
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        super().__init__(address, handler)


class LiveServer:
    """Bound when made (an address in use fails here, before anything is sent); serving from
    `start()` until `close()`."""

    def __init__(self, host: str, port: int, token: Optional[str] = None):
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        self._httpd = _Server((host, port), _Handler, ipv6=":" in host)
        self._httpd.live = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.cookie = f"sse_perf_live_{self.port}"
        shown = f"[{host}]" if ":" in host else host
        self.origin = f"http://{shown}:{self.port}"
        self.url = f"{self.origin}/?token={self.token}"
        self.loopback = host in LOOPBACK
        self.allowed_hosts = {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")} \
            if self.loopback else None
        self.feed = None
        self.page: bytes = b""
        self.csp = "default-src 'none'"
        self._stop: Callable[[], None] = lambda: None
        self.stop_requested = False
        self._stop_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self.closing = threading.Event()

    def start(self, feed, page: bytes, csp: str, stop: Callable[[], None]) -> "LiveServer":
        self.feed, self.page, self.csp, self._stop = feed, page, csp, stop
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sse-perf-live", daemon=True)
        self._thread.start()
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

    def close(self) -> None:
        """Stop serving; open streams end (they have been sent the end event by then)."""
        self.closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(2)
        self._httpd.server_close()

    def authorised(self, handler: "_Handler", query: dict) -> bool:
        given = [*(query.get("token") or []), handler.cookie_token()]
        auth = handler.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return any(value and hmac.compare_digest(value, self.token) for value in given)


class _Handler(BaseHTTPRequestHandler):
    server_version = "sse-perf-live"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # each answer ends with its connection: an event stream runs until then

    @property
    def live(self) -> LiveServer:
        return self.server.live  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        return  # the terminal is the live table's

    def cookie_token(self) -> str:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except CookieError:  # a malformed Cookie header carries no token
            return ""
        morsel = cookie.get(self.live.cookie)
        return morsel.value if morsel is not None else ""

    # -- answers --
    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: tuple = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers()
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")

    def _refuse(self, status: int, text: str) -> None:
        self._send(status, (text + "\n").encode("utf-8"))

    def _host_ok(self) -> bool:
        allowed = self.live.allowed_hosts
        if allowed is None:  # --allow-remote: reached by any name; the token is the guard
            return True
        if self.headers.get("Host", "").strip().lower() in allowed:
            return True
        self._refuse(403, "sse-perf live: this Host header is not the live view's address (DNS rebinding?)")
        return False

    # -- routes --
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        live = self.live
        if url.path == "/favicon.ico":
            self._send(404, b"")
            return
        if url.path not in ("/", "/events", "/metrics"):
            self._refuse(404, "sse-perf live: no such page (/, /events, /metrics)")
            return
        if not live.authorised(self, query):
            self._refuse(403, "sse-perf live: open the URL with its token that the terminal printed "
                              "(http://HOST:PORT/?token=...)")
            return
        if url.path == "/" and query.get("token"):  # the printed URL: the token becomes a cookie, the URL loses it
            self._send(303, b"", headers=(
                ("Location", "/"),
                ("Set-Cookie", f"{live.cookie}={live.token}; Path=/; HttpOnly; SameSite=Strict")))
            return
        if url.path == "/":
            self._send(200, live.page, "text/html; charset=utf-8",
                       headers=(("Content-Security-Policy", live.csp + "; frame-ancestors 'none'"),))
        elif url.path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            self._send(200, live.feed.metrics.text(), CONTENT_TYPE_LATEST)
        else:
            self._events()

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        live = self.live
        if urlsplit(self.path).path != "/stop":
            self._refuse(404, "sse-perf live: the only action is POST /stop")
            return
        given = self.headers.get(TOKEN_HEADER, "")
        if not (given and hmac.compare_digest(given, live.token)):
            self._refuse(403, f"sse-perf live: POST /stop needs the run's token in the {TOKEN_HEADER} header")
            return
        first = live.request_stop()
        self._send(202, b'{"stopping":true,"first":' + (b"true" if first else b"false") + b"}",
                   "application/json")

    def _events(self) -> None:
        live = self.live
        last = self.headers.get("Last-Event-ID", "").strip()
        watcher, replay = live.feed.watch(int(last) if last.isdigit() else None)
        try:
            self.connection.settimeout(WRITE_TIMEOUT_S)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self._common_headers()
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
