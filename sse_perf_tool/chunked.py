"""HTTP/1.1 chunked transfer coding (RFC 9112 section 7.1), decoded from bulk reads.

Streaming servers send every SSE event as its own chunk. http.client decodes the framing one
chunk per call, with a line read, a size parse and a payload read in Python for each, which
at hundreds of streams is a large share of the load generator's CPU. Here one socket read
may hold many chunks; they are unframed in one pass over the buffer and returned together,
so the caller stamps and parses them once (they arrived together). Imports nothing of ours.
"""

from __future__ import annotations

import http.client
from typing import Callable

MAX_LINE = 65536  # a size or trailer line longer than this is refused, as http.client refuses it

_SIZE, _DATA, _CRLF, _TRAILER, _DONE = range(5)


class ChunkedEncodingError(http.client.HTTPException):
    """The body's chunked framing is broken (a bad size line, a payload longer than announced)."""


class IncompleteBody(http.client.HTTPException):
    """The connection closed before the body's last chunk."""


class ChunkedBody:
    """read() -> the payload bytes available now (one read of the source at most), b"" once the
    last chunk and its trailer section have been read. `complete` is True when the body ended
    exactly there, with no stray bytes after it: the connection can then carry another request."""

    __slots__ = ("_read", "_buf", "_state", "_left", "_error", "complete")

    def __init__(self, read1: Callable[[int], bytes], early: bytes = b""):
        self._read = read1
        self._buf = early  # bytes of the body already read from the socket, still framed
        self._state = _SIZE
        self._left = 0  # payload bytes still due in the current chunk
        self._error = None  # broken framing found after good payload: raised on the next read
        self.complete = False

    def read(self, size: int = 65536) -> bytes:
        while True:
            if self._error is not None:
                raise self._error
            if self._buf:
                payload = self._unframe()
                if payload:
                    return payload
            if self._state == _DONE:
                return b""
            data = self._read(size)
            if not data:
                raise self.incomplete()
            self._buf = self._buf + data if self._buf else data

    def push(self, data: bytes) -> bytes:
        """Push mode (the shared reader reads the socket itself): `data` just read -> the payload
        it completes, often b"" (framing only). Broken framing after good payload is raised by
        `raise_pending` once that payload has been used."""
        if self._error is not None:
            raise self._error
        self._buf = self._buf + data if self._buf else data
        return self._unframe()

    def raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    @property
    def done(self) -> bool:
        """The last chunk and its trailer section were read."""
        return self._state == _DONE

    def incomplete(self) -> IncompleteBody:
        """What a connection closed at this point of the body is."""
        where = "inside a chunk" if self._state == _DATA else "before the last chunk"
        return IncompleteBody(f"connection closed {where} (chunked body incomplete)")

    def _unframe(self) -> bytes:
        """The payload of what is buffered; the payload before broken framing comes first."""
        parts: list[bytes] = []
        try:
            self._unframe_into(parts)
        except ChunkedEncodingError as exc:
            if not parts:
                raise
            self._error = exc
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _unframe_into(self, parts: list) -> None:
        buf = self._buf
        end = len(buf)
        pos = 0
        state = self._state
        left = self._left
        while pos < end:
            if state == _DATA:
                stop = pos + left
                if stop > end:
                    stop = end
                parts.append(buf[pos:stop])
                left -= stop - pos
                pos = stop
                if not left:
                    state = _CRLF
            elif state == _CRLF:  # the line end after a chunk's payload
                byte = buf[pos]
                if byte == 0x0A:
                    pos += 1
                elif byte == 0x0D:
                    if pos + 1 == end:
                        break  # its LF is still on its way
                    if buf[pos + 1] != 0x0A:
                        raise ChunkedEncodingError("a chunk's payload is longer than its announced size")
                    pos += 2
                else:
                    raise ChunkedEncodingError("a chunk's payload is longer than its announced size")
                state = _SIZE
            elif state == _DONE:
                break
            else:  # a whole line: a chunk's size, or a trailer field (ignored) up to an empty line
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    _check_line(end - pos)
                    break
                line = buf[pos:eol]
                pos = eol + 1
                if state == _TRAILER:
                    if not line.strip():
                        state = _DONE
                    continue
                semi = line.find(b";")  # chunk extensions are ignored
                try:
                    left = int(line if semi < 0 else line[:semi], 16)
                except ValueError:
                    left = -1
                if left < 0:
                    raise ChunkedEncodingError(f"bad chunk size line {bytes(line[:40])!r}")
                state = _DATA if left else _TRAILER
        self._state = state
        self._left = left
        self._buf = buf[pos:] if pos < end else b""
        if state == _DONE:
            self.complete = not self._buf


def _check_line(length: int) -> None:
    if length > MAX_LINE:
        raise ChunkedEncodingError(f"a chunk size or trailer line longer than {MAX_LINE} bytes")
