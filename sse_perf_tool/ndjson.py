"""Newline-delimited JSON framing (Ollama's streaming API, TGI's and others' line streams):
bytes as they arrive -> one event per non-empty line, in the shape of sse.SSEEvent
(event "message", data = the line) so that a flavour reads either framing the same way.

Owns line splitting and UTF-8 decoding; imports only sse (the event type). No HTTP, JSON or clock.
"""

from __future__ import annotations

from .sse import SSEEvent


class NDJSONDecoder:
    """Incremental decoder with SSEDecoder's interface: feed() each read, finish() at the end.

    Lines end at LF (a CR before it is dropped). Lines are split on the byte before decoding, so
    a UTF-8 character split across reads waits in the partial line. Blank lines are skipped."""

    __slots__ = ("comments", "_partial")

    def __init__(self) -> None:
        self.comments = 0  # SSEDecoder's counter; NDJSON has no comments
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._partial += chunk
        if b"\n" not in chunk:
            return []
        *lines, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        events = []
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace").strip()
            if line:
                events.append(SSEEvent("message", line))
        return events

    def finish(self) -> bool:
        """End of stream. True when an unterminated line was pending (discarded: a truncated stream)."""
        pending = bool(self._partial.strip())
        self._partial = bytearray()
        return pending
