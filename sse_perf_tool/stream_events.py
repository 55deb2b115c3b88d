"""One response body's events, fed as its bytes arrive: the part of a request that is the same
whichever thread reads the socket (the tester's own, or the process's shared reader).

`EventStream.feed(chunk, now)` unframes the bytes (the flavour's decoder), parses each event
(the flavour), splits a leading <think> block off the answer, and stamps the record's instants
with `now`, the clock read right after the bytes arrived. The end of the body, a stall, broken
framing and the per-request and idle limits are methods too, so that both readers mean the same
by each. A failure is raised as StreamFailure(kind, message), the request's outcome.

Imports records (the record, its error kinds, one_line), flavors.base (ProtocolError) and think.
"""

from __future__ import annotations

import random

from .flavors.base import ProtocolError
from .records import SERVER_FIELDS, ErrorKind, one_line
from .think import ThinkSplitter


class StreamFailure(Exception):
    """A request's failure: its error kind and the message recorded with it."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class EventStream:
    """The state of one body being read. `owner.events_received` counts token-bearing events (the
    live rate); `answer_parts`, `reasoning_parts`, `usage` and `handles` are the tester's, filled
    as the events come."""

    __slots__ = ("record", "flavor", "owner", "answer_parts", "reasoning_parts", "usage", "handles", "timeout_s",
                 "request_timeout_s", "idle_timeout_s", "decoder", "think", "soft_end", "deadline_ns", "idle_ns",
                 "progress_ns", "last_byte_ns", "abandon_ns", "abandon_tokens")

    def __init__(self, record, flavor, owner, settings, answer_parts: list, reasoning_parts: list, usage: dict,
                 handles: dict):
        self.record = record
        self.flavor = flavor
        self.owner = owner
        self.answer_parts, self.reasoning_parts, self.usage, self.handles = answer_parts, reasoning_parts, usage, handles
        self.timeout_s = settings.timeout_s
        self.request_timeout_s, self.idle_timeout_s = settings.request_timeout_s, settings.idle_timeout_s
        self.decoder = flavor.new_decoder()
        self.think = ThinkSplitter(settings.think_tag) if settings.think_tag else None
        self.soft_end = False  # the work is done (a chatflow's workflow_finished); the usage may follow
        limit, idle = settings.request_timeout_s, settings.idle_timeout_s
        self.deadline_ns = record.sent_ns + int(limit * 1e9) if limit else None
        self.idle_ns = int(idle * 1e9) if idle else None
        self.progress_ns = record.sent_ns  # the last data event (a keep-alive ping or comment is not one)
        self.last_byte_ns = record.sent_ns
        self.abandon_ns = self.abandon_tokens = None  # --cancel-rate: when this user gives up, if it does
        fraction = getattr(settings, "cancel_fraction", 0.0)  # (settings without it: nobody gives up)
        if fraction and random.Random(f"{settings.cancel_seed}:{record.request_id}").random() < fraction:
            if settings.cancel_after_s is not None:
                self.abandon_ns = record.sent_ns + int(settings.cancel_after_s * 1e9)
            self.abandon_tokens = settings.cancel_after_tokens

    # -- the ways a body ends without its end event --
    def stalled(self, now: int):
        self.record.ended_ns = now
        raise StreamFailure(ErrorKind.TIMEOUT, f"no event for {self.timeout_s:g} s (stream stalled)")

    def malformed(self, exc: BaseException, now: int):
        self.record.ended_ns = now
        raise StreamFailure(ErrorKind.PROTOCOL, one_line(f"malformed chunked body: {exc}"))

    def broken(self, cause: str, now: int):
        self.record.ended_ns = now
        raise StreamFailure(ErrorKind.TRUNCATED, one_line(f"stream broken before its end event: {cause}"))

    def closed(self, now: int) -> None:
        """The body ended (the connection closed, or its length was read) with no end event: a
        proper end only after a soft end with nothing pending (Dify issue #32856), else truncated."""
        self.record.ended_ns = now
        pending = self.decoder.finish()
        if self.soft_end and not pending:
            self._flush_think()
            return
        detail = " (an incomplete event was pending)" if pending else ""
        raise StreamFailure(ErrorKind.TRUNCATED, f"stream closed before its end event{detail}")

    def check_limits(self, now: int) -> None:
        """--request-timeout (the whole request) and --idle-timeout (between data events), and the
        moment a --cancel-rate user gives up."""
        if self.abandon_ns is not None and now >= self.abandon_ns:
            self.record.ended_ns = now
            raise StreamFailure(ErrorKind.ABANDONED, "given up by the user (--cancel-rate, --cancel-after "
                                f"{(self.abandon_ns - self.record.sent_ns) / 1e9:g}s)")
        if self.deadline_ns is not None and now > self.deadline_ns:
            self.record.ended_ns = now
            raise StreamFailure(ErrorKind.TIMEOUT, f"the request ran past --request-timeout "
                                f"{self.request_timeout_s:g} s")
        if self.idle_ns is not None and now - self.progress_ns > self.idle_ns:
            self.record.ended_ns = now
            raise StreamFailure(ErrorKind.TIMEOUT, f"no data event for {self.idle_timeout_s:g} s "
                                "(--idle-timeout; keep-alive pings do not count)")

    def next_limit_ns(self) -> int:
        """The earliest instant at which a limit runs out if no byte comes: the stall timeout, the
        request deadline, the idle limit."""
        at = self.last_byte_ns + int(self.timeout_s * 1e9)
        if self.deadline_ns is not None and self.deadline_ns < at:
            at = self.deadline_ns
        if self.abandon_ns is not None and self.abandon_ns < at:
            at = self.abandon_ns
        if self.idle_ns is not None and self.progress_ns + self.idle_ns < at:
            at = self.progress_ns + self.idle_ns
        return at

    # -- the bytes --
    def feed(self, chunk: bytes, now: int) -> bool:
        """The body's next bytes, read at `now`. True once the end event came (the record's end is
        stamped; the caller drains the body's last bytes)."""
        record = self.record
        self.last_byte_ns = now
        if record.first_byte_ns is None:
            record.first_byte_ns = now
        events = self.decoder.feed(chunk)
        if events:
            self.progress_ns = now
        if self.deadline_ns is not None or self.idle_ns is not None or self.abandon_ns is not None:
            self.check_limits(now)
        parse = self.flavor.parse_event
        times = record.token_times_ns
        answer_parts, reasoning_parts, usage, handles = self.answer_parts, self.reasoning_parts, self.usage, self.handles
        for event in events:
            try:
                info = parse(event)
            except ProtocolError as exc:
                record.ended_ns = now
                raise StreamFailure(ErrorKind.PROTOCOL, one_line(str(exc))) from None
            answer, reasoning = info.answer, info.reasoning
            think = self.think
            if answer and think is not None:  # a leading <think>…</think> in the answer is reasoning
                thought, answer = think.feed(answer)
                reasoning += thought
                if think.settled:  # the rest of the answer is answer: no call per event from here
                    self.think = None
            if answer:
                answer_parts.append(answer)
                if record.first_answer_ns is None:
                    record.first_answer_ns = now
            if reasoning:
                reasoning_parts.append(reasoning)
            if info.answer or info.reasoning:
                times.append(now)
                self.owner.events_received += 1
                if record.first_token_ns is None:
                    record.first_token_ns = now
                if self.abandon_tokens is not None and len(times) >= self.abandon_tokens:
                    record.ended_ns = now
                    raise StreamFailure(ErrorKind.ABANDONED, f"given up by the user after {len(times)} token events "
                                        "(--cancel-rate, --cancel-after)")
            if info.replace is not None:
                answer_parts[:] = [info.replace]
            if info.finish_reason is not None:
                record.finish_reason = info.finish_reason
            if info.completion_tokens is not None:
                usage["completion_tokens"] = info.completion_tokens
            if info.prompt_tokens is not None:
                usage["prompt_tokens"] = info.prompt_tokens
            if info.reasoning_tokens is not None:
                usage["reasoning_tokens"] = info.reasoning_tokens
            if info.task_id and "task_id" not in handles:
                handles["task_id"] = info.task_id
            if info.conversation_id and "conversation_id" not in handles:
                handles["conversation_id"] = info.conversation_id
            if info.server:
                for name, value in info.server.items():
                    if name in SERVER_FIELDS:
                        setattr(record, name, value)
            if info.error is not None:
                record.ended_ns = now
                kind = ErrorKind.RATE_LIMITED if info.error_status == 429 else ErrorKind.STREAM_ERROR
                raise StreamFailure(kind, one_line(info.error or "error event in the stream"))
            if info.paused:
                record.ended_ns = now
                raise StreamFailure(ErrorKind.PAUSED, "workflow paused for human input: the server closed the "
                                    "stream on purpose")
            if info.soft_end:
                self.soft_end = True
            if info.terminal:
                record.ended_ns = now
                if self.flavor.needs_finish_reason and record.finish_reason is None:
                    raise StreamFailure(ErrorKind.TRUNCATED, f"stream cut off: {self.flavor.end_event} came but no "
                                        "chunk carried a finish_reason (llama-cpp-python ends a running stream so "
                                        "when another request arrives, unless started with --interrupt_requests "
                                        "False)")
                # No text at all is a proper, empty answer (ok, 0 tokens, no TTFT): counted apart.
                self._flush_think()
                return True
        return False

    def _flush_think(self) -> None:
        """At the end: text the splitter still held (a lone '<th', an unclosed block's tail)."""
        think = self.think
        if think is None:
            return
        reasoning, answer = think.finish()
        if reasoning:
            self.reasoning_parts.append(reasoning)
        if answer:
            self.answer_parts.append(answer)
            record = self.record
            if record.first_answer_ns is None:  # it arrived with the last text event
                record.first_answer_ns = record.last_token_ns
