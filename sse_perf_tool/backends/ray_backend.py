"""`--ray`: workers as Ray actors on a cluster (pip install 'sse-perf[ray]').

Each worker is one `SsePerfWorker` actor (one CPU; backends/ray_actor.py), placed by a placement
group (SPREAD by default, STRICT_SPREAD for one per node, PACK). Ray places, starts and watches
the workers and carries the clock exchanges; the messages of the pool's protocol go over a
connection each actor opens back to this process (authenticated with a key made for the run, sent
in the `start` call, never in a constructor: Ray keeps those in its control store). Where an actor
cannot reach this machine that way, its messages go through Ray calls instead (slower: a few
milliseconds between a user's requests), and the run says so.

A worker is lost when its connection closes (its actor or node died), when an actor call fails,
or when nothing has come from it for LOST_AFTER_S (it reports ten times a second: a partition);
its requests in flight become failed records and the others go on.

Clocks: each worker's monotonic clock is mapped onto this one by an NTP-style estimate
(backends/clock.py) before the run, refused above CLOCK_BOUND_LIMIT_NS, and again every RESYNC_S
with the drift fitted. A worker on this machine's kernel (the same boot id) whose estimate is
consistent with zero is on this very clock: its map is the identity.

Ray does not encrypt its traffic, nor does the direct connection: use a trusted network (the
README says so). The only module that imports ray; imported only under --ray.
"""

from __future__ import annotations

import collections
import multiprocessing.connection as mpc
import os
import queue
import secrets
import socket
import sys
import threading
from typing import Optional

from . import ClockMap, Launched
from .clock import ClockSync
from .ray_actor import HANDSHAKE_TIMEOUT_S, WorkerActor, boot_id, clear_receive_timeout, prepare_socket, skew_for

DOWN_BATCH = 1000
UP_BATCH = 2000
POLL_WAIT_S = 0.2
LOST_AFTER_S = 5.0
RESYNC_S = 10.0
CONNECT_BACK_S = 3.0
START_TIMEOUT_S = 60.0  # an actor comes up, and then its worker builds its tokenizer, within this
MAX_HANDSHAKES = 32
PROBE_TIMEOUT_S = 5.0
CLOCK_BOUND_LIMIT_NS = 5_000_000
CHANNEL_ENV = "SSE_PERF_RAY_CHANNEL"  # "calls": every message through Ray calls (for comparing the two)


class RayBackendError(RuntimeError):
    """The cluster cannot be used as asked (said in one line): bad usage, before anything is sent."""

    refusal = True


def settle_environment(local: bool) -> None:
    """Before the first `import ray` (Ray reads its auth mode when imported): Ray's own C++ log
    keeps to errors (this run says what went wrong in one line), and a private Ray (--ray local)
    gets token authentication with a token made here, in the environment only (nothing is written
    to ~/.ray), and no usage statistics."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    if local:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_MODE" not in os.environ:
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


_ACTOR = None


def _actor_class():
    """WorkerActor as a Ray actor, its methods in concurrency groups of one thread each: `start`
    and `deliver` (down), `poll` (up), `now` and `boot` (clock: never queued behind a poll)."""
    global _ACTOR
    if _ACTOR is None:
        import ray

        class SsePerfWorker(WorkerActor):
            def __init__(self, index: int, entry, skew_ns: int = 0):
                context = ray.get_runtime_context()
                super().__init__(index, entry, {"node_ip": ray.util.get_node_ip_address(),
                                                "node_id": context.get_node_id(), "ray": ray.__version__}, skew_ns)

            @ray.method(concurrency_group="down")
            def start(self, *args):
                return WorkerActor.start(self, *args)

            @ray.method(concurrency_group="down")
            def deliver(self, batch):
                return WorkerActor.deliver(self, batch)

            @ray.method(concurrency_group="up")
            def poll(self, max_wait, max_items):
                return WorkerActor.poll(self, max_wait, max_items)

            @ray.method(concurrency_group="clock")
            def now(self):
                return WorkerActor.now(self)

            @ray.method(concurrency_group="clock")
            def boot(self):
                return WorkerActor.boot(self)

        _ACTOR = ray.remote(num_cpus=1, concurrency_groups={"down": 1, "up": 1, "clock": 1})(SsePerfWorker)
    return _ACTOR


# -- the driver's side ---------------------------------------------------------------------------------


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


class RayBackend:
    """--ray ADDRESS: `local` (a private Ray on this machine), `auto` (the cluster this machine
    joined, or RAY_ADDRESS), or the cluster's HOST:PORT."""

    name = "ray"

    def __init__(self, address: str, workers: Optional[int] = None, spread: str = "spread",
                 clock_bound_limit_ns: int = CLOCK_BOUND_LIMIT_NS):
        self.address = address
        self.requested = workers
        self.spread = spread
        self.clock_bound_limit_ns = clock_bound_limit_ns
        self.processes = 0  # the workers it will launch, once connected
        self.nodes: list = []
        self.ray_version = ""
        self.channels: list[str] = []  # per worker: "direct" or "calls (why)"
        self.problems: list[str] = []
        self._group = None
        self._actors: list = []
        self._syncs: list[ClockSync] = []
        self._listener: Optional[_Listener] = None
        self._stop = threading.Event()

    def connect(self) -> "RayBackend":
        """Reach the cluster and count its CPUs and nodes (before anything is launched or sent)."""
        local = self.address == "local"
        settle_environment(local)
        try:
            import ray
        except ImportError:
            raise RayBackendError("--ray needs Ray: pip install 'sse-perf[ray]'") from None
        self.ray_version = ray.__version__
        if not local and self.address != "auto":
            self._probe()
        try:
            if local:
                ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False,
                         _node_ip_address="127.0.0.1")
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError, OSError, ray.exceptions.RayError) as exc:
            raise RayBackendError(f"could not reach the Ray cluster at {self.address!r}: {_one_line(exc)}") from None
        self.nodes = [node for node in ray.nodes() if node.get("Alive")]
        cpus = int(sum(node.get("Resources", {}).get("CPU", 0) for node in self.nodes))
        self.processes = self.requested if self.requested is not None else max(1, cpus)
        if self.processes > cpus:
            self.shutdown()
            raise RayBackendError(f"--ray-workers {self.processes}: the cluster offers {cpus} CPU(s) "
                                  f"on {len(self.nodes)} node(s)")
        return self

    def _probe(self) -> None:
        """HOST:PORT answers at all (Ray itself retries an unreachable address for minutes)."""
        host, _, port = self.address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
        except (OSError, ValueError) as exc:
            raise RayBackendError(f"could not reach the Ray cluster at {self.address!r}: {_one_line(exc)} (is "
                                  "`ray start --head` running there, and is its port open from here?)") from None

    @property
    def multi_host(self) -> bool:
        """Nodes on more than one machine (nodes simulated on one host share its address)."""
        return len({node.get("NodeManagerAddress") for node in self.nodes}) > 1

    def launch(self, entry, count: int, api: str, settings, tokenizer: str) -> list[Launched]:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = {"spread": "SPREAD", "strict": "STRICT_SPREAD", "pack": "PACK"}[self.spread]
        self._group = placement_group([{"CPU": 1}] * count, strategy=strategy)
        try:
            ray.get(self._group.ready(), timeout=60)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):
            raise RayBackendError(f"Ray could not place {count} worker(s) with --ray-spread {self.spread} on "
                                  f"{len(self.nodes)} node(s) within 60 s") from None
        host = "127.0.0.1" if self.address == "local" else ray.util.get_node_ip_address()
        direct = os.environ.get(CHANNEL_ENV, "direct") != "calls"
        self._listener = _Listener(host) if direct else None
        actor_class = _actor_class()
        for number in range(1, count + 1):  # all started at once: each takes a process of its own to come up
            self._actors.append(actor_class.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=self._group, placement_group_bundle_index=number - 1)).remote(number, entry,
                                                                                          skew_for(number)))
        try:
            boots = ray.get([actor.boot.remote() for actor in self._actors], timeout=START_TIMEOUT_S)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
            raise RayBackendError(f"Ray workers did not start within {START_TIMEOUT_S:g} s: {_one_line(exc)}") from None
        launched = []
        for number, (actor, boot) in enumerate(zip(self._actors, boots), start=1):
            handle = RayHandle(actor, number)
            sync = self._synchronised(actor, number, boot == boot_id() != "")
            address = self._listener.address if self._listener else None
            authkey = self._listener.authkey if self._listener else b""
            try:
                mode = ray.get(actor.start.remote(api, settings, tokenizer, address, authkey, CONNECT_BACK_S),
                               timeout=START_TIMEOUT_S)
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
                raise RayBackendError(f"Ray worker {number} did not start: {_one_line(exc)}") from None
            if mode == "direct":
                conn = self._listener.take(number, CONNECT_BACK_S + 2 * HANDSHAKE_TIMEOUT_S)
                if conn is None:  # it connected, but the handshake never reached this side: its loop is on a dead end
                    raise RayBackendError(f"Ray worker {number} connected back to {address[0]}:{address[1]} but the "
                                          "connection was not completed")
                channel = DirectChannel(conn, handle)
            else:
                if direct:
                    self.problems.append(f"Ray worker {number} could not connect to {address[0]}:{address[1]} "
                                         f"({mode}): its messages go through Ray calls, a few ms slower per request")
                channel = CallsChannel(actor, handle)
            self.channels.append("direct" if mode == "direct" else "calls")
            launched.append(Launched(channel, handle, sync.map))
        self.processes = count
        threading.Thread(target=self._resync_loop, name="sse-perf-ray-clock", daemon=True).start()
        return launched

    def _synchronised(self, actor, number: int, same_machine: bool) -> ClockSync:
        """The worker's clock map from a first round of exchanges (refused if too loose)."""
        import ray

        sync = ClockSync(lambda: ray.get(actor.now.remote(), timeout=LOST_AFTER_S))
        try:
            sync.round()
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
            raise RayBackendError(f"Ray worker {number} did not answer its clock: {_one_line(exc)}") from None
        clock_map = sync.map
        if same_machine and abs(clock_map.offset_ns) <= (clock_map.bound_ns or 0):
            # this machine's kernel, and the estimate agrees (a time namespace would have shifted it):
            # one clock, so its records carry no estimate's error
            clock_map.update(0, 0.0, 0, None)
            sync.same_clock = True
        elif clock_map.bound_ns is not None and clock_map.bound_ns > self.clock_bound_limit_ns:
            raise RayBackendError(f"Ray worker {number}: its clock is known only within ±{clock_map.bound_ns / 1e6:.1f} "
                                  f"ms (over {self.clock_bound_limit_ns / 1e6:g} ms): the network to it is too slow "
                                  "or too loaded to time requests across machines")
        self._syncs.append(sync)
        return sync

    def _resync_loop(self) -> None:
        import ray

        while not self._stop.wait(RESYNC_S):
            for number, sync in enumerate(self._syncs, start=1):
                if sync.same_clock:
                    continue
                try:
                    sync.round()
                except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):  # lost: its channel says so
                    continue
                bound = sync.map.bound_ns
                if bound is not None and bound > self.clock_bound_limit_ns:
                    note = f"Ray worker {number}: its clock was known only within ±{bound / 1e6:.1f} ms during the run"
                    if note not in self.problems:
                        self.problems.append(note)

    def usable_cores(self) -> int:
        return self.processes + 1

    def describe(self) -> dict:
        bounds = [sync.map.bound_ns for sync in self._syncs if sync.map.bound_ns is not None]
        return {"backend": "ray", "ray_address": self.address, "ray_version": self.ray_version,
                "clock_bound_ms_max": round(max(bounds) / 1e6, 3) if bounds else None,
                "channels": list(self.channels)}

    def clock_maps(self) -> list[ClockMap]:
        return [sync.map for sync in self._syncs]

    def shutdown(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        ray = sys.modules.get("ray")
        if ray is None or not hasattr(ray, "shutdown"):  # never imported, or its import was interrupted
            return
        if not ray.is_initialized():
            return
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except (ValueError, ray.exceptions.RayError):  # gone already
                continue
        self._actors = []
        if self._group is not None:
            try:
                ray.util.remove_placement_group(self._group)
            except (ValueError, ray.exceptions.RayError) as exc:  # the cluster is going away
                self.problems.append(f"Ray placement group not removed: {_one_line(exc)}")
            self._group = None
        ray.shutdown()
