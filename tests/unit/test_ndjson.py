"""NDJSON framing (sse_perf_tool/ndjson.py): one event per non-empty line, as the bytes arrive."""

from __future__ import annotations

from sse_perf_tool.ndjson import NDJSONDecoder


def test_lines_split_across_reads_become_one_event_each():
    decoder = NDJSONDecoder()
    first = decoder.feed(b'{"a": 1}\n{"b"')
    assert [e.data for e in first] == ['{"a": 1}']
    assert decoder.feed(b': 2}') == []
    assert [e.data for e in decoder.feed(b'\r\n\n\n{"c": 3}\n')] == ['{"b": 2}', '{"c": 3}']
    assert {e.event for e in first} == {"message"}
    assert decoder.finish() is False


def test_a_character_split_between_reads_waits_for_its_bytes():
    decoder = NDJSONDecoder()
    text = '{"message": {"content": "你好"}}\n'.encode()
    cut = text.index("你".encode()) + 1
    assert decoder.feed(text[:cut]) == []
    (event,) = decoder.feed(text[cut:])
    assert event.data == '{"message": {"content": "你好"}}'


def test_an_unterminated_last_line_is_reported_pending_and_dropped():
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"done": true}') == []
    assert decoder.finish() is True
    assert decoder.finish() is False, "dropped: a second finish has nothing pending"
