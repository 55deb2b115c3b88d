"""Stopping a run from outside: Ctrl-C (SIGINT), and SIGTERM and SIGHUP (how `timeout`, Docker,
Kubernetes, CI runners and a closed terminal stop a process) all do the same. The first one while
sending stops the levels, cancels the requests in flight and keeps the results (every file is
written, the history says `interrupted`); a second one quits at once. Once sending is over a
first one is noted and ignored, so the results being written are not torn. The exit code says
which signal it was: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (128 + its number).
The process's own handlers are put back when the run ends. Signal handlers are only touched on
the main thread (a run started from another thread has none).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from .console import say
from .exit_codes import EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED

# the signals that stop a run: how each is named, and the exit code it leaves (Windows has no SIGHUP)
_STOPS = {getattr(signal, name): (shown, code) for name, shown, code in (
    ("SIGINT", "Ctrl-C", EXIT_INTERRUPTED), ("SIGTERM", "SIGTERM", EXIT_TERMINATED), ("SIGHUP", "SIGHUP", EXIT_HANGUP))
    if hasattr(signal, name)}
STOP_SIGNALS = tuple(_STOPS)
_NAMES = {s: shown for s, (shown, _) in _STOPS.items()}
_EXIT = {s: code for s, (_, code) in _STOPS.items()}


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP during the run: handled as Ctrl-C is (a KeyboardInterrupt), with its signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_received: dict = {}  # the signal that stopped the run: {"signum": n}
# `timeout` sends its signal to the process, then to the process's group: the same stop arrives
# twice within microseconds. A repeat of the first signal this soon is that stop, not a second one.
SAME_STOP_S = 0.5
_first_at: dict = {}  # signum -> monotonic instant the first of it was handled


def exit_code_of_stop() -> int:
    """130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP."""
    return _EXIT.get(_received.get("signum", signal.SIGINT), EXIT_INTERRUPTED)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _noted(signum) -> None:
    _first_at.setdefault(signum, time.monotonic())


def _repeat_of_first(signum) -> bool:
    first = _first_at.get(signum)
    return first is not None and time.monotonic() - first < SAME_STOP_S


def _stop_now(signum, _frame) -> None:
    if _repeat_of_first(signum):  # the first stop again (`timeout` sends it twice): already being handled
        return
    sys.exit(_EXIT.get(signum, EXIT_INTERRUPTED))


def _raise_stop(signum, _frame) -> None:
    _received["signum"] = signum
    _noted(signum)
    raise Stopped(signum)


@contextmanager
def sigint_restored():
    """During the run SIGTERM and SIGHUP stop it as Ctrl-C does; the handlers in place before the
    run are put back after it."""
    main_thread = _on_main_thread()
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS} if main_thread else {}
    _received.clear()
    _first_at.clear()
    if main_thread:
        for s in STOP_SIGNALS:
            if s != signal.SIGINT:  # SIGINT already raises KeyboardInterrupt
                signal.signal(s, _raise_stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_until_interrupted(run, cancel, out) -> bool:
    """Call `run()`; on Ctrl-C, SIGTERM or SIGHUP say so, make a second signal quit at once, and
    `cancel()` what is in flight. Returns whether the run was interrupted."""
    try:
        run()
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        _received["signum"] = signum
        _noted(signum)
        name = _NAMES.get(signum, f"signal {signum}")
        say(f"\ninterrupted ({name}): stopping, cancelling requests in flight, writing results "
            f"({name} again to quit now)", out)
        ignore_further_interrupts()
        cancel()
        return True
    return False


def finish_quietly_on_ctrl_c(interrupted: bool, out) -> None:
    """Sending is over; a signal now would tear the results being written. The first one is noted
    and ignored (a second quits at once)."""
    if interrupted or not _on_main_thread():
        return

    def on_signal(signum, _frame):
        if _repeat_of_first(signum):
            return
        _noted(signum)
        say(f"\nwriting results, a moment ({_NAMES.get(signum, 'the signal')} again to quit now)", out)
        for s in STOP_SIGNALS:
            signal.signal(s, _stop_now)

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)


def ignore_further_interrupts() -> None:
    """A second signal quits at once (128 + its number) instead of tearing a half-written file."""
    if _on_main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, _stop_now)


def interrupt_self() -> None:
    """The live view's Stop button: this process sends itself SIGINT, so the run stops exactly as
    after Ctrl-C in its terminal (requests in flight cancelled, every file written, exit code 130)."""
    os.kill(os.getpid(), signal.SIGINT)


class HeldStops:
    """Between the run's first output and the moment it can take a stop (its parts started), a
    stop signal is noted instead of raised: raised there, a KeyboardInterrupt would skip the
    writing of the results. `release()`, called where the run takes stops, puts the handlers back
    and raises a noted stop right there. Only the main thread touches handlers."""

    def __init__(self):
        self.noted = None
        self._previous = {s: signal.getsignal(s) for s in STOP_SIGNALS} if _on_main_thread() else {}
        for s in self._previous:
            signal.signal(s, self._note)

    def _note(self, signum, _frame) -> None:
        if self.noted is None:
            self.noted = signum

    def release(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        if self.noted is not None:
            signal.raise_signal(self.noted)  # its handler runs now, where the run handles stops
