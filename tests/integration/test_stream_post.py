"""The testers' streaming POST (http_session.StreamPoster) over real loopback HTTP: it goes
through the session's proxy as requests would send it (absolute-form request line, the proxy's
credentials), it sends back the cookies a server set, and a test's own session is used as given."""

from __future__ import annotations

import base64

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.http_session import StreamPoster, new_session
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .fault_server import LAST_CHUNK, Close, FaultServer, Send, chunk, head
from sse_builders import OA_DONE, OA_FINISH, oa_delta
from word_counter import WordCounter

BODY = chunk(oa_delta(content="Hello") + OA_FINISH + OA_DONE) + LAST_CHUNK


def _run(url: str, requests: int = 1):
    tester = SSETester(get_flavor("openai-chat"), Settings(url=url, timeout_s=5.0), WordCounter())
    try:
        return [tester.run(i, 1, Query("q"), "app-key") for i in range(1, requests + 1)]
    finally:
        tester.close()


def test_a_remote_target_goes_through_the_proxy_with_its_credentials(monkeypatch):
    with FaultServer([Send(head(chunked=True) + BODY), Close()]) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://squid:s3cret@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        (record,) = _run("http://llm.internal.test:8000/v1/chat/completions")
    assert record.ok, record.error
    (received,) = proxy.requests
    assert received.request_line == "POST http://llm.internal.test:8000/v1/chat/completions HTTP/1.1"
    assert received.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"squid:s3cret").decode()
    assert received.headers["authorization"] == "Bearer app-key"
    assert received.headers["content-length"] == str(len(received.body)) and b'"stream": true' in received.body


def test_a_cookie_the_server_sets_is_sent_back_on_the_next_request():
    response = head(chunked=True, extra=("Set-Cookie: route=node-7; Path=/; HttpOnly", "Connection: close")) + BODY
    with FaultServer([Send(response), Close()]) as server:
        records = _run(server.url(), requests=2)
    assert [r.ok for r in records] == [True, True], [r.error for r in records]
    first, second = server.requests
    assert "cookie" not in first.headers and second.headers["cookie"] == "route=node-7"
    assert server.connections == 2, "Connection: close: the next request opens a new connection"


def test_a_cookie_set_with_max_age_0_is_dropped():
    poster = StreamPoster(new_session())
    poster._keep_cookies(["route=node-7; Path=/", "lang=zh"])
    poster._keep_cookies(["route=; Max-Age=0", "not-a-cookie"])
    assert poster.cookies == {"lang": "zh"}


def test_a_session_of_a_tests_own_is_used_as_given():
    class FakeSession:
        def post(self, *args, **kwargs):
            raise AssertionError("called")  # the tester turns this into an `internal` record

        def close(self):
            pass

    tester = SSETester(get_flavor("openai-chat"), Settings(url="http://127.0.0.1:9/v1/chat/completions"),
                       WordCounter(), session=FakeSession())
    record = tester.run(1, 1, Query("q"), None)
    assert record.error_kind.value == "internal" and "AssertionError: called" in record.error


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/v1/chat/completions",
                                    "http://localhost:{port}/v1/chat/completions"])
def test_a_loopback_target_bypasses_a_dead_proxy(monkeypatch, target):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with FaultServer([Send(head(chunked=True) + BODY), Close()]) as server:
        (record,) = _run(target.format(port=server.port))
    assert record.ok, record.error
