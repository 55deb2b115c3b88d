"""The run's lines on the terminal: one helper, so every message is printed and flushed alike."""

from __future__ import annotations


def say(text: str, out) -> None:
    """Print one line to `out` (stdout or stderr) and flush it at once."""
    print(text, file=out, flush=True)
