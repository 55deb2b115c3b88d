"""--trace: Mooncake-style JSONL (timestamps in ms or timestamp_s, input/output lengths, hash_ids)
and BurstGPT's CSV read as the arrivals to replay; the prompts built from their blocks."""

from __future__ import annotations

import pytest

from sse_perf_tool.config import ConfigError
from sse_perf_tool.synthetic import ENCODING, FromTrace
from sse_perf_tool.tokens import TokenCounter
from sse_perf_tool.trace import TraceEntry, load_trace


def test_mooncake_jsonl_in_milliseconds_is_sorted_and_relative_to_its_first_request(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]}\n'
                    '\n{"timestamp": 27000, "input_length": 10, "output_length": 5}\n')
    first, second = load_trace(str(path))
    assert first == TraceEntry(0.0, 10, 5, ())
    assert second.offset_s == pytest.approx(0.482) and (second.input_length, second.output_length, second.hash_ids) == (
        6955, 52, (46, 47))
    seconds = tmp_path / "s.jsonl"
    seconds.write_text('{"timestamp_s": 3.5, "input_length": 4, "output_length": 2}\n')
    assert load_trace(str(seconds)) == [TraceEntry(0.0, 4, 2, ())]


def test_burstgpt_csv_with_its_columns_and_failed_requests_left_out(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    "5,ChatGPT,472,18,490,Conversation log\n12,GPT-4,1087,0,1087,Conversation log\n"
                    "7.5,ChatGPT,200,40,240,API log\n")
    assert load_trace(str(path)) == [TraceEntry(0.0, 472, 18, ()), TraceEntry(2.5, 200, 40, ())]


@pytest.mark.parametrize("content,needle", [
    ('{"input_length": 4, "output_length": 2}\n', "no timestamp"),
    ('{"timestamp": 1, "input_length": 0, "output_length": 2}\n', "input_length must be"),
    ('{"timestamp": 1, "input_length": 4, "output_length": 2, "hash_ids": "x"}\n', "hash_ids must be"),
    ('not json\n', "line 1: not JSON"),
    ('\n', "no request in it"),
])
def test_a_bad_trace_is_one_line_naming_the_line(tmp_path, content, needle):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_trace(str(path))
    with pytest.raises(ConfigError, match="no such file"):
        load_trace(str(tmp_path / "missing.jsonl"))


def test_prompts_have_their_lengths_and_share_the_blocks_they_name():
    entries = [TraceEntry(0, 600, 7, (1, 2)), TraceEntry(1, 600, 9, (1, 3)), TraceEntry(2, 100, 3, ())]
    trace = FromTrace(entries, seed=1)
    a, b, c = trace.next(), trace.next(), trace.next()
    counter = TokenCounter(ENCODING)
    assert [q.max_tokens for q in (a, b, c)] == [7, 9, 3]
    assert all(abs(counter.count(q.text)[0] - n) <= 3 for q, n in ((a, 600), (b, 600), (c, 100)))
    common = 0
    while common < min(len(a.text), len(b.text)) and a.text[common] == b.text[common]:
        common += 1
    assert abs(counter.count(a.text[:common])[0] - 512) <= 3  # block 1 shared, block 2 vs 3 not
    assert not c.text.startswith(a.text[:50])
    assert trace.asked()["trace"] == {"requests": 3, "input_tokens_mean": pytest.approx(1300 / 3),
                                      "output_tokens_mean": pytest.approx(19 / 3), "span_s": 2}
