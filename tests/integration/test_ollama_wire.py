"""ollama-chat and ollama-generate end to end over real loopback HTTP: the tester reads the mock
server's NDJSON lines (its shared reader and the tester's own thread alike), and a run through the CLI."""

from __future__ import annotations

import pytest

from sse_perf_tool.cli import main
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings
from sse_perf_tool.tokens import TokenCounter


def _tester(mock, name, **request) -> SSETester:
    flavor = get_flavor(name)
    return SSETester(flavor, Settings(url=mock.base_url + flavor.path, timeout_s=10.0,
                                      request=RequestSettings(model="llama3.2", **request)), TokenCounter())


@pytest.mark.parametrize("name", ["ollama-chat", "ollama-generate"])
def test_lines_are_read_with_the_servers_counts_and_timings(make_mock, name):
    record = _tester(make_mock(tokens=6, reasoning_tokens=2), name).run(1, 1, Query("hello"), None)
    assert record.ok, record.error
    assert record.chunks == 8 and record.first_token_ns < record.first_answer_ns  # thinking, then the answer
    assert (record.token_source, record.output_tokens, record.finish_reason) == ("usage", 8, "stop")
    assert record.server_latency_ms is not None and record.server_ttft_ms is not None
    assert 0 < record.server_ttft_ms <= record.server_latency_ms


@pytest.mark.parametrize("name", ["ollama-chat", "ollama-generate"])
def test_num_predict_cuts_with_length_and_errors_fail_the_request(make_mock, name):
    cut = _tester(make_mock(tokens=20), name, max_tokens=5).run(1, 1, Query("hello"), None)
    assert cut.ok and cut.finish_reason == "length" and cut.output_tokens == 5
    line = _tester(make_mock(stream_error_rate=1.0), name).run(1, 1, Query("hi"), None)
    assert line.error_kind is ErrorKind.STREAM_ERROR
    status = _tester(make_mock(error_rate=1.0), name).run(1, 1, Query("hi"), None)
    assert status.http_status == 500 and "Simulated server error" in status.error


def test_a_demo_run_of_ollama_chat(tmp_path, capsys):
    assert main(["--demo", "--api", "ollama-chat", "--model", "llama3.2", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=8",
                 "--requests", "4", "--threads", "2", "--output-dir", str(tmp_path), "--no-history"]) == 0
    out = capsys.readouterr().out
    assert "finish reasons: stop=4" in out and "requests: 4  ok: 4" in out
