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
README says so). The channels and the listener are in backends/ray_channels.py, the actor's inside
in backends/ray_actor.py. The Ray backend's modules are the only ones that import ray, and they
are imported only under --ray.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
from typing import Optional

from . import ClockMap, Launched
from .clock import ClockSync
from .ray_actor import HANDSHAKE_TIMEOUT_S, WorkerActor, boot_id, skew_for
from .ray_channels import (LOST_AFTER_S, START_TIMEOUT_S, CallsChannel, DirectChannel, RayHandle, _Listener,
                           _one_line)

RESYNC_S = 10.0
CONNECT_BACK_S = 3.0
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
