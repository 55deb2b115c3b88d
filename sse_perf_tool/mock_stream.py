"""The mock server's pacing and stream writing: the token schedule, the sleeper that keeps Dify's
keep-alive pings going while it waits, and the writer of one stream's events, with the faults that
strike mid-stream (stall, reset, error event, workflow pause) and the two ways a stream ends early
(the server stops; a Dify stop request for its task).

Standard library only; imports only mock_config, mock_dify and mock_wire from the package.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable, Optional

from .mock_config import MID_STREAM_FAULTS
from .mock_dify import STREAM_ERROR
from .mock_wire import _Flavour, _Generation

DIFY_PING_INTERVAL_S = 10.0  # Dify sends `event: ping` every 10 s
_STOP_POLL_S = 0.05  # longest single sleep, so a stream notices stop() within this


def schedule_offsets_s(config: Any, events: int, rng: random.Random) -> list[float]:
    """Send instants of the token events, in seconds after the request arrived.

    An absolute schedule: event k is due at the sum of the first k+1 delays (ttft, then itl
    each), so time lost oversleeping one delay is not added to the next. Each delay gets its
    own uniform +-jitter and is clamped at 0, so the offsets never decrease.
    """
    offsets: list[float] = []
    due_s = 0.0
    for k in range(events):
        delay_ms = config.ttft_ms if k == 0 else config.itl_ms
        if config.jitter_ms:
            delay_ms += rng.uniform(-config.jitter_ms, config.jitter_ms)
        due_s += max(0.0, delay_ms) / 1000.0
        offsets.append(due_s)
    return offsets


class _Pacer:
    """Sleeps a response along its absolute schedule (perf_counter() instants), sending Dify's
    keep-alive ping while it waits: every ping_interval_s of elapsed time (chat, completion and
    agent apps), or, with `silence`, once ping_interval_s has passed since the last bytes written
    (chatflow and workflow runs; call `wrote()` after each write)."""

    def __init__(self, stop_event: threading.Event, started_at: float,
                 write: Optional[Callable[[bytes], None]] = None, ping: Optional[bytes] = None,
                 ping_interval_s: float = DIFY_PING_INTERVAL_S, silence: bool = False,
                 task_stop: Optional[threading.Event] = None) -> None:
        self.stop_event = stop_event
        self.task_stop = task_stop
        self.write = write
        self.ping = ping
        self.ping_interval_s = ping_interval_s
        self.silence = silence
        self.next_ping_at = started_at + ping_interval_s

    def stopped(self) -> bool:
        return self.stop_event.is_set() or (self.task_stop is not None and self.task_stop.is_set())

    def wrote(self) -> None:
        if self.silence:
            self.next_ping_at = time.perf_counter() + self.ping_interval_s

    def wait_until(self, due: float, quiet: bool = False) -> bool:
        """True once perf_counter() >= due; False as soon as stop() or the task's stop is seen
        (within _STOP_POLL_S). `quiet`: no pings meanwhile (a stalled upstream sends nothing)."""
        pinging = self.write is not None and not quiet
        while True:
            if self.stopped():
                return False
            now = time.perf_counter()
            if pinging and now >= self.next_ping_at:
                self.write(self.ping)  # type: ignore[misc]
                if self.silence:
                    self.next_ping_at = now + self.ping_interval_s
                while self.next_ping_at <= now:  # pings missed while busy collapse into this one
                    self.next_ping_at += self.ping_interval_s
            remaining = due - now
            if remaining <= 0:
                if quiet:  # the pings a stall held back are not owed afterwards
                    if self.silence:
                        self.next_ping_at = now + self.ping_interval_s
                    while self.next_ping_at <= now:
                        self.next_ping_at += self.ping_interval_s
                return True
            if pinging:
                remaining = min(remaining, self.next_ping_at - now)
            time.sleep(min(remaining, _STOP_POLL_S))


# How a stream ended (StreamWriter.run)
DONE = "done"  # its proper end was written (the epilogue, an error event, a pause)
STOPPED = "stopped"  # a stop request for its task: ended early, properly (Dify's message_end etc.)
SERVER_STOPPED = "server-stopped"  # stop(): cut without a terminal event
INTERRUPTED = "interrupted"  # a newer request cut it (`interrupt`): [DONE] was the last event
RESET = "reset"  # the connection was reset (fault)


class StreamWriter:
    """Writes one stream: its events on the schedule, each as one chunk."""

    def __init__(self, handler: Any, flavour: _Flavour, gen: _Generation, config: Any,
                 stop_event: threading.Event, task_stop: Optional[threading.Event] = None,
                 cut: Optional[threading.Event] = None, fault: Optional[str] = None,
                 on_token: Optional[Callable[[int], None]] = None) -> None:
        self.handler, self.flavour, self.gen, self.config = handler, flavour, gen, config
        self.stop_event, self.cut, self.fault, self.on_token = stop_event, cut, fault, on_token
        ping = flavour.ping()
        self.ping = ping
        self.pacer = _Pacer(stop_event, gen.started_at, handler.write_chunk if ping else None, ping,
                            config.ping_interval_s, silence=flavour.ping_first, task_stop=task_stop)

    def send(self, data: bytes) -> None:
        self.handler.write_chunk(data)
        self.pacer.wrote()

    def _elapsed(self) -> float:
        return time.perf_counter() - self.gen.started_at

    def _end(self, events: list) -> None:
        for event in events:
            self.send(event)

    def _stopped(self, k: int) -> str:
        if self.stop_event.is_set():
            return SERVER_STOPPED
        self.gen.stopped = True  # Dify: the task's stop flag; the pipeline ends the answer properly
        self.gen.cut_at = k
        self._end(self.flavour.epilogue(self.gen, self._elapsed()))
        return STOPPED

    def run(self) -> str:
        gen, flavour, config = self.gen, self.flavour, self.config
        if flavour.ping_first and self.ping is not None:
            self.send(self.ping)  # a chatflow / workflow run: the ping is the first bytes
        for event in flavour.preamble(gen):
            self.send(event)
        if self.ping is not None and not flavour.ping_first and config.ttft_ms >= 1000:
            self.send(self.ping)  # a chat app keeps a slow stream alive from the start
        total = gen.total
        offsets = schedule_offsets_s(config, max(total, 1), gen.rng)
        fault_at = total // 2 if self.fault in MID_STREAM_FAULTS else -1
        for k in range(max(total, 1)):  # with no tokens at all, k=0 still marks the first-token time
            if k == fault_at and self.fault == "stall":
                if not self.pacer.wait_until(time.perf_counter() + config.stall_s, quiet=True):
                    return self._stopped(k)
                offsets = offsets[:k] + [o + config.stall_s for o in offsets[k:]]
            if not self.pacer.wait_until(gen.started_at + offsets[k]):
                return self._stopped(k)
            if k == fault_at and self.fault == "reset":
                self.handler.reset()
                return RESET
            if k == fault_at and self.fault == "error":
                gen.cut_at = k
                self._end(flavour.error_events(gen, self._elapsed(), STREAM_ERROR))
                return DONE
            if k == 0:
                self._end(flavour.before_first_token(gen))
            if k == total:
                break
            kind, index, text, last = gen.event(k)
            self.send(flavour.token_event(gen, kind, index, text, last))
            if k == 0:
                gen.first_token_at = time.perf_counter()
            if self.on_token is not None:
                self.on_token(k)
            if self.cut is not None and self.cut.is_set() and k + 1 < total:
                self.send(b"data: [DONE]\n\n")  # get_event_publisher, llama_cpp/server/app.py
                return INTERRUPTED
        if self.fault == "pause" and flavour.can_pause:
            self._end(flavour.pause_events(gen, self._elapsed()))
        else:
            self._end(flavour.epilogue(gen, self._elapsed()))
        return DONE
