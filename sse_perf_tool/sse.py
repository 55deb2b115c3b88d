"""Server-sent events framing (WHATWG HTML spec): bytes as they arrive -> SSEEvent.

Owns BOM stripping, line splitting, UTF-8 decoding and field parsing. Imports no HTTP, JSON or clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event.

    event: the `event:` field, or "message" when the block had none (or an empty one).
    data: the block's data lines joined with "\\n".
    id: the last event ID in effect (it persists across events, per spec); None until a
        server sends one.
    retry: the reconnection time in ms last set by a digits-only `retry:` field (a stream
        setting, so it persists too); None until a server sends one.
    """

    event: str
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Incremental decoder: feed() each read as it arrives, finish() at end of stream.

    Lines are split on the bytes CR/LF before decoding: UTF-8 multibyte sequences never
    contain 0x0D/0x0A, so only complete lines are decoded and a character split across
    reads simply waits in the partial line. A CR that ends a read ends its line at once
    (CR-only streams are not delayed); an LF opening the next read is then dropped.
    """

    __slots__ = ("comments", "_partial", "_skip_lf", "_head", "_data", "_event_type", "_last_id", "_retry")

    def __init__(self) -> None:
        self.comments = 0  # comment lines seen (":" / ": keep-alive"), for diagnostics
        self._partial = bytearray()  # bytes of the current unterminated line (never CR/LF)
        self._skip_lf = False  # the previous read ended with CR: an LF opening the next is its pair
        self._head: Optional[bytearray] = bytearray()  # first bytes while the BOM is undecided; None after
        self._data: list[str] = []  # data lines of the current block
        self._event_type = ""
        self._last_id: Optional[str] = None
        self._retry: Optional[int] = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume bytes as they arrived from the socket; return the events completed by them (often [])."""
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)
        if self._head is not None:
            # One BOM is stripped at the very start; its 3 bytes may come in separate reads.
            head = self._head
            head += chunk
            if len(head) < 3 and _BOM.startswith(head):
                return []  # only BOM prefixes are held back, and they are never line ends
            chunk = bytes(head[3:] if head.startswith(_BOM) else head)
            self._head = None
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not chunk:
            return []
        if b"\r" in chunk:
            self._skip_lf = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._partial += chunk  # amortised O(1) per byte: a huge line is not quadratic
            return []
        if self._partial:
            block = bytes(self._partial) + chunk[:end]
            self._partial = bytearray(chunk[end + 1 :])
        else:
            block = chunk[:end]
            if end + 1 < len(chunk):
                self._partial += chunk[end + 1 :]
        # Decoding several complete lines at once equals decoding each: "\n" is ASCII, so an
        # invalid sequence never spans it and each U+FFFD lands where it would per line.
        return self._process(block.decode("utf-8", "replace").split("\n"))

    def _process(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:  # blank line: dispatch
                if data:
                    events.append(SSEEvent(self._event_type or "message", "\n".join(data), self._last_id, self._retry))
                    data.clear()
                self._event_type = ""  # reset even when nothing was dispatched (`event: ping`)
                continue
            if line.startswith("data:"):  # hot path
                value = line[5:]
                data.append(value[1:] if value[:1] == " " else value)
                continue
            colon = line.find(":")
            if colon == 0:
                self.comments += 1
                continue
            if colon < 0:
                name, value = line, ""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event_type = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self._retry = int(value)
            # any other field name is ignored
        return events

    def finish(self) -> bool:
        """End of stream. Returns True when a partial event (data buffered, or an unterminated line) was pending and has been discarded (the caller treats that as a truncated stream)."""
        pending = bool(self._data or self._partial or self._head)
        self._data.clear()
        self._partial = bytearray()
        self._head = None
        self._skip_lf = False
        self._event_type = ""
        return pending
