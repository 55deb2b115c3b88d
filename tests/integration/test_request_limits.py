"""--request-timeout bounds a whole request (an endless stream, a stream of keep-alives), and
--idle-timeout fails one whose only traffic is keep-alive pings; neither touches a stream that
goes on well. Over loopback, with Dify's `event: ping` keep-alive (the project's wire notes)."""

from __future__ import annotations

import json
import time

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .fault_server import LAST_CHUNK, FaultServer, Hang, Send, Sleep, chunk, head

PING = chunk(b"event: ping\n\n")


def message(text: str) -> bytes:
    return chunk(b"data: " + json.dumps({"event": "message", "answer": text}).encode() + b"\n\n")


END = chunk(b'data: {"event":"message_end","metadata":{"usage":{"completion_tokens":3}}}\n\n')


class Words:
    def count(self, text):
        return len(text.split()), "tokenizer"


def run(script, **limits):
    with FaultServer(script) as server:
        tester = SSETester(get_flavor("dify-chat"), Settings(url=server.url("/v1/chat-messages"), timeout_s=5.0,
                                                             **limits), Words())
        try:
            return tester.run(1, 1, Query("hi"), "app-key")
        finally:
            tester.close()


def pings(n: int, every_s: float = 0.1) -> list:
    return [step for _ in range(n) for step in (Send(PING), Sleep(every_s))]


def test_a_request_longer_than_its_limit_fails_as_timeout_though_data_keeps_coming():
    script = [Send(head(chunked=True))] + [s for i in range(20) for s in (Send(message(f"w{i} ")), Sleep(0.1))]
    record = run(script + [Send(END), Send(LAST_CHUNK), Hang(1)], request_timeout_s=0.5)
    assert not record.ok and record.error_kind is ErrorKind.TIMEOUT and "--request-timeout 0.5 s" in record.error
    assert 3 <= record.chunks < 20


def test_keep_alive_pings_are_not_progress_for_the_idle_timeout():
    script = [Send(head(chunked=True)), Send(message("hello "))] + pings(7) + [Send(END), Send(LAST_CHUNK), Hang(1)]
    record = run(script, idle_timeout_s=0.35)
    assert not record.ok and record.error_kind is ErrorKind.TIMEOUT and "pings do not count" in record.error
    plain = run(script)  # without it, the pings keep the request alive under --timeout (5 s here)
    assert plain.ok and plain.output_tokens == 3


def test_a_stream_within_both_limits_is_untouched():
    script = [Send(head(chunked=True)), Send(message("one ")), Sleep(0.05), Send(message("two")), Send(END),
              Send(LAST_CHUNK), Hang(1)]
    assert run(script, request_timeout_s=5.0, idle_timeout_s=2.0).ok


@pytest.mark.parametrize("reader", ["shared", "thread"])
@pytest.mark.parametrize("limit", ["request_timeout_s", "idle_timeout_s"])
def test_a_silent_stream_ends_at_its_limit_not_at_the_read_timeout(monkeypatch, reader, limit):
    """No byte at all after the head: the limit ends it, not --timeout (5 s here), on either read
    path (the tester's own thread waited out --timeout before it looked at the limits)."""
    if reader == "thread":
        monkeypatch.setenv("SSE_PERF_READER", "thread")
    started = time.monotonic()
    record = run([Send(head(chunked=True)), Hang(3)], **{limit: 0.4})
    assert not record.ok and record.error_kind is ErrorKind.TIMEOUT
    assert ("--request-timeout 0.4 s" if limit == "request_timeout_s" else "--idle-timeout") in record.error
    assert record.ended_ns - record.sent_ns < 2.5e9 and time.monotonic() - started < 3.0
