"""A tiny raw-TCP server on 127.0.0.1:0 that plays a scripted list of actions per connection.

Test helper only: it speaks no HTTP itself, so a test can send any bytes, in any pieces, and
end the connection any way (close, RST, never answer). Every wait is bounded by `stop()`.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Union

MAX_HANG_S = 5.0  # "never answer" still ends: no test may hang on a helper


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Close:
    """Orderly close (FIN) after everything sent."""


@dataclass(frozen=True)
class Reset:
    """Abortive close: SO_LINGER 0, so the peer gets an RST."""


@dataclass(frozen=True)
class Hang:
    """Never answer again (until the server stops or MAX_HANG_S passes)."""

    seconds: float = MAX_HANG_S


Action = Union[Send, Sleep, Close, Reset, Hang]


@dataclass
class Received:
    """One request as the server read it: raw head and body."""

    head: bytes
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def headers(self) -> dict[str, str]:
        """Header names lower-cased; the last value wins."""
        out: dict[str, str] = {}
        for line in self.head.split(b"\r\n")[1:]:
            if b":" in line:
                name, value = line.split(b":", 1)
                out[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        return out


@dataclass
class FaultServer:
    """Plays `script` on every accepted connection (read the request first unless `read_request` is False)."""

    script: list
    read_request: bool = True
    connections: int = 0
    requests: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-server", daemon=True)
        self._acceptor.start()

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _read_request(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        buf = b""
        while b"\r\n\r\n" not in buf:
            piece = conn.recv(65536)
            if not piece:
                return
            buf += piece
        head, body = buf.split(b"\r\n\r\n", 1)
        received = Received(head, b"")
        length = int(received.headers.get("content-length", "0"))
        while len(body) < length:
            piece = conn.recv(65536)
            if not piece:
                break
            body += piece
        received.body = body
        with self._lock:
            self.requests.append(received)

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.read_request:
                self._read_request(conn)
            for action in self.script:
                if self._stop.is_set():
                    break
                if isinstance(action, Send):
                    conn.sendall(action.data)
                elif isinstance(action, Sleep):
                    self._stop.wait(action.seconds)
                elif isinstance(action, Hang):
                    self._stop.wait(min(action.seconds, MAX_HANG_S))
                elif isinstance(action, Reset):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                elif isinstance(action, Close):
                    break
        except OSError:
            pass  # the client went away first: nothing to play to
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._acceptor.join(2.0)
        for thread in self._threads:
            thread.join(2.0)

    def __enter__(self) -> "FaultServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- HTTP response pieces -----------------------------------------------------------------


def head(status: str = "200 OK", content_type: str = "text/event-stream", *, chunked: bool = False,
         length: int | None = None, version: str = "HTTP/1.1", extra: tuple = ()) -> bytes:
    """A response head. Neither chunked nor length: a close-delimited body (Connection: close)."""
    lines = [f"{version} {status}", f"Content-Type: {content_type}"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    else:
        lines.append("Connection: close")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def json_response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    return head(status, content_type, length=len(body)) + body
