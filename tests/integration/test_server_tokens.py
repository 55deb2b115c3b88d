"""server_tokens: finding the target's tokenizer endpoint and counting answers there, off the timing
path. Real HTTP on loopback against the mock in each server's shape (mock_tokenizer.py names the
sources: vLLM's tokenize protocol, llama.cpp's server README, llama-cpp-python's app.py)."""

import threading

import pytest

from sse_perf_tool.mock_server import MockConfig, MockServer
from sse_perf_tool.records import RequestRecord
from sse_perf_tool.server_tokens import CountingStage, TokenizeUnavailable, detect_server_tokenizer
from sse_perf_tool.tokens import TokenCounter

FAST = dict(ttft_ms=1, itl_ms=0, tokens=4)


@pytest.mark.parametrize("kind,server", [("vllm", "vLLM / SGLang"), ("llama.cpp", "llama.cpp"),
                                         ("llama-cpp-python", "llama-cpp-python")])
def test_each_servers_endpoint_is_found_and_counts_with_the_servers_tokenizer(kind, server):
    """The probe picks the shape the server answers; counts are the server's (the mock counts a
    character that is not one of its words as one token: 'xyz qqq' is 7, tiktoken says 3)."""
    with MockServer(MockConfig(tokenize=kind, **FAST)) as mock:
        tokenizer = detect_server_tokenizer(mock.base_url, "m", {})
        try:
            assert tokenizer.shape.server == server
            assert tokenizer.count("xyz qqq") == 7
            assert TokenCounter().count("xyz qqq")[0] == 3
            assert tokenizer.count("") == 0
            assert tokenizer.offset == 0
        finally:
            tokenizer.close()


def test_a_server_without_a_tokenizer_is_one_clear_error_naming_what_was_tried():
    with MockServer(MockConfig(tokenize="none", **FAST)) as mock:
        with pytest.raises(TokenizeUnavailable) as info:
            detect_server_tokenizer(mock.base_url, None, {})
    message = str(info.value)
    assert "\n" not in message and "no tokenizer endpoint" in message
    assert "/tokenize" in message and "/extras/tokenize" in message and "hf:" in message


def test_a_protected_llama_cpp_python_endpoint_gets_the_runs_key():
    with MockServer(MockConfig(tokenize="llama-cpp-python", api_key="sekret", **FAST)) as mock:
        with pytest.raises(TokenizeUnavailable):
            detect_server_tokenizer(mock.base_url, None, {})
        tokenizer = detect_server_tokenizer(mock.base_url, None, {"Authorization": "Bearer sekret"})
        assert tokenizer.count("xyz") == 3
        tokenizer.close()


def _pending(request_id, answer, reasoning=""):
    record = RequestRecord(request_id, 1, "q", None, 0.0, 0)
    record.ok = True
    record.pending_text = (answer, reasoning)
    return record


def test_the_stage_counts_pending_answers_keeps_the_order_and_passes_the_rest_through():
    with MockServer(MockConfig(tokenize="vllm", **FAST)) as mock:
        seen, done = [], threading.Event()

        def sink(record):
            seen.append(record)
            if len(seen) == 3:
                done.set()

        stage = CountingStage(detect_server_tokenizer(mock.base_url, None, {}), TokenCounter(), sink)
        stage.start()
        counted = RequestRecord(2, 1, "q", None, 0.0, 0)
        counted.ok, counted.output_tokens, counted.token_source = True, 5, "usage"
        stage.submit(_pending(1, "xyz", reasoning="ab"))
        stage.submit(counted)
        stage.submit(_pending(3, "Hello world"))  # two of the mock's words
        assert done.wait(5)
        stage.close()
    assert [r.request_id for r in seen] == [1, 2, 3]
    assert (seen[0].output_tokens, seen[0].reasoning_tokens, seen[0].token_source) == (5, 2, "server")
    assert seen[0].pending_text is None
    assert (seen[1].output_tokens, seen[1].token_source) == (5, "usage")
    assert seen[2].output_tokens == 2 and stage.counted == 2 and stage.fell_back == 0


def test_when_the_server_stops_counting_the_stage_falls_back_and_says_why():
    """Failed calls count that answer with tiktoken (token_source tokenizer); after three in a row the
    server is not asked again, and the reason is kept for the summary."""
    mock = MockServer(MockConfig(tokenize="vllm", **FAST)).start()
    seen = []
    stage = CountingStage(detect_server_tokenizer(mock.base_url, None, {}), TokenCounter(), seen.append)
    mock.stop()
    stage.start()
    for n in range(5):
        stage.submit(_pending(n, "Hello world"))
    stage.close(timeout=30)
    assert len(seen) == 5
    assert all(r.token_source == "tokenizer" and r.output_tokens == 2 for r in seen)
    assert stage.fell_back == 5 and stage.counted == 0
    assert "failed 3 times in a row" in stage.failure
