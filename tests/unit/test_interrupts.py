"""interrupts.py: Ctrl-C, SIGTERM and SIGHUP stop a run the same way; a second signal quits at once
with 128 + its number; the handlers in place before the run are put back."""

from __future__ import annotations

import io
import signal

import pytest

from sse_perf_tool import interrupts


def test_sigterm_during_the_run_is_handled_as_ctrl_c_with_its_exit_code():
    before = {s: signal.getsignal(s) for s in interrupts.STOP_SIGNALS}
    cancelled, out = [], io.StringIO()

    def run():
        signal.raise_signal(signal.SIGTERM)

    with interrupts.sigint_restored():
        assert interrupts.run_until_interrupted(run, lambda: cancelled.append(True), out) is True
        assert cancelled == [True] and "interrupted (SIGTERM)" in out.getvalue()
        assert interrupts.exit_code_of_stop() == 143
        # at once, the same signal again is the same stop (`timeout` signals the process, then its group)
        assert signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None) is None
        interrupts._first_at[signal.SIGTERM] -= interrupts.SAME_STOP_S  # later, it is a second stop
        for sig, code in ((signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)):
            with pytest.raises(SystemExit) as quit_now:  # a second signal does not wait
                signal.getsignal(sig)(sig, None)
            assert quit_now.value.code == code
    assert {s: signal.getsignal(s) for s in interrupts.STOP_SIGNALS} == before


def test_a_run_without_a_signal_is_not_interrupted_and_ctrl_c_stays_130():
    with interrupts.sigint_restored():
        assert interrupts.run_until_interrupted(lambda: None, lambda: None, io.StringIO()) is False
        assert interrupts.exit_code_of_stop() == 130


def test_a_stop_while_held_is_raised_on_release_where_the_run_takes_it():
    """A Ctrl-C between the banner and the run's parts being started (what a console that stops a
    run as soon as it printed its live view sends) must not escape the code that writes the results."""
    import os

    before = signal.getsignal(signal.SIGINT)
    held = interrupts.HeldStops()
    os.kill(os.getpid(), signal.SIGINT)  # noted, not raised: this line and the next run on
    assert held.noted == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        held.release()
    assert signal.getsignal(signal.SIGINT) is before


def test_release_without_a_stop_only_puts_the_handlers_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    held = interrupts.HeldStops()
    assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    held.release()
    assert {s: signal.getsignal(s) for s in before} == before
