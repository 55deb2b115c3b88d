"""Redirects of a streaming request, over loopback: none is followed by default (the request fails
as http_status naming the Location, masked); --follow-redirects follows a 307/308 within the same
origin only, so a credential never reaches another host and a POST never turns into a GET."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .loopback_http import LoopbackServer

STREAM = (b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
          b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')


class _Handler(BaseHTTPRequestHandler):
    """POST /v1/chat/completions answers the server's `redirect` (status, Location) if it has one;
    every other POST path streams an answer. Each request is recorded with its headers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        redirect = self.server.redirect
        if redirect and self.path == "/v1/chat/completions":
            status, location = redirect
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(STREAM)))
        self.end_headers()
        self.wfile.write(STREAM)

    do_GET = do_POST


@pytest.fixture
def servers():
    made = []

    def start(redirect=None) -> LoopbackServer:
        server = LoopbackServer(_Handler, redirect=redirect, seen=[]).start()
        made.append(server)
        return server

    yield start
    for server in made:
        server.close()


def _run(server, follow: bool):
    headers = (("X-Api-Key", "sk-secret-key-123"),)
    tester = SSETester(get_flavor("openai-chat"), Settings(url=server.base + "/chat/completions", timeout_s=5.0,
                                                           headers=headers, follow_redirects=follow), _Words())
    try:
        return tester.run(1, 1, Query("hi"), "sk-secret-key-123")
    finally:
        tester.close()


class _Words:
    def count(self, text):
        return len(text.split()), "tokenizer"


@pytest.mark.parametrize("follow", [False, True])
def test_a_redirect_to_another_host_is_never_followed(servers, follow):
    other = servers()
    first = servers(redirect=(307, "http://user:hunter2@127.0.0.1:%d/v1/elsewhere" % other.server_address[1]))
    record = _run(first, follow)
    assert not record.ok and record.error_kind is ErrorKind.HTTP_STATUS and record.http_status == 307
    assert "redirect" in record.error and "hunter2" not in record.error, "the Location is masked"
    assert other.seen == [], "the other host got nothing, credentials least of all"


def test_by_default_a_same_origin_redirect_is_not_followed_either(servers):
    server = servers(redirect=(307, "/v1/moved"))
    record = _run(server, follow=False)
    assert not record.ok and "not followed" in record.error and "--follow-redirects" in record.error
    assert [path for _, path, _, _ in server.seen] == ["/v1/chat/completions"]


def test_follow_redirects_follows_a_same_origin_307_with_the_post_and_its_body(servers):
    server = servers(redirect=(307, "/v1/moved"))
    record = _run(server, follow=True)
    assert record.ok and record.redirects == 1
    (first, second) = server.seen
    assert second[0] == "POST" and second[1] == "/v1/moved" and second[3] == first[3]
    assert json.loads(second[3])["messages"][0]["content"] == "hi"


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_that_would_turn_the_post_into_a_get_fails(servers, status):
    server = servers(redirect=(status, "/v1/moved"))
    record = _run(server, follow=True)
    assert not record.ok and f"a {status} turns the POST into a GET" in record.error
    assert len(server.seen) == 1
