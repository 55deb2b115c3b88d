"""Ctrl-C during a run: the first one while sending stops the levels and keeps the results, a
second one quits at once (exit 130); once sending is over a first one is noted and ignored so the
results being written are not torn. The process's own SIGINT handler is put back when the run ends.
Signal handlers are only touched on the main thread (a run started from another thread has none).
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

from .console import say
from .exit_codes import EXIT_INTERRUPTED


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigint_restored():
    """The SIGINT handler in place before the run is put back after it (the run's own Ctrl-C
    handling ends with it)."""
    main_thread = _on_main_thread()
    previous_handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous_handler)


def run_until_interrupted(run, cancel, out) -> bool:
    """Call `run()`; on Ctrl-C say so, make a second Ctrl-C quit at once, and `cancel()` what is in
    flight. Returns whether the run was interrupted."""
    try:
        run()
    except KeyboardInterrupt:
        say("\ninterrupted: stopping, cancelling requests in flight, writing results (Ctrl-C again to quit now)", out)
        ignore_further_interrupts()
        cancel()
        return True
    return False


def finish_quietly_on_ctrl_c(interrupted: bool, out) -> None:
    """Sending is over; a Ctrl-C now would tear the results being written. The first one is noted
    and ignored (a second quits at once, exit 130)."""
    if interrupted or not _on_main_thread():
        return

    def on_interrupt(*_):
        say("\nwriting results, a moment (Ctrl-C again to quit now)", out)
        signal.signal(signal.SIGINT, lambda *_: sys.exit(EXIT_INTERRUPTED))

    signal.signal(signal.SIGINT, on_interrupt)


def ignore_further_interrupts() -> None:
    """A second Ctrl-C quits at once (exit 130) instead of tearing a half-written file."""
    if _on_main_thread():
        signal.signal(signal.SIGINT, lambda *_: sys.exit(EXIT_INTERRUPTED))
