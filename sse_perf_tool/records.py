"""One request's outcome: raw monotonic instants plus the metrics derived from them.

Owns RequestRecord and ErrorKind. Imports nothing from the package.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class ErrorKind(str, Enum):
    """Why a request failed (docs/metrics.md, "Success")."""

    CONNECT = "connect"
    TLS = "tls"  # the TLS handshake failed: an unknown CA, a name mismatch, an expired certificate
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    STREAM_ERROR = "stream_error"
    TRUNCATED = "truncated"
    PROTOCOL = "protocol"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"  # --cancel-rate: a user who gave up on purpose (neither ok nor failed)
    RATE_LIMITED = "rate_limited"  # HTTP 429, or an in-stream error with status 429 (Dify's concurrency limit, a quota)
    PAUSED = "paused"  # not a failure: a Dify workflow paused for human input and closed the stream on purpose
    INTERNAL = "internal"  # a bug in sse-perf itself while handling the request (never the server's fault)


_NS_PER_MS = 1_000_000.0


def one_line(text, limit: int = 300) -> str:
    """A record's `error` (or any message about a request): one line, at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(start_ns: Optional[int], end_ns: Optional[int]) -> Optional[float]:
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / _NS_PER_MS


@dataclass(slots=True)
class RequestRecord:
    """Instants are integer nanoseconds of one monotonic clock (perf_counter_ns).

    Durations are properties that return None when the instant was never reached; None means
    "not measured" and is never replaced by 0. `token_times_ns` holds the arrival instant of
    every token-bearing event, so ITL and the per-second token split derive from it exactly.
    """

    request_id: int
    thread_id: int
    query: str
    dataset: Optional[str]
    started_at: float  # wall-clock Unix seconds, read once when the request is sent
    sent_ns: int
    first_byte_ns: Optional[int] = None
    first_token_ns: Optional[int] = None
    first_answer_ns: Optional[int] = None
    ended_ns: Optional[int] = None
    token_times_ns: array = field(default_factory=lambda: array("q"))
    ok: bool = False
    error_kind: Optional[ErrorKind] = None
    error: Optional[str] = None
    http_status: Optional[int] = None
    output_tokens: int = 0
    token_source: Optional[str] = None  # usage | server | tokenizer | tokenizer:hf | estimate; None: nothing to count
    output_chars: int = 0
    reasoning_tokens: Optional[int] = None
    prompt_tokens: Optional[int] = None
    tokenizer_tokens: Optional[int] = None  # a check of usage: the tokenizer's count of the same text (1 in 20)
    scheduled_ns: Optional[int] = None  # open loop: when the request was due (None = when sent)
    level: Optional[float] = None  # the sweep level (threads or rate) it belongs to
    warmup: bool = False  # sent during warm-up: recorded, excluded from every statistic
    finish_reason: Optional[str] = None  # the server's finish_reason (OpenAI flavours), None when none came
    # the server's own account of the request (Dify's usage and workflow_finished), None where it gives none
    server_latency_ms: Optional[float] = None
    server_ttft_ms: Optional[float] = None
    server_generate_ms: Optional[float] = None
    server_elapsed_ms: Optional[float] = None
    server_total_price: Optional[float] = None
    server_currency: Optional[str] = None
    conversation_turn: Optional[int] = None  # --turns: this request's turn in its conversation (1, 2, ...)
    stop_sent: Optional[bool] = None  # cancelled: whether the server's stop endpoint took it (None: not tried)
    redirects: int = 0  # --follow-redirects: how many same-origin 307/308 redirects this request followed
    retry_wait_ms: Optional[float] = None  # --honor-retry-after: how long its virtual user waited before sending it
    retry_after_s: Optional[float] = None  # the server's Retry-After (HTTP 429), in seconds; not written
    # (answer, reasoning) text still to be counted by the server's tokenizer (--tokenizer server); not written
    pending_text: Optional[tuple] = None

    # -- derived metrics (docs/metrics.md, "Per request") --
    @property
    def last_token_ns(self) -> Optional[int]:
        return self.token_times_ns[-1] if self.token_times_ns else None

    @property
    def chunks(self) -> int:
        return len(self.token_times_ns)

    @property
    def empty(self) -> bool:
        """A proper answer with no text at all (no token-bearing event): ok, 0 tokens, no TTFT."""
        return self.ok and not self.token_times_ns

    @property
    def ttfb_ms(self) -> Optional[float]:
        return _ms(self.sent_ns, self.first_byte_ns)

    @property
    def ttft_ms(self) -> Optional[float]:
        return _ms(self.sent_ns, self.first_token_ns)

    @property
    def ttfo_ms(self) -> Optional[float]:
        return _ms(self.sent_ns, self.first_answer_ns)

    @property
    def e2e_ms(self) -> Optional[float]:
        return _ms(self.sent_ns, self.last_token_ns)

    @property
    def total_ms(self) -> Optional[float]:
        return _ms(self.sent_ns, self.ended_ns)

    @property
    def queue_ms(self) -> float:
        """Scheduled -> sent: how long an open-loop arrival waited for a free thread (0 closed loop)."""
        if self.scheduled_ns is None:
            return 0.0
        return max(0, self.sent_ns - self.scheduled_ns) / _NS_PER_MS

    @property
    def scheduled_at(self) -> float:
        return self.started_at - self.queue_ms / 1000.0

    def _from_scheduled(self, value: Optional[float]) -> Optional[float]:
        return None if value is None else self.queue_ms + value

    @property
    def itl_ns(self) -> list[int]:
        t = self.token_times_ns
        return [t[i] - t[i - 1] for i in range(1, len(t))]

    @property
    def itl_ms(self) -> list[float]:
        return [gap / _NS_PER_MS for gap in self.itl_ns]

    @property
    def tpot_ms(self) -> Optional[float]:
        if self.output_tokens < 2 or self.first_token_ns is None:
            return None
        return (self.last_token_ns - self.first_token_ns) / _NS_PER_MS / (self.output_tokens - 1)

    @property
    def request_tps(self) -> Optional[float]:
        """Output tokens / (E2E - TTFT) in seconds; None when the answer came in one event (or none)."""
        if self.first_token_ns is None or self.last_token_ns is None or self.last_token_ns <= self.first_token_ns:
            return None
        return self.output_tokens * 1e9 / (self.last_token_ns - self.first_token_ns)

    def to_dict(self) -> dict:
        """The records.jsonl object (docs/run-folder.md field names and order)."""
        return {
            "request_id": self.request_id,
            "thread_id": self.thread_id,
            "query": self.query,
            "dataset": self.dataset,
            "started_at": self.started_at,
            "ok": self.ok,
            "error_kind": self.error_kind.value if self.error_kind else None,
            "error": self.error,
            "http_status": self.http_status,
            "ttfb_ms": _round(self.ttfb_ms),
            "ttft_ms": _round(self.ttft_ms),
            "ttfo_ms": _round(self.ttfo_ms),
            "e2e_ms": _round(self.e2e_ms),
            "total_ms": _round(self.total_ms),
            "itl_ms": [round(v, 3) for v in self.itl_ms],
            "tpot_ms": _round(self.tpot_ms),
            "chunks": self.chunks,
            "output_tokens": self.output_tokens,
            "token_source": self.token_source,
            "output_chars": self.output_chars,
            "reasoning_tokens": self.reasoning_tokens,
            "prompt_tokens": self.prompt_tokens,
            "tokenizer_tokens": self.tokenizer_tokens,
            "finish_reason": self.finish_reason,
            "scheduled_at": self.scheduled_at,
            "queue_ms": _round(self.queue_ms),
            "ttft_from_scheduled_ms": _round(self._from_scheduled(self.ttft_ms)),
            "e2e_from_scheduled_ms": _round(self._from_scheduled(self.e2e_ms)),
            "level": self.level,
            "warmup": self.warmup,
            "request_tps": _round(self.request_tps),
            "server_latency_ms": _round(self.server_latency_ms),
            "server_ttft_ms": _round(self.server_ttft_ms),
            "server_generate_ms": _round(self.server_generate_ms),
            "server_elapsed_ms": _round(self.server_elapsed_ms),
            "server_total_price": self.server_total_price,
            "server_currency": self.server_currency,
            "conversation_turn": self.conversation_turn,
            "stop_sent": self.stop_sent,
            "redirects": self.redirects,
            "retry_wait_ms": _round(self.retry_wait_ms),
        }


def _round(value: Optional[float]) -> Optional[float]:
    """Microsecond resolution in files: enough for any latency, and keeps records short."""
    return None if value is None else round(value, 3)


SERVER_FIELDS = ("server_latency_ms", "server_ttft_ms", "server_generate_ms", "server_elapsed_ms",
                 "server_total_price", "server_currency")  # what a flavour may report of the server's own account
RECORD_FIELDS = tuple(RequestRecord(0, 0, "", None, 0.0, 0).to_dict().keys())
