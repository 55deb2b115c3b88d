"""Polling a condition that another thread or process makes true, with a bound against a hang (not
a timing claim). Shared by the unit and integration tests."""

from __future__ import annotations

import time
from typing import Callable


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, poll_s: float = 0.01) -> bool:
    """Polls until predicate() is true; False after timeout_s (tests assert on it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
