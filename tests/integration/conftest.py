"""Shared fixtures: a real mock server on 127.0.0.1 with short delays, and scripted fault servers."""

import pytest

from sse_perf_tool.mock_server import MockConfig, MockServer

from sse_perf_tool.stream_reader import SharedReader

from .fault_server import FaultServer


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


@pytest.fixture
def serve():
    """start(*script, read_request=True) -> a FaultServer playing that script; all are stopped after the test."""
    servers: list[FaultServer] = []

    def start(*script, read_request: bool = True) -> FaultServer:
        server = FaultServer(list(script), read_request=read_request)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Clock:
    """A shared reader's clock for tests: whatever the test set last (`reader.test_clock.now`)."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def reader():
    """A shared stream reader on a scripted clock (`reader.test_clock`), closed after the test."""
    clock = Clock()
    shared = SharedReader(clock, tick_s=0.01)
    shared.test_clock = clock
    yield shared
    shared.close()
