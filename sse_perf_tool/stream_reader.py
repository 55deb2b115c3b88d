"""One reader per process for the bodies of many streams.

A tester sends its request and reads the status line and headers on its own thread, as before;
then it hands the socket to the process's reader: one thread with an epoll set over every
streaming socket. Each wake reads what every ready socket holds, reads the clock once for all of
it, unframes it (chunked.ChunkedBody in push mode) and passes it to the stream's EventStream
(the flavour's decoder and events, unchanged), which stamps the record. The tester's thread
sleeps until its body has ended, so a process wakes once per batch of ready sockets instead of
a thread per event handing the interpreter lock on: at hundreds of streams that was about 1.4
context switches per event.

What each limit means is unchanged: no byte for --timeout (a stall), --request-timeout,
--idle-timeout (checked every TICK_S, and at every read), cancel and abort (the tester shuts the
socket down; the reader sees it close), and keep-alive (after the end event the closing chunk is
drained for up to DRAIN_LIMIT_S, then the tester gives the connection back). TLS sockets are read
the same way (non-blocking SSL reads; bytes the TLS layer has already decrypted are read at
once, as no epoll wake would come for them).

Used for chunked bodies on Linux (epoll); anything else (another OS, another body framing, an
unknown urllib3 layout) keeps the tester's own blocking read. SSE_PERF_READER=thread selects the
old path everywhere (for benchmarks that compare the two).

Imports body_reader (sizes, the socket of a response, root_cause), chunked and stream_events.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import ssl
import sys
import threading
import time
from typing import Callable, Optional

from . import libc
from .body_reader import DRAIN_LIMIT_S, READ_SIZE, nothing_to_restore, root_cause, socket_of
from .chunked import ChunkedBody, ChunkedEncodingError
from .records import ErrorKind
from .stream_events import EventStream, StreamFailure

try:
    from select import EPOLLIN, epoll
except ImportError:  # not Linux: every tester reads on its own thread
    epoll = None  # type: ignore[assignment]
    EPOLLIN = 1


TICK_S = 0.05  # how often the limits of every stream are checked between reads
# The interpreter's switch interval while a process reads through the shared reader. At 5 ms (the
# default) every thread waiting for the interpreter lock asks its holder to let go after 5 ms,
# and the lock then goes to any one of the waiters: when many requests end together, the reader
# lost it in the middle of a wake and waited behind dozens of tester threads (TTFT error p99 about
# 500 ms at 256 streams, about 140 ms at 20 ms). A tester's own work gives the lock up at each of
# its socket calls, well within 20 ms.
SWITCH_INTERVAL_S = 0.02
_NOT_READY = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Job:
    __slots__ = ("sock", "fd", "tls", "stream", "body", "end_event", "draining", "drain_until", "done", "finished",
                 "error", "complete")

    def __init__(self, sock, stream: EventStream, body: ChunkedBody, end_event: str):
        self.sock = sock
        self.fd = sock.fileno()
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.stream = stream
        self.body = body
        self.end_event = end_event
        self.draining = False  # the end event came: reading the body's closing bytes
        self.drain_until = 0
        self.done = threading.Event()  # set for the waiting tester
        self.finished = False  # the body has ended (its tester is woken at the end of the reader's wake)
        self.error: Optional[BaseException] = None
        self.complete = False


class SharedReader:
    """The process's reader thread and its epoll set. `read()` is called from tester threads."""

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns, tick_s: float = TICK_S):
        if epoll is None:
            raise OSError("the shared stream reader needs epoll (Linux)")
        self.clock = clock
        self.tick_ns = int(tick_s * 1e9)
        self.wakes = 0  # epoll wakes that found a socket ready (for the benchmarks)
        self._tick_s = tick_s
        self._epoll = epoll()
        self._jobs: dict[int, _Job] = {}
        self._ended: list[_Job] = []  # ended during this wake: their testers are woken before the next poll
        self._buffer = ctypes.create_string_buffer(READ_SIZE) if libc.AVAILABLE else None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sse-perf-reader", daemon=True)
        self._thread.start()

    # -- a tester's thread --
    def read(self, sock, stream: EventStream, body: ChunkedBody, early: bytes, end_event: str) -> bool:
        """Read the rest of the body into `stream`; block until it has ended. `early`: body bytes
        that came with the head (already framed). True when the body ended cleanly, so the
        connection can carry another request. Raises the request's StreamFailure (or whatever
        handling the body raised, for the tester's last guard)."""
        job = _Job(sock, stream, body, end_event)
        stream.last_byte_ns = self.clock()
        if early:
            self._bytes(job, early, stream.last_byte_ns)  # on this thread: nothing is registered yet
        if job.finished:
            return self._outcome(job)
        try:  # in the set first, then known: a wake for it before that finds no job and comes again
            if libc.AVAILABLE:
                libc.epoll_add(self._epoll.fileno(), job.fd, EPOLLIN)  # holding the interpreter lock
            else:
                self._epoll.register(job.fd, EPOLLIN)
        except FileExistsError:  # left there by a body the reader could not take out (a closed fd's number)
            self._epoll.modify(job.fd, EPOLLIN)
        self._jobs[job.fd] = job
        while not job.done.wait(1.0):
            if not self._thread.is_alive():  # a bug stopped the reader: no request may wait for ever
                if not job.finished:
                    self._finish(job, error=StreamFailure(ErrorKind.INTERNAL, "sse-perf bug: the stream reader "
                                                          "stopped"))
                job.done.set()
        return self._outcome(job)

    @staticmethod
    def _outcome(job: _Job) -> bool:
        if job.error is not None:
            raise job.error
        return job.complete

    def close(self) -> None:
        """Stop the thread (tests; a process's own reader lives as long as the process)."""
        self._stopping = True
        self._thread.join(2 * self._tick_s + 1)
        self._epoll.close()

    # -- the reader's thread --
    def _loop(self) -> None:
        poll, jobs, clock, tick_ns, ended = self._epoll.poll, self._jobs, self.clock, self.tick_ns, self._ended
        next_check = 0
        while not self._stopping:
            if ended:  # woken now, while this thread waits in epoll: they do not compete with its reads
                for job in ended:
                    job.done.set()
                ended.clear()
            try:
                ready = poll(self._tick_s)
            except InterruptedError:
                continue
            now = clock()  # one clock read for every socket of this wake
            if ready:
                self.wakes += 1
            for fd, _ in ready:
                job = jobs.get(fd)
                if job is not None:
                    self._guarded(job, now, True)
            if now >= next_check:
                next_check = now + tick_ns
                for job in list(jobs.values()):
                    self._guarded(job, now, False)

    def _guarded(self, job: _Job, now: int, readable: bool) -> None:
        try:
            if readable:
                self._readable(job, now)
            else:
                self._check_time(job, now)
        except BaseException as exc:  # the request's failure, or a bug while handling it: the tester raises it
            self._finish(job, error=exc)

    def _recv(self, fd: int) -> bytes:
        """recv() on a plain socket without giving up the interpreter lock. socket.recv() gives it
        up for the call; getting it back means waiting behind every tester thread that wants it
        (each handover goes to any waiting thread), and a reader that did so once per ready
        socket fell hundreds of milliseconds behind its sockets when many requests ended
        together. Here the reader gives the lock up once per wake, in epoll."""
        return libc.recv(fd, self._buffer, READ_SIZE)

    def _readable(self, job: _Job, now: int) -> None:
        sock = job.sock
        try:
            if job.tls:
                data = sock.recv(READ_SIZE)
                while data and sock.pending():  # decrypted already: no epoll wake would come for these
                    data += sock.recv(READ_SIZE)
            elif self._buffer is not None:
                data = self._recv(job.fd)
            else:
                data = sock.recv(READ_SIZE)
        except _NOT_READY:
            return
        except OSError as exc:
            if not job.draining:
                job.stream.broken(root_cause(exc), now)
            if isinstance(exc, ConnectionError):  # reset before the closing chunk: the body was not sent whole
                raise StreamFailure(ErrorKind.TRUNCATED, f"body cut short after {job.end_event}: "
                                    f"{root_cause(exc)}") from None
            self._finish(job)  # any other error after the end event costs only the connection
            return
        self._bytes(job, data, now)

    def _bytes(self, job: _Job, data: bytes, now: int) -> None:
        """Bytes just read (b"": the connection closed), stamped `now`."""
        body, stream = job.body, job.stream
        if job.draining:
            if not data:
                raise StreamFailure(ErrorKind.TRUNCATED, f"body cut short after {job.end_event}: "
                                    f"{root_cause(body.incomplete())}")
            try:
                body.push(data)  # payload after the end event is not the answer's
                body.raise_pending()
            except ChunkedEncodingError:  # odd bytes after the end: the connection is closed, the request stands
                self._finish(job)
                return
            if body.done:
                self._finish(job, complete=body.complete)
            return
        if not data:
            stream.broken(root_cause(body.incomplete()), now)
        try:
            payload = body.push(data)
        except ChunkedEncodingError as exc:
            stream.malformed(exc, now)
        if payload and stream.feed(payload, now):  # the end event
            try:
                body.raise_pending()
            except ChunkedEncodingError:
                self._finish(job)
                return
            if body.done:
                self._finish(job, complete=body.complete)
            else:
                job.draining, job.drain_until = True, now + int(DRAIN_LIMIT_S * 1e9)
            return
        try:
            body.raise_pending()
        except ChunkedEncodingError as exc:
            stream.malformed(exc, now)
        if body.done:  # the last chunk without an end event: a proper end only after a soft end
            stream.closed(now)
            self._finish(job, complete=body.complete)

    def _check_time(self, job: _Job, now: int) -> None:
        if job.draining:
            if now >= job.drain_until:  # the closing chunk is late: only this connection is lost
                self._finish(job)
            return
        stream = job.stream
        if now > stream.next_limit_ns():  # past it, as check_limits counts: the limit that ran out is named
            stream.check_limits(now)
            stream.stalled(now)

    def _finish(self, job: _Job, complete: bool = False, error: Optional[BaseException] = None) -> None:
        if self._jobs.get(job.fd) is job:  # its own entry only: the number may be another socket's by now
            del self._jobs[job.fd]
            if libc.AVAILABLE and not self._epoll.closed:
                libc.epoll_ctl(self._epoll.fileno(), libc.EPOLL_CTL_DEL, job.fd, None)  # -1 only for a closed fd
            elif not self._epoll.closed:
                try:
                    self._epoll.unregister(job.fd)
                except (OSError, ValueError):  # closed under us (a shutdown, then a close): nothing to unregister
                    pass
        job.complete, job.error, job.finished = complete, error, True
        if threading.current_thread() is self._thread:
            self._ended.append(job)
        else:  # the bytes that came with the head ended it, on its tester's own thread
            job.done.set()


def prepare(response) -> Optional[tuple]:
    """(sock, body, early, restore) to hand `response`'s body to the shared reader, or None where
    the tester reads it itself: not Linux, a body that is not chunked, a
    compressed one, an unknown layout. `early`: body bytes already buffered with the head."""
    if epoll is None:
        return None
    raw = response.raw
    fp = getattr(raw, "_fp", None)
    source = getattr(fp, "fp", None)
    if fp is None or not getattr(fp, "chunked", False) or getattr(fp, "chunk_left", 0) is not None \
            or not hasattr(source, "read1"):
        return None
    if raw.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity"):
        return None
    sock = socket_of(response)
    if not isinstance(sock, socket.socket) or not sys.platform.startswith("linux"):
        return None
    tls = isinstance(sock, ssl.SSLSocket)
    if not tls and libc.AVAILABLE and type(getattr(source, "raw", None)) is socket.SocketIO:
        # the reader reads with MSG_DONTWAIT: the socket keeps its mode and timeout, and the
        # handover makes no system call (each would give up the interpreter lock)
        return sock, ChunkedBody(_no_pull), _buffered(source), nothing_to_restore
    previous = sock.gettimeout()
    try:
        sock.setblocking(False)
        try:
            early = source.read1(READ_SIZE) or b""  # never blocks now: what is buffered or already arrived
        except _NOT_READY:
            early = b""
    except OSError:
        _restore(sock, previous)
        return None
    if tls:
        try:
            while sock.pending():
                early += sock.recv(READ_SIZE)
        except OSError:  # the reader's first read meets it again; what was read stays read
            pass

    def restore() -> None:
        _restore(sock, previous)

    return sock, ChunkedBody(_no_pull), early, restore


class _Unready:
    """Stands in for the socket under the head's buffered reader while the bytes it buffered are
    taken: every read finds nothing ready, so taking them makes no system call."""

    @staticmethod
    def recv_into(buffer, nbytes: int = 0, flags: int = 0) -> int:
        raise BlockingIOError(errno.EAGAIN, "read by the shared reader")


_UNREADY = _Unready()


def _buffered(source) -> bytes:
    """The body bytes `source` (the head's BufferedReader over a SocketIO) already holds."""
    raw = source.raw
    sock, raw._sock = raw._sock, _UNREADY
    try:
        return source.read1(READ_SIZE) or b""
    except _NOT_READY:
        return b""
    finally:
        raw._sock = sock


def _restore(sock, previous) -> None:
    try:
        sock.settimeout(previous)
    except OSError:  # closed meanwhile (an abort, a reset): nothing left to put back
        return


def _no_pull(size: int) -> bytes:  # pragma: no cover - push mode never pulls
    raise AssertionError("the shared reader pushes bytes; it never pulls")


_PROCESS_READER: Optional[SharedReader] = None
_PROCESS_PID = 0
_LOCK = threading.Lock()


def process_reader() -> Optional[SharedReader]:
    """This process's reader, started on first use (and again in a forked child), or None
    where there is none (not Linux, SSE_PERF_READER=thread)."""
    global _PROCESS_READER, _PROCESS_PID
    if epoll is None or os.environ.get("SSE_PERF_READER") == "thread":
        return None
    with _LOCK:
        if _PROCESS_READER is None or _PROCESS_PID != os.getpid():
            _PROCESS_READER, _PROCESS_PID = SharedReader(), os.getpid()
            if sys.getswitchinterval() < SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
        return _PROCESS_READER
