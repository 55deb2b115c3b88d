"""The inside of one Ray worker actor (backends/ray_backend.py makes it a Ray actor).

`start()` runs the pool's worker loop (worker_pool.worker_main) on a thread of its own, over one of
two channels to the driver:

- direct (the default): the actor connects back to the driver's listening socket (address and a
  one-time key given in `start`, never in the constructor), both sides prove they hold the key
  (multiprocessing's HMAC challenge), and the loop then speaks over that connection exactly as a
  `--processes` worker speaks over its pipe: no Ray call per message, so a user waits no longer
  between requests than with --processes;
- calls (when the driver cannot be reached that way, or SSE_PERF_RAY_CHANNEL=calls): messages go
  through Ray calls, `deliver(batch)` down and `poll(max_wait, max_items)` up, one of each in
  flight; the worker's ticks are merged while they wait, and its outbox is bounded (a full one
  makes its threads wait to send, after their instants are taken).

`now()` is the worker's monotonic clock for the driver's offset estimate (`skew_ns` shifts it, and
every instant the worker stamps, for tests: the driver reads SSE_PERF_TEST_CLOCK_SKEW_NS), `boot()`
its kernel's boot id.

Imports nothing of Ray's (the wrapper passes what it needs) nor of ours beyond the standard library.
"""

from __future__ import annotations

import collections
import multiprocessing.connection as mpc
import os
import socket
import struct
import threading
import time
from typing import Optional

OUTBOX_LIMIT = 10_000
HANDSHAKE_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 5.0  # a message the peer does not take within this fails (its reader is gone or frozen)
SKEW_ENV = "SSE_PERF_TEST_CLOCK_SKEW_NS"


def boot_id() -> str:
    """This kernel's boot id: two processes that share it share CLOCK_MONOTONIC (one machine)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def skew_for(index: int) -> int:
    """Tests only: worker `index`'s clock skew from SSE_PERF_TEST_CLOCK_SKEW_NS="WORKER:NS,..."."""
    spec = os.environ.get(SKEW_ENV, "")
    for part in filter(None, spec.split(",")):
        number, _, value = part.partition(":")
        if number.strip() == str(index):
            return int(value)
    return 0


def prepare_socket(sock: socket.socket) -> None:
    """Blocking (multiprocessing's Connection reads and writes the fd itself), and every message
    sent at once: with Nagle's algorithm a message written while the last one was unacknowledged
    waited for the peer's delayed ACK, and a finished request reached the driver 9 ms late."""
    sock.setblocking(True)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    receive_timeout(sock, HANDSHAKE_TIMEOUT_S)
    _timeval(sock, socket.SO_SNDTIMEO, SEND_TIMEOUT_S)  # a peer that stops reading fails a send, never hangs it


def receive_timeout(sock: socket.socket, seconds: float) -> None:
    """A blocking socket's reads fail after `seconds` (0: never): a peer that connects and says
    nothing cannot hold a handshake for ever."""
    _timeval(sock, socket.SO_RCVTIMEO, seconds)


def _timeval(sock: socket.socket, option: int, seconds: float) -> None:
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def connect_back(address: tuple, authkey: bytes, index: int, timeout_s: float) -> mpc.Connection:
    """The direct channel: connect to the driver, prove the key both ways, say which worker this is."""
    sock = socket.create_connection(address, timeout=timeout_s)
    prepare_socket(sock)
    conn = mpc.Connection(sock.detach())
    try:
        mpc.answer_challenge(conn, authkey)
        mpc.deliver_challenge(conn, authkey)
        conn.send(("hello", index))
    except (OSError, EOFError, mpc.AuthenticationError):
        conn.close()
        raise
    clear_receive_timeout(conn)
    return conn


def clear_receive_timeout(conn: mpc.Connection) -> None:
    """After the handshake: reads wait as long as it takes (the channel's own rules decide)."""
    with socket.socket(fileno=os.dup(conn.fileno())) as view:  # a duplicate: closing it leaves conn's fd open
        receive_timeout(view, 0)


class Tagged:
    """A channel whose "ready" message carries where the actor runs too."""

    def __init__(self, conn, extra_info: dict):
        self.conn, self.extra_info = conn, extra_info

    def send(self, message: tuple) -> None:
        if message[0] == "ready":
            message = ("ready", dict(message[1], **self.extra_info))
        self.conn.send(message)

    def recv(self) -> tuple:
        return self.conn.recv()

    def close(self) -> None:
        self.conn.close()


class CallsConn:
    """The worker loop's channel when messages go through Ray calls: an inbox `deliver` fills and
    an outbox `poll` empties."""

    def __init__(self):
        self.inbox: "collections.deque" = collections.deque()
        self.inbox_ready = threading.Condition()
        self.outbox: "collections.deque" = collections.deque()
        self.out_ready = threading.Condition()
        self.tick: Optional[list] = None  # the merged ticks not yet polled
        self.closed = False

    # the worker loop's side
    def recv(self) -> tuple:
        with self.inbox_ready:
            while not self.inbox:
                if self.closed:
                    raise EOFError("the driver is gone")
                self.inbox_ready.wait(1.0)
            return self.inbox.popleft()

    def send(self, message: tuple) -> None:
        with self.out_ready:
            if message[0] == "tick":  # merged with the ticks still waiting: a tick wakes no poll
                _, events, cpu_s, lags = message
                if self.tick is None:
                    self.tick = ["tick", dict(events), cpu_s, list(lags)]
                else:
                    self.tick[1].update(events)
                    self.tick[2] = cpu_s
                    self.tick[3].extend(lags)
                return
            while len(self.outbox) >= OUTBOX_LIMIT and not self.closed:  # backpressure: wait for a poll
                self.out_ready.wait(1.0)
            self.outbox.append(message)
            self.out_ready.notify_all()

    def close(self) -> None:
        self.closed = True
        with self.inbox_ready:
            self.inbox_ready.notify_all()
        with self.out_ready:
            self.out_ready.notify_all()

    # the actor's methods' side
    def put(self, messages: list) -> None:
        with self.inbox_ready:
            self.inbox.extend(messages)
            self.inbox_ready.notify_all()

    def take(self, max_wait: float, max_items: int) -> list:
        deadline = time.monotonic() + max_wait
        with self.out_ready:
            while not self.outbox and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.out_ready.wait(left)
            out = [self.outbox.popleft() for _ in range(min(max_items, len(self.outbox)))]
            if self.tick is not None:
                out.append(tuple(self.tick))
                self.tick = None
            self.out_ready.notify_all()  # a sender waiting on a full outbox goes on
        return out


class WorkerActor:
    """One worker: `entry` is the pool's worker loop; `where` what its "ready" adds (node, Ray)."""

    def __init__(self, index: int, entry, where: dict, skew_ns: int = 0):
        self.index = index
        self.entry = entry
        self.where = where
        self.skew_ns = skew_ns
        self.calls = CallsConn()
        self.thread: Optional[threading.Thread] = None
        self.direct_error: Optional[str] = None

    def clock(self) -> int:
        return time.perf_counter_ns() + self.skew_ns

    def start(self, api: str, settings, tokenizer: str, address: Optional[tuple], authkey: bytes,
              timeout_s: float) -> str:
        """Start the worker loop; "direct" when it speaks over a connection to the driver, "calls"
        when through Ray calls (with the reason the connection failed, if it did)."""
        if self.thread is not None:
            return "started already"
        conn = None
        if address is not None:
            try:
                conn = connect_back(address, authkey, self.index, timeout_s)
            except (OSError, EOFError, mpc.AuthenticationError) as exc:
                self.direct_error = f"{type(exc).__name__}: {exc}"
        channel = Tagged(conn if conn is not None else self.calls, self.where)
        clock = self.clock if self.skew_ns else time.perf_counter_ns
        self.thread = threading.Thread(target=self._run, args=(channel, api, settings, tokenizer, clock),
                                       name="sse-perf-actor-worker", daemon=True)
        self.thread.start()
        return "direct" if conn is not None else "calls" + (f" ({self.direct_error})" if self.direct_error else "")

    def _run(self, channel, api, settings, tokenizer, clock) -> None:
        try:
            self.entry(channel, api, settings, tokenizer, clock=clock)
        finally:
            self.calls.close()
            if isinstance(channel.conn, mpc.Connection):
                channel.conn.close()

    def deliver(self, batch: list) -> None:
        self.calls.put(batch)

    def poll(self, max_wait: float, max_items: int) -> list:
        out = self.calls.take(max_wait, max_items)
        if not out and self.calls.closed and (self.thread is None or not self.thread.is_alive()):
            return [("eof",)]
        return out

    def now(self) -> int:
        return self.clock()

    def boot(self) -> str:
        return boot_id()
