"""The testers' streaming POST (http_session.StreamPoster) over real loopback HTTP: it goes
through the session's proxy as requests would send it (absolute-form request line, the proxy's
credentials), it sends back the cookies a server set, a test's own session is used as given, and the
connection pool is made with the tester (a CA bundle that is not there fails the request as `tls`)."""

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


def test_a_cookie_deleted_by_the_server_is_not_sent_again_and_the_sessions_other_requests_carry_them():
    set_it = head(chunked=True, extra=("Set-Cookie: route=node-7; Path=/", "Connection: close")) + BODY
    drop_it = head(chunked=True, extra=("Set-Cookie: route=gone; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                                        "Connection: close")) + BODY
    with FaultServer([Send(set_it), Close()]) as first, FaultServer([Send(drop_it), Close()]) as second:
        session = new_session()
        poster = StreamPoster(session)
        poster.post(first.url(), b"{}", {"Accept": "text/event-stream"}, 5.0).close()
        assert session.cookies.get("route") == "node-7", "in the session's jar: a Dify stop request sends it too"
        url = second.url()  # the same host name (127.0.0.1): the cookie goes along, then is deleted
        poster.post(url, b"{}", {}, 5.0).close()
        poster.post(url, b"{}", {}, 5.0).close()
    assert second.requests[0].headers["cookie"] == "route=node-7"
    assert "cookie" not in second.requests[1].headers and "route" not in session.cookies


def test_headers_are_merged_without_regard_to_case_the_later_winning():
    with FaultServer([Send(head(chunked=True, extra=("Connection: close",)) + BODY), Close()]) as server:
        poster = StreamPoster(new_session())
        poster.post(server.url(), b"{}", {"Accept": "text/event-stream", "accept": "*/*",
                                          "content-length": "99"}, 5.0).close()
    head_lines = server.requests[0].head.decode("latin-1").lower().split("\r\n")
    assert [line for line in head_lines if line.startswith("accept:")] == ["accept: */*"]
    assert [line for line in head_lines if line.startswith("content-length:")] == ["content-length: 2"]


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


def test_a_tester_makes_its_connection_pool_when_made_and_connects_on_its_first_request():
    """The pool is made with the tester (before the run's threads begin), the connection is not:
    the first request still opens it, so its time to first byte includes the connect as before."""
    with FaultServer([Send(head(chunked=True) + BODY), Close()]) as server:
        tester = SSETester(get_flavor("openai-chat"), Settings(url=server.url(), timeout_s=5.0), WordCounter())
        try:
            (pool, _, _, _) = tester._poster._targets[server.url()]
            assert server.connections == 0 and pool.num_connections == 0
            record = tester.run(1, 1, Query("q"), None)
        finally:
            tester.close()
    assert record.ok, record.error
    assert server.connections == 1 and pool.num_connections == 1, "the request went through the pool made first"


def test_a_ca_bundle_that_is_not_there_fails_the_request_as_tls_not_the_tester():
    settings = Settings(url="https://127.0.0.1:9/v1/chat/completions", timeout_s=2.0, verify="/nonexistent/ca.pem")
    tester = SSETester(get_flavor("openai-chat"), settings, WordCounter())  # made without raising
    try:
        record = tester.run(1, 1, Query("q"), None)
    finally:
        tester.close()
    assert not record.ok and record.error_kind.value == "tls"
    assert "/nonexistent/ca.pem" in record.error and "--ca-bundle" in record.error
