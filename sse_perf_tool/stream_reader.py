"""One reader per process for the answers of many streams.

From the moment a tester's request has gone out, the reader reads that socket (watch()): every
read is stamped with its clock and kept, the tester's thread parses the status line and headers
from those bytes (head_source.HeadSource under http.client), and then hands the body over to the
reader, which takes the kept body bytes with the instants they came at. So a first token that
arrives while the tester's thread still waits for the interpreter lock (to parse the head) is
stamped when it came: at 256 streams in one process that wait, not the reader, made most of the
TTFT error tail. A socket the reader cannot watch (TLS, no libc) has its head read by the tester
and its body handed over the same way, with the bytes that came with the head.

The reader is one thread with an epoll set over every streaming socket. Each wake reads what every ready socket holds, reads the clock once for all of
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

Imports body_reader (sizes, the socket of a response, root_cause), chunked, head_source, libc and
stream_events.
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
from .head_source import HeadSource
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
# A watched socket's bytes kept before its tester hands the body over (a head and the first events
# are far less): past it the reader stops reading that socket until the tester takes some.
WATCH_LIMIT = READ_SIZE
_NOT_READY = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Job:
    __slots__ = ("sock", "fd", "tls", "stream", "body", "end_event", "draining", "drain_until", "done", "finished",
                 "error", "complete", "live", "polled", "lock", "pending", "arrived", "size", "detached", "stopped")

    def __init__(self, sock, stream: Optional[EventStream], body: Optional[ChunkedBody], end_event: str):
        self.sock = sock
        self.fd = sock.fileno()
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.stream = stream
        self.body = body
        self.end_event = end_event
        self.live = stream is not None  # its bytes go to the stream as they come (else: kept for the head)
        self.polled = False  # in the epoll set
        # a watched socket (watch()), until its body is handed over: the pieces read so far,
        # [(bytes, b"" at the end, or an OSError; the instant)], their byte count, the lock that
        # orders the reader's pieces with the tester's taking them, and the event the tester waits on
        self.lock = self.pending = self.arrived = None
        self.size = 0
        self.detached = False  # the tester took the socket back
        self.stopped = False  # an end or an error was read: nothing more to read until the body is handed over
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
    def watch(self, sock) -> Optional[HeadSource]:
        """Read `sock`'s answer from now on, as it arrives, each read stamped: what http.client
        reads the head from (HeadSource), or None where this reader cannot (TLS, no libc, a socket
        it reads already). The request has just gone out on `sock`."""
        if self._buffer is None or isinstance(sock, ssl.SSLSocket):
            return None
        job = _Job(sock, None, None, "")
        if job.fd in self._jobs:
            return None
        job.lock, job.pending, job.arrived = threading.Lock(), [], threading.Event()
        try:
            libc.epoll_add(self._epoll.fileno(), job.fd, EPOLLIN)  # holding the interpreter lock
        except OSError:  # FileExistsError: a closed socket's number left in the set; any other: not watched
            return None
        job.polled = True
        self._jobs[job.fd] = job
        return HeadSource(self, job)

    def release(self, job: _Job) -> None:
        """The tester reads `job`'s socket itself from here on (or closed its response)."""
        with job.lock:
            if job.live or job.detached:
                return
            job.detached = True
            self._unpoll(job)
            if self._jobs.get(job.fd) is job:
                del self._jobs[job.fd]

    def resume(self, job: _Job) -> None:
        """Called under job.lock as the tester takes pieces: a reader that stopped at the limit reads on."""
        if not job.polled and not job.stopped and not job.detached and job.size < WATCH_LIMIT \
                and self._jobs.get(job.fd) is job:
            self._poll(job)

    def read(self, sock, stream: EventStream, body: ChunkedBody, early: bytes, end_event: str) -> bool:
        """Read the rest of the body into `stream`; block until it has ended. `early`: body bytes
        that came with the head (already framed). True when the body ended cleanly, so the
        connection can carry another request. Raises the request's StreamFailure (or whatever
        handling the body raised, for the tester's last guard). A watched socket's pieces are
        taken first, each with the instant it was read."""
        watched = self._jobs.get(sock.fileno())
        if watched is not None and watched.sock is sock and not watched.live and not watched.detached:
            return self._adopt(watched, stream, body, end_event)
        job = _Job(sock, stream, body, end_event)
        stream.last_byte_ns = self.clock()
        if early:
            self._bytes(job, early, stream.last_byte_ns)  # on this thread: nothing is registered yet
        if job.finished:
            return self._outcome(job)
        self._poll(job)  # in the set first, then known: a wake for it before that finds no job and comes again
        self._jobs[job.fd] = job
        return self._wait(job)

    def _adopt(self, job: _Job, stream: EventStream, body: ChunkedBody, end_event: str) -> bool:
        """A watched socket's body handed over: what was read so far goes to the stream with the
        instants it was read at, then the reader reads on."""
        with job.lock:  # the reader keeps its next piece until these are taken
            job.stream, job.body, job.end_event = stream, body, end_event
            stream.last_byte_ns = self.clock()
            pending, job.pending, job.size = job.pending, None, 0
            try:
                for data, at in pending:
                    if job.finished:
                        break
                    self._take(job, data, at)
            except BaseException as exc:  # the request's failure, or a bug while handling it: the tester raises it
                self._finish(job, error=exc)
            job.live = True
            if not job.finished and not job.polled:
                self._poll(job)  # stopped at the limit before the handover
        if job.finished:
            return self._outcome(job)
        return self._wait(job)

    def _wait(self, job: _Job) -> bool:
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
        if not job.live and self._keep(job, now):
            return
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
            data = exc
        self._take(job, data, now)

    def _keep(self, job: _Job, now: int) -> bool:
        """A watched socket whose body is not handed over yet: keep what is ready, with `now`.
        False when the body was handed over meanwhile (then it is read as any body)."""
        with job.lock:
            if job.live:
                return False
            if job.detached:
                return True
            try:
                data = self._recv(job.fd)
            except _NOT_READY:
                return True
            except OSError as exc:
                data = exc
            job.pending.append((data, now))
            if isinstance(data, bytes) and data:
                job.size += len(data)
            else:
                job.stopped = True  # the end, or an error: level-triggered, epoll would report it for ever
            if job.stopped or job.size >= WATCH_LIMIT:
                self._unpoll(job)
            job.arrived.set()
        return True

    def _take(self, job: _Job, data, now: int) -> None:
        """What one read of the socket gave: bytes, b"" (it closed) or the OSError it raised."""
        if isinstance(data, OSError):
            exc = data
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
        if not job.live:  # a head not read yet: the tester's own read waits at most its timeout
            return
        if job.draining:
            if now >= job.drain_until:  # the closing chunk is late: only this connection is lost
                self._finish(job)
            return
        stream = job.stream
        if now > stream.next_limit_ns():  # past it, as check_limits counts: the limit that ran out is named
            stream.check_limits(now)
            stream.stalled(now)

    def _poll(self, job: _Job) -> None:
        try:
            if libc.AVAILABLE:
                libc.epoll_add(self._epoll.fileno(), job.fd, EPOLLIN)  # holding the interpreter lock
            else:
                self._epoll.register(job.fd, EPOLLIN)
        except FileExistsError:  # left there by a body the reader could not take out (a closed fd's number)
            self._epoll.modify(job.fd, EPOLLIN)
        job.polled = True

    def _unpoll(self, job: _Job) -> None:
        if not job.polled:
            return
        job.polled = False
        if libc.AVAILABLE and not self._epoll.closed:
            libc.epoll_ctl(self._epoll.fileno(), libc.EPOLL_CTL_DEL, job.fd, None)  # -1 only for a closed fd
        elif not self._epoll.closed:
            try:
                self._epoll.unregister(job.fd)
            except (OSError, ValueError):  # closed under us (a shutdown, then a close): nothing to unregister
                pass

    def _finish(self, job: _Job, complete: bool = False, error: Optional[BaseException] = None) -> None:
        if self._jobs.get(job.fd) is job:  # its own entry only: the number may be another socket's by now
            del self._jobs[job.fd]
            self._unpoll(job)
        if job.stream is None and job.pending is not None:  # a watched head: its tester reads the failure there
            with job.lock:
                job.pending.append((error if error is not None else b"", self.clock()))
                job.stopped = True
            job.arrived.set()
            return
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
    head = getattr(source, "raw", None)
    if type(head) is HeadSource:  # read by the reader since the request went out: it holds the body's bytes
        return (sock, ChunkedBody(_no_pull), b"", nothing_to_restore) if head.watched else None
    if not tls and libc.AVAILABLE and type(head) is socket.SocketIO:
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
