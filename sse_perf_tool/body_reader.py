"""Reading a streaming response body as the bytes arrive, for the tester: the fastest reader the
connection allows (blocking recv() with a kernel timeout on plain TCP under Linux, http.client's
read1 otherwise), unframing chunked bodies (chunked.ChunkedBody), and draining the body's last
bytes after the end event so the connection can be kept.

Imports chunked, records (one_line) and urllib3's exception types. Raises BodyCut where a body was cut short;
the tester decides what that means for the request.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import sys

from urllib3.exceptions import ProtocolError as Urllib3ProtocolError
from urllib3.exceptions import ReadTimeoutError

from .chunked import ChunkedBody, IncompleteBody
from .records import one_line

READ_SIZE = 65536
DRAIN_LIMIT_S = 0.2  # after the end event, how long the body's closing bytes may take before the connection is dropped
DRAIN_READS = 16


class BodyCut(Exception):
    """The connection cut the body short after its end event (closed or reset before the closing chunk)."""


def finish_body(response, read, complete) -> None:
    """After the end event (its timings already taken): read the body's last bytes, normally the
    closing chunk already on its way, so the connection is kept for this thread's next request as
    a browser or an SDK would keep it. A server that goes on sending, or holds the stream open,
    past DRAIN_LIMIT_S costs only that connection: it is closed as before. A body that the
    connection cuts short (closed or reset before the closing chunk) was not sent whole: the
    request is `truncated` (llama-cpp-python cuts interrupted streams so, after their [DONE])."""
    sock = socket_of(response)
    raw = response.raw
    fp = getattr(raw, "_fp", None)
    if sock is None or fp is None or not hasattr(fp, "isclosed"):
        return
    try:
        previous = sock.gettimeout()
        sock.settimeout(DRAIN_LIMIT_S)
        try:
            for _ in range(DRAIN_READS):
                if not read(READ_SIZE):
                    break
        finally:
            sock.settimeout(previous)
    except (IncompleteBody, http.client.IncompleteRead, ConnectionError, Urllib3ProtocolError) as exc:
        raise BodyCut(root_cause(exc)) from None
    except (OSError, http.client.HTTPException, ReadTimeoutError):
        return  # silence past the limit, or odd bytes after the end: the connection is closed with the response
    if complete():  # the whole body was read and nothing after it: the connection is clean
        release_connection(response)


def release_connection(response) -> None:
    """A body read whole by us, not by http.client: its side of the response is done (it does
    this itself at a body's end), and urllib3 takes the connection back for the next request,
    unless the server said it closes it (`Connection: close`, or HTTP/1.0): then the connection
    is closed with the response, as http.client would, instead of being raced by its FIN."""
    fp = response.raw._fp
    if getattr(fp, "will_close", False):
        return
    fp.close()
    response.raw.release_conn()


def socket_of(response):
    """The socket under a streaming requests response (urllib3 2.x), or None."""
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(raw, "_fp", None)
        sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    return sock


def root_cause(exc: BaseException) -> str:
    seen = exc
    for _ in range(5):
        inner = seen.__context__ or (seen.args[1] if len(seen.args) > 1 and isinstance(seen.args[1], BaseException) else None)
        if inner is None:
            break
        seen = inner
    return one_line(f"{type(seen).__name__}: {seen}" if str(seen) else type(seen).__name__)


def body_reader(response, timeout_s: float):
    """(read, complete, restore): read(n) returns the body's bytes as soon as the socket has any,
    b"" at its end, and raises TimeoutError after `timeout_s` without a byte; complete() says
    whether the whole body was read with nothing after it; restore() puts the socket back as
    urllib3 left it (call it once the body is done with).

    A chunked body is unframed by ChunkedBody from bulk reads (many events per read when they
    arrive together). On Linux, over plain TCP, those reads are single blocking recv() calls
    with the timeout kept by the kernel (SO_RCVTIMEO): Python's own socket timeout costs a
    poll() before every recv() and gives up the interpreter lock twice per event, which at
    hundreds of streams roughly doubles the context switches. Any other body is read with
    http.client's own read1, which has less per-call overhead than urllib3's wrapper.
    Content-Encoding is not decoded on these paths; we ask for `identity`, so only a misbehaving
    proxy would compress. urllib3's read1 is the fallback when the layout is not the known one."""
    raw = response.raw
    fp = getattr(raw, "_fp", None)
    encoding = raw.headers.get("Content-Encoding", "").strip().lower()
    if fp is None or not hasattr(fp, "read1") or encoding not in ("", "identity"):
        return raw.read1, _never, nothing_to_restore
    source = getattr(fp, "fp", None)
    if getattr(fp, "chunked", False) and getattr(fp, "chunk_left", 0) is None and hasattr(source, "read1"):
        direct = _direct_recv(response, source, timeout_s)
        if direct is not None:
            recv, early, restore = direct
            body = ChunkedBody(recv, early)
        else:
            body, restore = ChunkedBody(source.read1), nothing_to_restore
        return body.read, lambda: body.complete, restore
    return fp.read1, fp.isclosed, nothing_to_restore


def _never() -> bool:
    return False


def nothing_to_restore() -> None:  # a body read as it came: nothing to put back
    return None


def _direct_recv(response, buffered, timeout_s: float):
    """(recv, early, restore) to read a plain TCP socket with blocking recv() calls whose timeout
    the kernel keeps, or None where that is not possible (TLS, not Linux, an unknown layout).
    `early`: the body's bytes that came with the response head, already in http.client's buffer."""
    sock = socket_of(response)
    plain = isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)  # a session's socket may be a subclass
    if not plain or not sys.platform.startswith("linux") or not timeout_s or timeout_s <= 0:
        return None
    previous = sock.gettimeout()
    seconds = int(timeout_s)
    limit = struct.pack("@ll", seconds, int((timeout_s - seconds) * 1_000_000))
    try:
        sock.setblocking(False)
        early = buffered.read1(READ_SIZE)  # never blocks now: what is buffered or already arrived
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.settimeout(None)
    except OSError:
        sock.settimeout(previous)
        return None
    receive = sock.recv

    def recv(size: int) -> bytes:
        try:
            return receive(size)
        except BlockingIOError:  # SO_RCVTIMEO ran out: no byte within the timeout
            raise TimeoutError(f"no byte for {timeout_s:g} s") from None

    def restore() -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _NO_LIMIT)
            sock.settimeout(previous)
        except OSError:  # closed meanwhile (an abort, a reset): nothing left to put back
            return

    return recv, early, restore


_NO_LIMIT = struct.pack("@ll", 0, 0)
