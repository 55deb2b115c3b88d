"""Shared fixtures: a real mock server on 127.0.0.1 with short delays."""

import pytest

from sse_perf_tool.mock_server import MockConfig, MockServer


@pytest.fixture
def mock_server():
    """A fast mock server (5 ms to first token, 1 ms between tokens, 8 tokens)."""
    with MockServer(MockConfig(ttft_ms=5, itl_ms=1, tokens=8)) as server:
        yield server


@pytest.fixture
def make_mock():
    """Factory for mock servers with custom settings; all are stopped after the test."""
    servers = []

    def make(**kwargs):
        kwargs.setdefault("ttft_ms", 5)
        kwargs.setdefault("itl_ms", 1)
        kwargs.setdefault("tokens", 8)
        server = MockServer(MockConfig(**kwargs)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
