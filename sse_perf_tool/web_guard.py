"""What the local web pages of sse-perf (the live view of --live, the console of `sse-perf ui`)
share: a threading HTTP server bound to one address, its random token and how a request proves
it has it, the Host check, and the answers' safety headers.

The token: the URL printed in the terminal carries it once (`/?token=...`); the answer sets it as
a cookie (HttpOnly, SameSite=Strict, named for the port, as cookies ignore ports) and sends the
browser on without it; a script or scraper may send `Authorization: Bearer TOKEN`. A request
that changes something is a POST with the token in the X-SSE-Perf-Token header, which no other
site's page can send (no CSRF). On a loopback address the Host header must name that address, so
a DNS-rebinding page cannot use the port. Imports nothing of sse-perf.
"""

from __future__ import annotations

import hmac
import secrets
import socket
import threading
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_HEADER = "X-SSE-Perf-Token"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, ipv6: bool):
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        super().__init__(address, handler)


class GuardedServer:
    """Bound when made (an address in use raises OSError here, before anything else happens);
    serving `handler` (a GuardedHandler subclass) from `serve()` until `close()`."""

    def __init__(self, host: str, port: int, handler, token: Optional[str] = None, name: str = "sse-perf-web"):
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        self._httpd = _Server((host, port), handler, ipv6=":" in host)
        self._httpd.guard = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.cookie = f"sse_perf_{self.port}"
        shown = f"[{host}]" if ":" in host else host
        self.origin = f"http://{shown}:{self.port}"
        self.url = f"{self.origin}/?token={self.token}"
        self.loopback = host in LOOPBACK
        self.allowed_hosts = {f"{n}:{self.port}" for n in ("127.0.0.1", "localhost", "[::1]")} if self.loopback else None
        self.closing = threading.Event()
        self._name = name
        self._thread: Optional[threading.Thread] = None

    def serve(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=self._name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.closing.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(2)
        self._httpd.server_close()

    def holds_token(self, values) -> bool:
        return any(value and hmac.compare_digest(value, self.token) for value in values)


class GuardedHandler(BaseHTTPRequestHandler):
    """A request to a GuardedServer: `guarded_get()` and `guarded_post()` checked for the Host and
    the token first; the answers carry no-store, nosniff, no-referrer and no framing."""

    server_version = "sse-perf"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # each answer ends with its connection: an event stream runs until then

    @property
    def guard(self) -> GuardedServer:
        return self.server.guard  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        return  # the terminal is the run's

    # -- what a request carries --
    def cookie_token(self) -> str:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except CookieError:  # a malformed Cookie header carries no token
            return ""
        morsel = cookie.get(self.guard.cookie)
        return morsel.value if morsel is not None else ""

    def authorised(self, query: dict) -> bool:
        given = [*(query.get("token") or []), self.cookie_token()]
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        return self.guard.holds_token(given)

    # -- answers --
    def send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
             headers: tuple = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.safety_headers()
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def safety_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "SAMEORIGIN")

    def refuse(self, status: int, text: str) -> None:
        self.send(status, (text + "\n").encode("utf-8"))

    def _host_ok(self) -> bool:
        allowed = self.guard.allowed_hosts
        if allowed is None or self.headers.get("Host", "").strip().lower() in allowed:
            return True  # (--allow-remote: reached by any name; the token is the guard)
        self.refuse(403, "sse-perf: this Host header is not this page's address (DNS rebinding?)")
        return False

    # -- the checks, then the routes --
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/favicon.ico":
            self.send(404, b"")
            return
        if not self.authorised(query):
            self.refuse(403, "sse-perf: open the URL with its token that the terminal printed "
                             "(http://HOST:PORT/?token=...)")
            return
        if url.path == "/" and query.get("token"):  # the printed URL: the token becomes a cookie, the URL loses it
            guard = self.guard
            self.send(303, b"", headers=(("Location", "/"), ("Set-Cookie", f"{guard.cookie}={guard.token}; "
                                                                           "Path=/; HttpOnly; SameSite=Strict")))
            return
        self.guarded_get(url.path, query)

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        if not self.guard.holds_token([self.headers.get(TOKEN_HEADER, "")]):
            self.refuse(403, f"sse-perf: a POST needs the token in the {TOKEN_HEADER} header")
            return
        length = self.headers.get("Content-Length", "0")
        size = int(length) if length.isdigit() else 0
        if size > 1 << 20:
            self.refuse(413, "sse-perf: a request body over 1 MiB")
            return
        self.guarded_post(urlsplit(self.path).path, self.rfile.read(size) if size else b"")

    def guarded_get(self, path: str, query: dict) -> None:
        self.refuse(404, "sse-perf: no such page")

    def guarded_post(self, path: str, body: bytes) -> None:
        self.refuse(404, "sse-perf: no such action")
