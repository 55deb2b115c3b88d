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


@pytest.fixture
def cli(capsys):
    """main([...]) -> (exit code, stdout, stderr); argparse's SystemExit becomes a code too."""
    from sse_perf_tool.cli import main

    def run(args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # pragma: no cover - main() already turns these into returns
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
