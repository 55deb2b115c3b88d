"""Handing items to a thread through a bounded queue. Imports nothing from the package."""

from __future__ import annotations

import queue
import threading

PUT_WAIT_S = 0.5  # how often a blocked producer looks whether the consumer is still there


def put_while_alive(target: "queue.Queue", item, consumer: threading.Thread) -> bool:
    """Put `item`, waiting while the queue is full (backpressure: a producer faster than its consumer
    waits instead of queueing without end), unless the consumer thread has stopped (nothing would
    ever take the item). True when the item was put."""
    while True:
        try:
            target.put(item, timeout=PUT_WAIT_S)
            return True
        except queue.Full:
            if not consumer.is_alive():
                return False
