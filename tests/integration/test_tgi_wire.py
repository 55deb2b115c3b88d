"""tgi-generate end to end over real loopback HTTP: the tester against the mock server's
/generate_stream, and a run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from sse_perf_tool.cli import main
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query, RequestSettings
from sse_perf_tool.mock_wire import token_text
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings
from sse_perf_tool.tokens import TokenCounter


def _tester(mock, **request) -> SSETester:
    return SSETester(get_flavor("tgi-generate"), Settings(url=mock.base_url + "/generate_stream", timeout_s=10.0,
                                                          request=RequestSettings(**request)), TokenCounter())


def test_tokens_stream_and_the_end_of_sequence_token_is_no_answer(make_mock):
    record = _tester(make_mock(tokens=6)).run(1, 1, Query("hello"), None)
    assert record.ok, record.error
    assert record.chunks == 6 and record.finish_reason == "eos_token"
    assert record.token_source == "usage" and record.output_tokens == 7  # TGI's generated_tokens count </s>
    assert record.output_chars == len("".join(token_text(i) for i in range(6)))  # no "</s>" in the answer


def test_max_new_tokens_ends_the_stream_on_its_last_token_with_length(make_mock):
    record = _tester(make_mock(tokens=10), max_tokens=4).run(1, 1, Query("hello"), None)
    assert record.ok and record.chunks == 4 and record.finish_reason == "length" and record.output_tokens == 4


def test_server_errors_and_errors_in_the_stream_fail_with_tgis_words(make_mock):
    status = _tester(make_mock(error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert status.http_status == 500 and status.error.startswith("HTTP 500: generation: ")
    stream = _tester(make_mock(stream_error_rate=1.0)).run(1, 1, Query("hi"), None)
    assert stream.error_kind is ErrorKind.STREAM_ERROR and "generation: " in stream.error


def test_a_demo_run_of_tgi_generate_writes_its_folder(tmp_path, capsys):
    code = main(["--demo", "--api", "tgi-generate", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=8", "--requests", "4",
                 "--threads", "2", "--output-dir", str(tmp_path), "--no-history"])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("run folder: ")))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"]["ok"] == 4 and summary["finish_reasons"] == {"eos_token": 4}
