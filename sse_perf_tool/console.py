"""The run's lines on the terminal: one helper, so every message is printed and flushed alike, and
passes the one masking of every secret the run knows (masking.mask_known: a server message, an
error that quotes a URL or a key)."""

from __future__ import annotations

from .masking import mask_known


def say(text: str, out) -> None:
    """Print one line to `out` (stdout or stderr), every known secret masked, and flush it at once."""
    print(mask_known(text), file=out, flush=True)
