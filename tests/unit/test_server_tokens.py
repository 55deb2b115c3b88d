"""server_tokens without a server: where the tokenizer endpoint is looked for. Counting over
loopback against the mock: tests/integration/test_server_tokens.py."""



from sse_perf_tool.server_tokens import server_root


def test_server_root_drops_the_v1_suffix_only():
    assert server_root("http://gpu1:8000/v1") == "http://gpu1:8000"
    assert server_root("http://gpu1:8000/v1/") == "http://gpu1:8000"
    assert server_root("https://gw.example/openai/v1") == "https://gw.example/openai"
    assert server_root("http://gpu1:8000") == "http://gpu1:8000"
