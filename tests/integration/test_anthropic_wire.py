"""anthropic-messages end to end over real loopback HTTP: the tester against the mock server's
Messages API (its key in x-api-key, the API version on every request), and a run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from sse_perf_tool.cli import main
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings
from sse_perf_tool.tokens import TokenCounter


def _tester(mock, **settings) -> SSETester:
    return SSETester(get_flavor("anthropic-messages"),
                     Settings(url=mock.base_url + "/messages", timeout_s=10.0, **settings), TokenCounter())


def test_a_stream_with_thinking_is_read_as_reasoning_then_answer_with_the_servers_usage(make_mock):
    mock = make_mock(tokens=6, reasoning_tokens=3)
    record = _tester(mock).run(1, 1, Query("hello"), None)
    assert record.ok, record.error
    assert record.token_source == "usage" and record.output_tokens == 9  # output_tokens counts the thinking too
    assert record.finish_reason == "end_turn" and record.prompt_tokens is not None
    assert record.chunks == 9 and record.first_token_ns < record.first_answer_ns  # thinking came first


def test_the_key_travels_in_x_api_key_and_a_wrong_one_is_refused_with_anthropics_words(make_mock):
    mock = make_mock(api_key="sk-ant-mock")
    assert _tester(mock).run(1, 1, Query("hi"), "sk-ant-mock").ok
    refused = _tester(mock).run(2, 1, Query("hi"), "wrong")
    assert refused.error_kind is ErrorKind.HTTP_STATUS and refused.http_status == 401
    assert "authentication_error: invalid x-api-key" in refused.error


def test_server_errors_and_errors_in_the_stream_fail_the_request_with_their_message(make_mock):
    status = _tester(make_mock(error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert status.http_status == 500 and "api_error" in status.error
    stream = _tester(make_mock(stream_error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert stream.error_kind is ErrorKind.STREAM_ERROR and "overloaded_error" in stream.error


def test_a_demo_run_of_anthropic_messages_writes_its_folder(tmp_path, capsys):
    code = main(["--demo", "--api", "anthropic-messages", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=8",
                 "--requests", "4", "--threads", "2", "--output-dir", str(tmp_path), "--no-history"])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("run folder: ")))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"]["ok"] == 4 and summary["tokens"]["sources"] == {"usage": 4}
    assert summary["run"]["api"] == "anthropic-messages"
