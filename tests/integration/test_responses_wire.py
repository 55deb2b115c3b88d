"""openai-responses end to end over real loopback HTTP: the tester against the mock server's
Responses API, and a run through the CLI."""

from __future__ import annotations

from sse_perf_tool.cli import main
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings
from sse_perf_tool.tokens import TokenCounter


def _tester(mock, **request) -> SSETester:
    return SSETester(get_flavor("openai-responses"), Settings(url=mock.base_url + "/responses", timeout_s=10.0,
                                                              request=RequestSettings(**request)), TokenCounter())


def test_reasoning_then_answer_with_the_usage_of_response_completed(make_mock):
    record = _tester(make_mock(tokens=6, reasoning_tokens=2)).run(1, 1, Query("hello"), None)
    assert record.ok, record.error
    assert record.chunks == 8 and record.first_token_ns < record.first_answer_ns
    assert (record.token_source, record.output_tokens, record.reasoning_tokens) == ("usage", 8, 2)
    assert record.finish_reason == "completed"


def test_max_output_tokens_ends_with_response_incomplete_as_a_proper_end(make_mock):
    record = _tester(make_mock(tokens=40), max_tokens=16).run(1, 1, Query("hello"), None)
    assert record.ok and record.finish_reason == "max_output_tokens" and record.output_tokens == 16


def test_a_failed_response_and_a_server_error_fail_the_request(make_mock):
    failed = _tester(make_mock(stream_error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert failed.error_kind is ErrorKind.STREAM_ERROR and failed.error.startswith("server_error: ")
    status = _tester(make_mock(error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert status.http_status == 500 and "Simulated server error" in status.error


def test_a_demo_run_of_openai_responses(tmp_path, capsys):
    assert main(["--demo", "--api", "openai-responses", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=8", "--requests", "4",
                 "--threads", "2", "--output-dir", str(tmp_path), "--no-history"]) == 0
    assert "finish reasons: completed=4" in capsys.readouterr().out
