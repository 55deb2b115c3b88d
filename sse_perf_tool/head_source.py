"""What http.client reads a response head from when the shared reader read it off the socket.

From the moment a tester's request has gone out, the process's reader (stream_reader) reads that
socket's answer as it arrives and stamps every read with its clock, so that a first token that
comes before the tester's thread has got the interpreter lock back (to parse the head and hand
the body over) is stamped when it came, not when the tester got round to it. The bytes wait in
the reader's job as (bytes, instant) pieces; HeadSource is the raw file under http.client's
buffered reader of that response:

- until the head's blank line, it gives http.client the bytes the reader took, never a byte past
  that line (the body's pieces keep their instants for the reader when the body is handed over);
- after it, a read means the tester reads the body itself (an error status, a JSON answer, a
  body that is not chunked): the reader lets the socket go, and the bytes it took come first,
  then the socket's own reads.

A read waits at most the socket's timeout, and raises socket.timeout as a socket would.

Imports nothing of sse-perf: the reader passes itself in (release, resume).
"""

from __future__ import annotations

import io
import socket
import time
from typing import Optional

HEAD_END = b"\r\n\r\n"


class HeadSource(io.RawIOBase):
    """A RawIOBase over a watched socket's job: `job.pending` [(bytes | b"" at the end | an OSError,
    instant)], `job.lock`, `job.arrived` (a threading.Event set by the reader after each piece),
    `job.size` (the pending bytes) and `job.detached`. `reader.release(job)` takes the socket back
    from the reader; `reader.resume(job)` lets a reader that stopped at its limit read on."""

    def __init__(self, reader, job) -> None:
        super().__init__()
        self._reader = reader
        self.job = job
        self.sock = self._sock = job.sock  # (_sock: where body_reader.socket_of looks, as in socket.SocketIO)
        # the socket's own raw file, for the reads after the head: like any file made of the
        # socket it keeps the descriptor open after the socket is closed (a response that ends with
        # its connection, HTTP/1.0, owns the socket) until the response is closed
        self._file = job.sock.makefile("rb", buffering=0)
        self.head_done = False  # the head's blank line went to http.client
        self._tail = b""  # the last bytes given, for a blank line split across two pieces
        self._taken_at = 0  # the instant of the piece being given

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def watched(self) -> bool:
        """The head has been read and the reader still holds the rest: the body can be handed over."""
        job = self.job
        return self.head_done and not job.detached and not job.live

    def readinto(self, buffer) -> Optional[int]:
        if self.head_done or self.job.detached:
            return self._after_head(buffer)
        data = self._wait_piece()
        if isinstance(data, BaseException):
            raise data
        count = min(len(buffer), len(data))
        at = (self._tail + data).find(HEAD_END)
        if at >= 0 and at + len(HEAD_END) - len(self._tail) <= count:
            count = at + len(HEAD_END) - len(self._tail)
            self.head_done = True
        self._put_back(data, count)
        buffer[:count] = data[:count]
        self._tail = (self._tail + data[:count])[-(len(HEAD_END) - 1):]
        return count

    def _wait_piece(self):
        """The first pending piece (taken from the list: _put_back returns what is not given)."""
        job = self.job
        timeout = self.sock.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with job.lock:
                if job.pending:
                    data, at = job.pending.pop(0)
                    self._taken_at = at
                    if isinstance(data, bytes):
                        job.size -= len(data)
                    self._reader.resume(job)
                    return data
                job.arrived.clear()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0 or not job.arrived.wait(left):
                raise socket.timeout("timed out")

    def _put_back(self, data: bytes, count: int) -> None:
        rest = data[count:]
        if rest or not data:  # the rest of the piece, or the end of the stream (kept: every later read is 0)
            job = self.job
            with job.lock:
                job.pending.insert(0, (rest, self._taken_at))
                job.size += len(rest)

    def _after_head(self, buffer) -> Optional[int]:
        """The tester reads on: the bytes the reader took first, then the socket's own reads."""
        job = self.job
        self._reader.release(job)
        with job.lock:
            if job.pending:
                data, _ = job.pending[0]
                if isinstance(data, BaseException):
                    job.pending.pop(0)
                    raise data
                count = min(len(buffer), len(data))
                if not data:
                    return 0
                buffer[:count] = data[:count]
                if count < len(data):
                    job.pending[0] = (data[count:], job.pending[0][1])
                else:
                    job.pending.pop(0)
                job.size -= count
                return count
        return self._file.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._reader.release(self.job)  # a response closed before its body was handed over
            self._file.close()
        super().close()
