"""https targets over loopback: a certificate the client does not trust fails as `tls` (saying how
to fix it), --ca-bundle names the CA, --insecure skips the check with a warning; a chunked stream
over TLS is read whole. The certificate is made for the test with openssl (skipped without it)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from http.server import BaseHTTPRequestHandler

import pytest

from sse_perf_tool import cli
from sse_perf_tool.flavors import get_flavor
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.records import ErrorKind
from sse_perf_tool.tester import SSETester
from sse_perf_tool.tester import TesterSettings as Settings

from .loopback_http import LoopbackServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a certificate")

EVENTS = [b'data: {"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n',
          b'data: {"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}\n\n',
          b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n']


class _Stream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in EVENTS:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, pem = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(pem),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return key, pem


@pytest.fixture
def https(cert):
    key, pem = cert
    server = LoopbackServer(_Stream)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pem), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.start()
    yield server, f"https://127.0.0.1:{server.server_address[1]}/v1"
    server.close()


class Words:
    def count(self, text):
        return len(text.split()), "tokenizer"


def _run(url: str, verify=None):
    tester = SSETester(get_flavor("openai-chat"), Settings(url=url + "/chat/completions", timeout_s=5.0, verify=verify),
                       Words())
    try:
        return tester.run(1, 1, Query("hi"), "key")
    finally:
        tester.close()


def test_an_untrusted_certificate_is_tls_and_says_how_to_fix_it(https):
    _, url = https
    record = _run(url)
    assert not record.ok and record.error_kind is ErrorKind.TLS
    assert "--ca-bundle" in record.error and "--insecure" in record.error


def test_the_named_ca_or_insecure_read_the_whole_chunked_stream(https, cert):
    _, url = https
    for verify in (str(cert[1]), False):
        record = _run(url, verify)
        assert record.ok, record.error
        assert record.chunks == 2 and record.output_chars == len("Hello there")


def test_insecure_runs_say_so_and_tls_failures_end_as_nothing_succeeded(https, tmp_path, capsys):
    _, url = https
    assert cli.main(["--base-url", url, "--api", "openai-chat", "--requests", "2", "--insecure", "--quiet",
                     "--output-dir", str(tmp_path / "a"), "--no-history"]) == 0
    assert "--insecure: TLS certificates are not checked" in capsys.readouterr().err
    assert cli.main(["--base-url", url, "--api", "openai-chat", "--requests", "2", "--quiet",
                     "--output-dir", str(tmp_path / "b"), "--no-history"]) == 3
    assert "tls=2" in capsys.readouterr().out
    assert cli.main(["--base-url", url, "--ca-bundle", str(tmp_path / "none.pem")]) == 2


def test_a_tls_stream_goes_through_the_bulk_chunked_reader(https, cert, monkeypatch):
    """On the tester's own read path (SSE_PERF_READER=thread, or where the shared reader does not
    apply) a TLS body is unframed by ChunkedBody from bulk reads too, not http.client's
    chunk-per-call path (the kernel-timeout recv path is plain TCP only)."""
    from sse_perf_tool import body_reader

    monkeypatch.setenv("SSE_PERF_READER", "thread")
    made = []
    real = body_reader.ChunkedBody
    monkeypatch.setattr(body_reader, "ChunkedBody", lambda *a: made.append(a) or real(*a))
    _, url = https
    assert _run(url, str(cert[1])).ok
    assert len(made) == 1


def test_a_tls_stream_is_read_by_the_shared_reader(https, cert, monkeypatch):
    """By default a TLS body goes to the process's reader like a plain one: non-blocking SSL
    reads, the bytes the TLS layer already decrypted read at once."""
    from sse_perf_tool import stream_reader

    handed = []
    real = stream_reader.SharedReader.read
    monkeypatch.setattr(stream_reader.SharedReader, "read",
                        lambda self, sock, *rest: handed.append(type(sock).__name__) or real(self, sock, *rest))
    _, url = https
    record = _run(url, str(cert[1]))
    assert record.ok, record.error
    assert handed == ["SSLSocket"] and record.chunks == 2 and record.output_chars == len("Hello there")
