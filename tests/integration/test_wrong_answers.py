"""Answers that are not the stream asked for get the right error kind, over loopback: a 200 HTML
page (a proxy's or WAF's login page), a compressed stream, a status line that is not HTTP."""

from __future__ import annotations

import gzip

import pytest

from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .fault_server import FaultServer, Hang, Send, head

STREAM = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
LOGIN = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Corporate SSO\x07</body></html>"


class Words:
    def count(self, text):
        return len(text.split()), "tokenizer"


def run(script) -> object:
    with FaultServer(script) as server:
        tester = SSETester(get_flavor("openai-chat"), Settings(url=server.url(), timeout_s=3.0), Words())
        try:
            return tester.run(1, 1, Query("hi"), "key")
        finally:
            tester.close()


def test_a_200_html_page_is_protocol_naming_what_came():
    record = run([Send(head(content_type="text/html; charset=utf-8", length=len(LOGIN)) + LOGIN), Hang(1)])
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL
    assert "expected text/event-stream, got text/html" in record.error and "Sign in" in record.error
    assert "\x07" not in record.error and "\n" not in record.error


def test_a_compressed_stream_is_protocol_gzip():
    body = gzip.compress(STREAM)
    record = run([Send(head(length=len(body), extra=("Content-Encoding: gzip",)) + body), Hang(1)])
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL and "Content-Encoding: gzip" in record.error


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9.6\r\n", b"\xff\xfe\x00garbage\r\n\r\n"])
def test_an_answer_that_is_not_http_is_protocol(garbage):
    record = run([Send(garbage), Hang(0.2)])
    assert not record.ok and record.error_kind is ErrorKind.PROTOCOL and "not HTTP" in record.error
