"""The driver's ends of the Ray backend (backends/ray_backend.py): a worker actor's handle, its
two channels, and the listener the actors connect back to.

- DirectChannel: the connection an actor opened back to the driver (authenticated with the run's
  key both ways, TCP_NODELAY, sends failing after ray_actor.SEND_TIMEOUT_S): the pipe protocol as it
  is. Silence for LOST_AFTER_S after the worker is ready (START_TIMEOUT_S before) loses it.
- CallsChannel: the messages through Ray calls, one `deliver` and one `poll` in flight.
- A lost worker's connection is shut down and its actor killed, so it sends nothing more.

Part of the Ray backend: imported only under --ray (ray itself inside the calls that need it).
"""

from __future__ import annotations

import collections
import multiprocessing.connection as mpc
import os
import queue
import secrets
import socket
import threading
from typing import Optional

from .ray_actor import HANDSHAKE_TIMEOUT_S, clear_receive_timeout, prepare_socket

DOWN_BATCH = 1000
UP_BATCH = 2000
POLL_WAIT_S = 0.2
LOST_AFTER_S = 5.0
START_TIMEOUT_S = 60.0  # an actor comes up, and then its worker builds its tokenizer, within this
MAX_HANDSHAKES = 32


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class RayHandle:
    """A worker actor's liveness, as its channel has seen it."""

    def __init__(self, actor, number: int):
        self.actor = actor
        self.number = number
        self.exitcode: Optional[int] = None
        self.info: dict = {}
        self.gone = threading.Event()

    @property
    def pid(self) -> Optional[int]:
        return self.info.get("pid")

    @property
    def where(self) -> str:
        if not self.info:
            return f"Ray actor {self.number}"
        return f"node {self.info.get('node_ip', '?')} pid {self.info.get('pid', '?')}"

    def join(self, timeout: Optional[float] = None) -> None:
        self.gone.wait(timeout)

    def is_alive(self) -> bool:
        return not self.gone.is_set()

    def terminate(self) -> None:
        import ray

        try:
            ray.kill(self.actor, no_restart=True)
        except (ValueError, ray.exceptions.RayError):  # gone already: nothing left to kill
            self.info.setdefault("kill", "gone already")
        self.mark_gone(-9)

    def mark_gone(self, code: int) -> None:
        if self.exitcode is None:
            self.exitcode = code
        self.gone.set()


class DirectChannel:
    """The driver's end of the connection an actor opened back: the pipe protocol as it is. Once
    the worker is ready, silence for LOST_AFTER_S is a lost worker (it reports ten times a
    second); before, it has START_TIMEOUT_S to build its tokenizer. A lost worker's connection is
    shut down (a send blocked on it fails at once) and its actor killed, so it sends nothing more."""

    def __init__(self, conn: mpc.Connection, handle: RayHandle):
        self.conn = conn
        self.handle = handle
        self._ready = False
        self._lost = False

    def send(self, message: tuple) -> None:
        self.conn.send(message)  # a peer that stops reading fails it after ray_actor.SEND_TIMEOUT_S

    def recv(self) -> tuple:
        try:
            if not self.conn.poll(LOST_AFTER_S if self._ready else START_TIMEOUT_S):
                raise EOFError(f"nothing from the worker for {LOST_AFTER_S:g} s (a network partition, or a "
                               "frozen node)")
            message = self.conn.recv()
        except (EOFError, OSError):
            self.lose()
            raise
        if message[0] == "ready":
            self._ready = True
            self.handle.info = dict(message[1])
        return message

    def lose(self) -> None:
        if self._lost:
            return
        self._lost = True
        try:
            with socket.socket(fileno=os.dup(self.conn.fileno())) as view:
                view.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed already: nothing is blocked on it
            self.handle.info.setdefault("shutdown", "closed already")
        self.handle.mark_gone(1)
        _kill_soon(self.handle.actor)

    def close(self) -> None:
        self.conn.close()


def _kill_soon(actor) -> None:
    """A lost worker's actor, killed on a thread of its own (a call to a frozen node may wait)."""
    import ray

    def kill() -> None:
        try:
            ray.kill(actor, no_restart=True)
        except (ValueError, ray.exceptions.RayError):  # gone already, or Ray itself is going away
            return

    threading.Thread(target=kill, name="sse-perf-ray-kill", daemon=True).start()


class CallsChannel:
    """The driver's end when messages go through Ray calls. send() queues (a pump thread keeps one
    `deliver` in flight, what is sent meanwhile going in the next); recv() is called by the pool's
    one reader thread and keeps one `poll` in flight."""

    def __init__(self, actor, handle: RayHandle):
        import ray

        self._ray = ray
        self.actor = actor
        self.handle = handle
        self._down: "collections.deque" = collections.deque()
        self._down_ready = threading.Condition()
        self._up: "collections.deque" = collections.deque()
        self._broken: Optional[str] = None
        self._closed = False
        self._pump = threading.Thread(target=self._deliver_loop, name="sse-perf-ray-down", daemon=True)
        self._pump.start()

    def send(self, message: tuple) -> None:
        if self._broken or self._closed:
            raise OSError(self._broken or "channel closed")
        with self._down_ready:
            self._down.append(message)
            self._down_ready.notify()

    def _deliver_loop(self) -> None:
        ray = self._ray
        while True:
            with self._down_ready:
                while not self._down and not self._closed and not self._broken:
                    self._down_ready.wait(1.0)
                if self._broken or (self._closed and not self._down):
                    return
                batch = [self._down.popleft() for _ in range(min(DOWN_BATCH, len(self._down)))]
            try:
                ray.get(self.actor.deliver.remote(batch), timeout=LOST_AFTER_S)
            except Exception as exc:  # noqa: BLE001 - Ray's errors, or a message it cannot serialise: the
                self._lose(_one_line(exc))  # worker is lost and its waiters are failed, never left waiting
                return

    def recv(self) -> tuple:
        ray = self._ray
        while not self._up:
            if self._broken:
                raise EOFError(self._broken)
            try:
                batch = ray.get(self.actor.poll.remote(POLL_WAIT_S, UP_BATCH), timeout=LOST_AFTER_S)
            except ray.exceptions.GetTimeoutError:
                self._lose(f"no answer for {LOST_AFTER_S:g} s (a network partition, or a frozen node)")
                raise EOFError(self._broken) from None
            except ray.exceptions.RayError as exc:  # the actor died, or its node did
                self._lose(_one_line(exc))
                raise EOFError(self._broken) from None
            for message in batch:
                if message[0] == "eof":
                    self._lose("its worker loop ended")
                    raise EOFError(self._broken)
                if message[0] == "ready":
                    self.handle.info = dict(message[1])
                self._up.append(message)
        return self._up.popleft()

    def _lose(self, why: str) -> None:
        first = self._broken is None
        if first:
            self._broken = why
        self.handle.mark_gone(1)
        with self._down_ready:
            self._down_ready.notify_all()
        if first:
            _kill_soon(self.actor)

    def close(self) -> None:
        self._closed = True
        with self._down_ready:
            self._down_ready.notify_all()
        self._pump.join(2.0)


class _Listener:
    """Where the actors connect back: one socket on this node's address, each connection checked
    (the run's key, both ways) on a thread of its own, within HANDSHAKE_TIMEOUT_S per read and
    twice that in all, at most MAX_HANDSHAKES at a time, and filed by the worker number it gives."""

    def __init__(self, host: str):
        self.authkey = secrets.token_bytes(32)
        self.sock = socket.create_server((host, 0), backlog=128)
        self.address = (host, self.sock.getsockname()[1])
        self.arrived: dict[int, queue.SimpleQueue] = collections.defaultdict(queue.SimpleQueue)
        self.rejected = 0
        self._slots = threading.BoundedSemaphore(MAX_HANDSHAKES)
        self._thread = threading.Thread(target=self._accept_loop, name="sse-perf-ray-listener", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:  # shut down: the run is over
                return
            if not self._slots.acquire(blocking=False):  # a flood of connections: not ours to wait for
                self.rejected += 1
                sock.close()
                continue
            threading.Thread(target=self._handshake, args=(sock,), name="sse-perf-ray-handshake", daemon=True).start()

    def _handshake(self, sock: socket.socket) -> None:
        prepare_socket(sock)
        deadline = threading.Timer(2 * HANDSHAKE_TIMEOUT_S, _shut, args=(sock,))  # a peer trickling bytes
        deadline.start()
        conn = mpc.Connection(os.dup(sock.fileno()))
        try:
            mpc.deliver_challenge(conn, self.authkey)
            mpc.answer_challenge(conn, self.authkey)
            kind, number = conn.recv()  # only a peer that proved the key gets here
            if kind != "hello" or not isinstance(number, int):
                raise mpc.AuthenticationError("not an sse-perf worker")
            clear_receive_timeout(conn)
        except (OSError, EOFError, ValueError, TypeError, mpc.AuthenticationError):  # not one of ours
            self.rejected += 1
            conn.close()
            return
        finally:
            deadline.cancel()
            sock.close()  # conn holds its own descriptor of the connection
            self._slots.release()
        self.arrived[number].put(conn)

    def take(self, number: int, timeout_s: float) -> Optional[mpc.Connection]:
        try:
            return self.arrived[number].get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        _shut(self.sock)  # wakes the accept (a close alone leaves it waiting, the port open)
        self.sock.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # not connected, or closed already: nothing to wake
        return
