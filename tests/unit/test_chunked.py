"""ChunkedBody: chunked transfer coding unframed from reads of any size (RFC 9112 section 7.1)."""

import random

import pytest

from sse_perf_tool.chunked import MAX_LINE, ChunkedBody, ChunkedEncodingError, IncompleteBody


def source(*reads: bytes):
    """A read1 that returns the scripted reads one per call, then b"" (the peer closed)."""
    pending = list(reads)

    def read1(size: int) -> bytes:
        return pending.pop(0) if pending else b""

    read1.pending = pending
    return read1


def frame(*payloads: bytes, ending: bytes = b"0\r\n\r\n") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in payloads) + ending


def read_all(body: ChunkedBody, limit: int = 10_000) -> list[bytes]:
    out = []
    for _ in range(limit):
        data = body.read()
        if not data:
            return out
        out.append(data)
    raise AssertionError("the body never ended")


def test_every_chunk_in_one_read_comes_back_in_one_call():
    """Events that arrived together are returned together: one call, one timestamp for the caller."""
    body = ChunkedBody(source(frame(b"data: a\n\n", b"data: b\n\n", b"data: c\n\n")))
    assert body.read() == b"data: a\n\ndata: b\n\ndata: c\n\n"
    assert body.read() == b"" and body.complete


def test_each_read_returns_only_what_has_arrived():
    """A chunk split across reads is returned piece by piece as it arrives, not held back."""
    read1 = source(b"%x\r\ndata: hel" % len(b"data: hello world\n\n"), b"lo wor", b"ld\n\n\r\n0\r\n\r\n")
    body = ChunkedBody(read1)
    assert body.read() == b"data: hel"
    assert body.read() == b"lo wor"
    assert body.read() == b"ld\n\n"
    assert body.read() == b"" and body.complete


@pytest.mark.parametrize("seed", range(20))
def test_any_split_of_the_bytes_gives_the_same_payload(seed):
    rng = random.Random(seed)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.choice([1, 5, 40, 300]))) for _ in range(rng.randrange(1, 30))]
    wire = frame(*payloads, ending=b"0\r\nX-Trailer: 1\r\n\r\n")
    cuts = sorted(rng.sample(range(1, len(wire)), k=min(len(wire) - 1, rng.randrange(0, 40))))
    reads = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    body = ChunkedBody(source(*reads))
    assert b"".join(read_all(body)) == b"".join(payloads)
    assert body.complete


def test_byte_by_byte():
    wire = frame(b"data: x\n\n", b"data: yz\n\n")
    body = ChunkedBody(source(*[wire[i : i + 1] for i in range(len(wire))]))
    assert b"".join(read_all(body)) == b"data: x\n\ndata: yz\n\n"
    assert body.complete


def test_extensions_trailers_uppercase_hex_and_bare_line_feeds_are_accepted():
    wire = b"A;name=value\r\n0123456789\r\n3\ndef\n0;last\r\nExpires: never\r\nX-Other: y\r\n\r\n"
    body = ChunkedBody(source(wire))
    assert b"".join(read_all(body)) == b"0123456789def"
    assert body.complete


def test_the_body_ends_at_the_empty_line_after_the_last_chunk_without_another_read():
    """No read past the body's end: the next request's bytes (or a hang) are never waited for."""
    read1 = source(frame(b"data: a\n\n"), b"never read")
    body = ChunkedBody(read1)
    assert read_all(body) == [b"data: a\n\n"]
    assert read1.pending == [b"never read"]


def test_bytes_after_the_body_make_it_incomplete():
    """Stray bytes after the last chunk: the connection must not carry another request."""
    body = ChunkedBody(source(frame(b"data: a\n\n") + b"HTTP/1.1 200 OK\r\n"))
    assert read_all(body) == [b"data: a\n\n"]
    assert not body.complete


def test_not_complete_before_the_end():
    body = ChunkedBody(source(b"3\r\nabc\r\n"))
    assert body.read() == b"abc"
    assert not body.complete


@pytest.mark.parametrize("reads, message", [
    ((b"5\r\nab",), "closed inside a chunk"),
    ((b"3\r\nabc\r\n",), "closed before the last chunk"),
    ((b"3\r\nabc\r\n0\r\n",), "closed before the last chunk"),  # the trailer section never ended
])
def test_a_connection_closed_inside_the_body_is_an_incomplete_body(reads, message):
    body = ChunkedBody(source(*reads))
    with pytest.raises(IncompleteBody, match=message):
        read_all(body)
    assert not body.complete


@pytest.mark.parametrize("wire, message", [
    (b"zz\r\nabc\r\n", r"bad chunk size line b'zz\\r'"),
    (b"-3\r\nabc\r\n", "bad chunk size line"),
    (b"\r\nabc\r\n", "bad chunk size line"),
    (b"2\r\nabc\r\n", "longer than its announced size"),
    (b"2\r\nab\rX", "longer than its announced size"),
])
def test_broken_framing_raises_with_what_went_wrong(wire, message):
    body = ChunkedBody(source(wire))
    with pytest.raises(ChunkedEncodingError, match=message):
        read_all(body)
    assert not body.complete


def test_the_payload_before_broken_framing_is_returned_first_then_the_error_stays():
    """Events that arrived before the garbage are still the caller's (it records them), and the
    error is raised on the next read and every read after it."""
    body = ChunkedBody(source(frame(b"data: a\n\n", ending=b"") + b"zz\r\n", b"more"))
    assert body.read() == b"data: a\n\n"
    for _ in range(2):
        with pytest.raises(ChunkedEncodingError, match="bad chunk size"):
            body.read()


def test_a_size_line_without_end_is_refused_after_max_line_bytes():
    body = ChunkedBody(source(*[b"1" * 8192] * (MAX_LINE // 8192 + 2)))
    with pytest.raises(ChunkedEncodingError, match=f"longer than {MAX_LINE} bytes"):
        read_all(body)


def test_a_cr_at_the_end_of_a_read_waits_for_its_line_feed():
    body = ChunkedBody(source(b"3\r\nabc\r", b"\n3\r\ndef\r\n0\r\n\r\n"))
    assert body.read() == b"abc"
    assert body.read() == b"def"
    assert body.read() == b"" and body.complete


def test_a_large_chunk_read_in_pieces_is_not_copied_quadratically():
    """A 4 MiB chunk read 64 KiB at a time: the buffer never holds more than one read."""
    size = 4 * 1024 * 1024
    payload = b"x" * size
    wire = b"%x\r\n" % size + payload + b"\r\n0\r\n\r\n"
    reads = [wire[i : i + 65536] for i in range(0, len(wire), 65536)]
    body = ChunkedBody(source(*reads))
    total = 0
    for piece in read_all(body):
        assert len(piece) <= 65536
        total += len(piece)
    assert total == size and body.complete
