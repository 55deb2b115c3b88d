"""The mock server's HTTP/1.1 plumbing: reading a request body (Content-Length or chunked, at
most 8 MiB), writing JSON, empty and streamed (chunked, one event per chunk) responses, and the
threading server that binds without a DNS lookup, registers each accepted connection and keeps
quiet about clients that went away. Standard library only; imports nothing from the package.

What a request gets is not decided here: `_HTTPServer.mock` is the mock_server.MockServer that
answers (its `_serve_post` and `_serve_other_method`) and tracks connections
(`_connection_opened`, `_connection_closed`, `_stop_event`).
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

_MAX_BODY_BYTES = 8 * 1024 * 1024
_SSE_HEADERS = (
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
    ("Transfer-Encoding", "chunked"),
)


class _ClientGone(Exception):
    """The client closed the connection, or stop() cut it: end the handler quietly."""


class _BodyError(Exception):
    """The request body cannot be read (too large, bad framing); answered, then the connection
    is closed because the rest of the body may still be on the wire."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; streams use chunked encoding
    server_version = "sse-perf-mock/0.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: an event is sent when written, not batched
    timeout = 300  # idle keep-alive connections and stuck writes give up after this (s)
    server: "_HTTPServer"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # no per-request lines on stderr

    # -- dispatch

    def do_POST(self) -> None:
        self.server.mock._serve_post(self)

    def _not_post(self) -> None:
        self.server.mock._serve_other_method(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post

    def do_HEAD(self) -> None:
        self.server.mock._serve_other_method(self, head=True)

    # -- I/O helpers used by MockServer

    def read_body(self) -> bytes:
        """The request body (Content-Length or chunked). Raises _BodyError, _ClientGone."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BodyError(400, "Invalid Content-Length header.") from None
        if length < 0:
            raise _BodyError(400, "Invalid Content-Length header.")
        if length > _MAX_BODY_BYTES:
            raise _BodyError(413, "Request body too large.")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _ClientGone()
        return body

    def _read_chunked_body(self) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise _ClientGone()
            try:
                length = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "Invalid chunk size in the request body.") from None
            if length == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(parts)
            size += length
            if size > _MAX_BODY_BYTES:
                raise _BodyError(413, "Request body too large.")
            parts.append(self.rfile.read(length))
            self.rfile.readline(3)  # the CRLF after the chunk

    def send_json(self, status: int, obj: Any, headers: Iterable[tuple[str, str]] = (), head: bool = False) -> None:
        payload = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_body(status, "application/json", payload, headers, head)

    def send_body(self, status: int, content_type: str, payload: bytes, headers: Iterable[tuple[str, str]] = (),
                  head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def send_empty(self, status: int) -> None:
        """A response with no body and no Content-Type (starlette's bare `Response(status_code=...)`)."""
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def send_stream_headers(self, content_type: str = "") -> None:
        self.send_response(200)
        for key, value in _SSE_HEADERS:
            self.send_header(key, content_type if content_type and key == "Content-Type" else value)
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        """One event = one chunk = one send, so no event waits for the next."""
        self.wfile.write(b"%X\r\n%b\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0, then close): the client's next read
        fails with a reset, not an end of stream. Nothing may be written after it."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()
        self.rfile.close()  # the last reference to the socket: the close (and the RST) happens now


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple, mock: Any) -> None:  # mock: the mock_server.MockServer
        self.mock = mock
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(host), a DNS lookup that can hang; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def get_request(self) -> tuple:
        request, address = super().get_request()
        # Registered here, in the serving thread, so stop() sees every accepted socket once
        # shutdown() has returned.
        self.mock._connection_opened(request)
        return request, address

    def shutdown_request(self, request: Any) -> None:
        self.mock._connection_closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, _ClientGone)) or self.mock._stop_event.is_set():
            return  # a client that went away is not a server error
        super().handle_error(request, client_address)


class _V6Server(_HTTPServer):
    address_family = socket.AF_INET6


def _shutdown_socket(conn: Any, how: int) -> None:
    try:
        conn.shutdown(how)
    except OSError:
        pass  # already closed by the handler

