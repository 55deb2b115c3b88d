"""SSE framing per the WHATWG spec: table-driven, every fixture fed whole, split in two at
every byte offset, and byte by byte; all three must give the same, hand-written events."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sse_perf_tool.sse import SSEDecoder, SSEEvent

BOM = b"\xef\xbb\xbf"


def ev(data: str, event: str = "message", id: str | None = None, retry: int | None = None) -> SSEEvent:
    return SSEEvent(event=event, data=data, id=id, retry=retry)


@dataclass
class Case:
    rule: str
    stream: bytes
    events: list[SSEEvent]
    truncated: bool = False  # what finish() must return
    comments: int | None = None  # expected comment count, when the case is about comments
    extra: dict = field(default_factory=dict)


# --- realistic streams, copied from WIRE_FORMATS.md -------------------------------------

DIFY_MESSAGE = (
    '{"event":"message","conversation_id":"45701982-8118-4bc5-8e9b-64562b4555f2",'
    '"message_id":"5ad4cb98-f0c7-4085-b384-88c403be6290","created_at":1705398420,'
    '"task_id":"900bbd43-dc0b-4383-a372-aa6e6c414227","id":"5ad4cb98-f0c7-4085-b384-88c403be6290","answer":" I"}'
)
DIFY_AGENT = (
    '{"event": "agent_message", "task_id": "task123", "message_id": "msg123", '
    '"conversation_id": "conv123", "answer": "Here is the image: ", "created_at": 1705395333}'
)
DIFY_REASONING = (
    '{"event": "reasoning_chunk", "task_id": "t", "message_id": "m", "conversation_id": "c", '
    '"created_at": 1705395333, "data": {"message_id": "m", "reasoning": "The user greeted me, so", '
    '"node_id": "n1", "is_final": false}}'
)
DIFY_END = (
    '{"event": "message_end", "task_id": "900bbd43-dc0b-4383-a372-aa6e6c414227", '
    '"id": "5e52ce04-874b-4d27-9045-b3bc80def685", "message_id": "5ad4cb98-f0c7-4085-b384-88c403be6290", '
    '"metadata": {"usage": {"prompt_tokens": 1033, "completion_tokens": 135, "total_tokens": 1168, '
    '"currency": "USD", "latency": 1.381760165997548}}}'
)
DIFY_STREAM = (
    b"event: ping\n\n"
    + b"data: " + DIFY_MESSAGE.encode() + b"\n\n"
    + b"event: ping\n\n"
    + b"data: " + DIFY_AGENT.encode() + b"\n\n"
    + b"data: " + DIFY_REASONING.encode() + b"\n\n"
    + b"data: " + DIFY_END.encode() + b"\n\n"
)

OPENAI_CHUNKS = [
    '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}',
    '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m",'
    '"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}',
    '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m",'
    '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}',
    '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"m",'
    '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,'
    '"completion_tokens_details":{"reasoning_tokens":0}}}',
    "[DONE]",
]
OPENAI_STREAM = b"".join(b"data: " + c.encode() + b"\n\n" for c in OPENAI_CHUNKS)


CASES = [
    # line endings
    Case("LF ends lines", b"data: a\n\ndata: b\n\n", [ev("a"), ev("b")]),
    Case("CRLF ends lines", b"data: a\r\n\r\ndata: b\r\n\r\n", [ev("a"), ev("b")]),
    Case("lone CR ends lines", b"data: a\r\rdata: b\r\r", [ev("a"), ev("b")]),
    Case(
        "CRLF, LF and CR mix freely in one event",
        b"data: a\r\ndata: b\rdata: c\n\r\n",
        [ev("a\nb\nc")],
    ),
    Case("LF then CR is two line ends, not one", b"data: a\n\rdata: b\n\n", [ev("a"), ev("b")]),
    Case("CR CR LF: the CR LF pair is one blank line", b"data: a\r\r\ndata: b\r\n\r\n", [ev("a"), ev("b")]),
    Case("CR CR CR: two blank lines, the second dispatches nothing", b"data: a\r\r\rdata: b\r\r", [ev("a"), ev("b")]),
    # comments
    Case("':' alone is a comment (axum/TGI keep-alive)", b":\ndata: a\n\n", [ev("a")], comments=1),
    Case(
        "': keep-alive' is a comment (DeepSeek), also between data lines",
        b": keep-alive\ndata: a\n: keep-alive\ndata: b\n\n:\n\n",
        [ev("a\nb")],
        comments=3,
    ),
    Case("a comment-only block dispatches nothing", b": hi\n\n", [], comments=1),
    # field value spacing
    Case("data:x equals data: x (TGI sends no space)", b"data:x\n\ndata: x\n\n", [ev("x"), ev("x")]),
    Case("only ONE leading space is removed", b"data:  x\n\n", [ev(" x")]),
    Case("a tab after the colon is kept", b"data:\tx\n\n", [ev("\tx")]),
    Case("trailing spaces are kept", b"data: x  \n\n", [ev("x  ")]),
    Case("a colon inside the value is data", b"data: a: b:c\n\n", [ev("a: b:c")]),
    # data lines
    Case("several data lines join with LF", b"data: a\ndata: b\ndata: c\n\n", [ev("a\nb\nc")]),
    Case("an empty data line still makes an event with empty data", b"data:\n\n", [ev("")]),
    Case("empty data lines contribute LF", b"data:\ndata:\n\n", [ev("\n")]),
    Case("data: [DONE] is just data", b"data: [DONE]\n\n", [ev("[DONE]")]),
    Case("data:[DONE] without space (TGI) is the same", b"data:[DONE]\n\n", [ev("[DONE]")]),
    # event field
    Case(
        "event: sets the type (OpenAI/TGI `event: error`) and resets after dispatch",
        b'event: error\ndata: {"error":"boom"}\n\ndata: b\n\n',
        [ev('{"error":"boom"}', event="error"), ev("b")],
    ),
    Case("event: ping with no data dispatches nothing (Dify keep-alive)", b"event: ping\n\n", []),
    Case(
        "the type of an event with no data is reset at the blank line",
        b"event: ping\n\ndata: x\n\n",
        [ev("x")],
    ),
    Case("an empty event: field means 'message'", b"event:\ndata: x\n\n", [ev("x")]),
    Case("the last event: line of a block wins", b"event: a\nevent: b\ndata: x\n\n", [ev("x", event="b")]),
    # BOM
    Case("one leading BOM is stripped", BOM + b"data: x\n\n", [ev("x")]),
    Case("a BOM alone is not a pending event", BOM, []),
    Case(
        "only ONE BOM is stripped: a second one makes the field name unknown",
        BOM + BOM + b"data: x\n\ndata: y\n\n",
        [ev("y")],
    ),
    Case("a BOM inside data is data", b"data: \xef\xbb\xbfx\n\n", [ev("\ufeffx")]),
    Case(
        "a BOM at the start of a later line is not stripped",
        b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n",
        [ev("a"), ev("c")],
    ),
    Case(
        "a BOM prefix that is not a BOM is invalid UTF-8, not dropped",
        b"\xef\xbbdata: x\n\ndata: y\n\n",
        [ev("y")],
    ),
    # UTF-8
    Case("Chinese text survives every split", "data: 你好，世界\n\n".encode(), [ev("你好，世界")]),
    Case("emoji (4-byte UTF-8) survive every split", "data: 👋🏽🚀\n\n".encode(), [ev("👋🏽🚀")]),
    Case(
        "UTF-8 is used whatever the Content-Type: é is not Latin-1 'Ã©'",
        "event: ünïcode\ndata: café\n\n".encode(),
        [ev("café", event="ünïcode")],
    ),
    Case("an invalid byte becomes U+FFFD", b"data: a\xffb\n\n", [ev("a\ufffdb")]),
    Case(
        "a truncated sequence before the line end is one U+FFFD (maximal subpart)",
        b"data: \xe4\xb8\ndata: z\n\n",
        [ev("\ufffd\nz")],
    ),
    Case("an overlong encoding is two U+FFFD", b"data: \xc0\xaf\n\n", [ev("\ufffd\ufffd")]),
    Case("an encoded surrogate is three U+FFFD", b"data: \xed\xa0\x80\n\n", [ev("\ufffd\ufffd\ufffd")]),
    Case(
        "U+2028, U+0085, \\x0b, \\x0c, \\x1c, \\x1d, \\x1e do not end lines",
        "data: a\u2028b\u0085c\x0bd\x0ce\x1cf\x1dg\x1eh\n\n".encode(),
        [ev("a\u2028b\u0085c\x0bd\x0ce\x1cf\x1dg\x1eh")],
    ),
    Case("U+2029 does not end lines", "data: a\u2029b\n\n".encode(), [ev("a\u2029b")]),
    # retry
    Case("retry: with ASCII digits sets the reconnection time", b"retry: 3000\ndata: x\n\n", [ev("x", retry=3000)]),
    Case("retry: with a non-digit is ignored", b"retry: 3s\ndata: x\n\n", [ev("x")]),
    Case("retry: with a sign is ignored", b"retry: -5\ndata: x\n\n", [ev("x")]),
    Case("retry: empty is ignored", b"retry:\ndata: x\n\n", [ev("x")]),
    Case("retry: with non-ASCII digits is ignored", "retry: \u0663\ndata: x\n\n".encode(), [ev("x")]),
    Case(
        "retry is a stream setting: it persists and a later valid one replaces it",
        b"retry: 10\ndata: a\n\ndata: b\n\nretry: x\nretry: 20\ndata: c\n\n",
        [ev("a", retry=10), ev("b", retry=10), ev("c", retry=20)],
    ),
    # id
    Case("id: sets the event id", b"id: 7\ndata: x\n\n", [ev("x", id="7")]),
    Case(
        "the last event id persists across events until changed",
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
        [ev("a", id="1"), ev("b", id="1"), ev("c", id="2")],
    ),
    Case(
        "an id containing NUL is ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
    ),
    Case("an empty id: resets the id to empty", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [ev("a", id="1"), ev("b", id="")]),
    # field names
    Case("a line without a colon is a field with an empty value", b"data\n\n", [ev("")]),
    Case("two bare `data` lines give one LF", b"data\ndata\n\n", [ev("\n")]),
    Case("a bare `event` line resets the type to message", b"event\ndata: x\n\n", [ev("x")]),
    Case("unknown fields are ignored", b"foo: bar\ndata: x\nbaz\n\n", [ev("x")]),
    Case("field names are case-sensitive", b"Data: x\nDATA: y\ndata: z\n\n", [ev("z")]),
    Case("a block of only unknown fields dispatches nothing", b"foo: bar\n\n", []),
    Case("leading spaces make a different field name", b" data: x\n\n", []),
    # realistic
    Case(
        "Dify stream: data-only JSON events, `event: ping` keep-alives dispatch nothing",
        DIFY_STREAM,
        [ev(DIFY_MESSAGE), ev(DIFY_AGENT), ev(DIFY_REASONING), ev(DIFY_END)],
    ),
    Case("OpenAI stream with usage chunk and [DONE]", OPENAI_STREAM, [ev(c) for c in OPENAI_CHUNKS]),
    Case(
        "OpenAI stream with CRLF framing and keep-alive comments",
        b": keep-alive\r\n\r\n" + OPENAI_STREAM.replace(b"\n", b"\r\n"),
        [ev(c) for c in OPENAI_CHUNKS],
        comments=1,
    ),
    # EOF
    Case("clean EOF: nothing pending", b"data: a\n\n", [ev("a")], truncated=False),
    Case("empty stream: nothing pending", b"", [], truncated=False),
    Case("EOF after a CR-terminated blank line: nothing pending", b"data: a\r\r", [ev("a")], truncated=False),
    Case("EOF with buffered data and no blank line: discarded, truncated", b"data: a\n\ndata: b\n", [ev("a")], truncated=True),
    Case("EOF inside a data line: discarded, truncated", b"data: a\n\ndata: b", [ev("a")], truncated=True),
    Case("EOF inside an unterminated comment line counts as pending", b": keep", [], truncated=True, comments=0),
    Case("EOF inside a partial BOM counts as pending", b"\xef\xbb", [], truncated=True),
    Case("EOF after only an event: line (no data) is not pending", b"event: ping\n", [], truncated=False),
]


def feed_all(chunks: list[bytes]) -> tuple[list[SSEEvent], bool, int]:
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(d.feed(c))
    return out, d.finish(), d.comments


def check(case: Case, chunks: list[bytes], how: str) -> None:
    events, truncated, comments = feed_all(chunks)
    assert events == case.events, how
    assert truncated is case.truncated, how
    if case.comments is not None:
        assert comments == case.comments, how


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_fixture_whole_split_and_bytewise(case: Case) -> None:
    """Same events however the bytes are cut into reads: whole, two reads at every offset, one byte per read."""
    s = case.stream
    check(case, [s], "whole")
    for i in range(len(s) + 1):
        check(case, [s[:i], s[i:]], f"split at {i}")
    check(case, [s[i : i + 1] for i in range(len(s))], "byte by byte")


def test_cr_at_end_of_read_dispatches_at_once() -> None:
    """A CR ending a read ends the line immediately; the event is not held back for more bytes."""
    d = SSEDecoder()
    assert d.feed(b"data: x\r\r") == [ev("x")]
    # the LF opening the next read pairs with that last CR: it is not a second blank line
    assert d.feed(b"\ndata: y\r") == []
    assert d.feed(b"\r") == [ev("y")]
    assert d.finish() is False


def test_lf_after_cr_in_next_read_is_dropped_only_once() -> None:
    """Only the one LF that completes a CRLF split across reads is dropped; a further LF is a blank line."""
    d = SSEDecoder()
    assert d.feed(b"data: x\r") == []
    assert d.feed(b"\n") == []  # completes CRLF: still one line ending
    assert d.feed(b"\n") == [ev("x")]  # this LF is a blank line


def test_each_event_emitted_by_the_read_that_completes_it() -> None:
    """Byte by byte, an event comes out of the very feed() that delivers the line ending of its
    blank line (for CRLF that is the CR; the LF is not waited for): never later."""
    stream = b"data: a\r\rdata: b\n\ndata: c\r\n\r\n"
    # offsets: first \r\r at 7-8, \n\n at 16-17, final \r\n\r\n at 25-28
    d = SSEDecoder()
    emitted_at = [i for i in range(len(stream)) if d.feed(stream[i : i + 1])]
    assert emitted_at == [8, 17, 27]


def test_bom_stripped_only_at_stream_start_across_reads() -> None:
    """A BOM whose 3 bytes arrive in 3 reads is still stripped; a later BOM is data."""
    d = SSEDecoder()
    assert d.feed(b"\xef") == []
    assert d.feed(b"\xbb") == []
    assert d.feed(b"\xbf") == []
    assert d.feed(b"data: \xef\xbb\xbfx\n\n") == [ev("\ufeffx")]


def test_large_event_in_64k_reads_is_intact() -> None:
    """A 2 MB event (multi-line, multibyte characters cut by the 64 KiB read boundaries) comes out intact."""
    line = "数据 data ✓ " * 2000  # ~30 KB per line, 3-byte characters straddle read boundaries
    lines = [f"{i}:{line}" for i in range(70)]
    stream = b"".join(b"data: " + x.encode() + b"\n" for x in lines) + b"\n"
    assert len(stream) > 2_000_000
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks[:-1]:
        out.extend(d.feed(c))
    assert out == []  # not complete until the blank line arrives
    out.extend(d.feed(chunks[-1]))
    assert out == [ev("\n".join(lines))]
    assert d.finish() is False


def test_single_huge_line_in_64k_reads_is_intact() -> None:
    """A 5 MB single data line (no line break until the end) is buffered as bytes and decoded once."""
    payload = "é" * 2_500_000
    stream = b"data:" + payload.encode() + b"\r\n\r\n"
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for i in range(0, len(stream), 65536):
        out.extend(d.feed(stream[i : i + 65536]))
    assert len(out) == 1 and out[0].data == payload


def test_comments_counted_across_reads() -> None:
    """Every comment line counts once, however it is cut."""
    d = SSEDecoder()
    d.feed(b":")
    d.feed(b"\n: keep")
    d.feed(b"-alive\r")
    d.feed(b"\n:\r")
    assert d.comments == 3


def test_feed_accepts_bytearray_and_memoryview() -> None:
    """Any bytes-like read is accepted (some transports hand out bytearray or memoryview)."""
    d = SSEDecoder()
    assert d.feed(bytearray(b"data: a\n")) + d.feed(memoryview(b"\n")) == [ev("a")]


def test_finish_discards_pending_event() -> None:
    """A pending event is not dispatched at EOF, finish() reports it, and the decoder is reset."""
    d = SSEDecoder()
    assert d.feed(b"event: error\ndata: partial\n") == []
    assert d.finish() is True
    assert d.finish() is False  # nothing left after the first finish()
