"""A tester's request with as few system calls as it can make (issue 17): the head and body in one
write that holds the interpreter lock, no timeout ioctl when the timeout is already set, urllib3's
"is the kept connection still open?" asked with a poll that holds the lock, and a body handed to the
shared reader with no system call at all. Over real loopback sockets: what the server receives is
byte for byte what urllib3 itself sends, a write the socket takes only in part still arrives whole,
and a connection the server closed between two requests is noticed and replaced."""

from __future__ import annotations

import select
import socket
import sys
import threading

import pytest
import urllib3

from sse_perf_tool import libc
from sse_perf_tool.http_session import StreamPoster, _QuietSocket, new_session
from sse_perf_tool.stream_reader import prepare

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and libc.AVAILABLE),
                                reason="the lock-holding calls are made through Linux's libc")

WAIT_S = 5.0
BODY = b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}'
EVENTS = b"data: {\"x\": 1}\n\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENTS), EVENTS))


class RawServer:
    """Reads whole requests (head and Content-Length body) off each connection and answers each
    with RESPONSE; `close_after` answers per connection, then it closes that connection."""

    def __init__(self, close_after: int = 0) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT_S)
        self.port = self.listener.getsockname()[1]
        self.close_after = close_after
        self.requests: list = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for _ in range(8):  # bounded: a test makes at most a few connections
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT_S)
        data, answered = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                data = rest[length:]
                conn.sendall(RESPONSE)
                answered += 1
                if self.close_after and answered >= self.close_after:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server():
    made = []

    def make(**options) -> RawServer:
        made.append(RawServer(**options))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _post(poster: StreamPoster, port: int):
    response = poster.post(f"http://127.0.0.1:{port}/v1/chat/completions", BODY,
                           {"Content-Type": "application/json", "X-Request-Id": "r1"}, timeout=WAIT_S)
    data = response.raw.read()
    response.close()
    return response, data


def test_what_the_server_receives_is_byte_for_byte_what_urllib3_sends(server):
    plain, lean = server(), server()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", plain.port, retries=False)
    for _ in range(2):  # a new connection, then the kept one
        pool.urlopen("POST", "/v1/chat/completions", body=BODY, redirect=False,
                     headers={"Content-Type": "application/json", "X-Request-Id": "r1",
                              "Content-Length": str(len(BODY))}).read()
    pool.close()
    session = new_session()
    poster = StreamPoster(session)
    received = [_post(poster, lean.port)[1] for _ in range(2)]
    session.close()
    assert received == [EVENTS, EVENTS]
    assert len(plain.requests) == len(lean.requests) == 2
    for mine, theirs in zip(lean.requests, plain.requests):
        assert mine == theirs.replace(b":%d\r\n" % plain.port, b":%d\r\n" % lean.port)
    assert mine.endswith(b"\r\n\r\n" + BODY)


def _headers(request: bytes) -> tuple:
    head = request.split(b"\r\n\r\n")[0].split(b"\r\n")
    return head[0], sorted(line.lower() for line in head[1:])


def test_head_and_body_go_out_in_one_write(server, monkeypatch):
    """A new connection's first request in one sendall (it connects as it writes); a kept
    connection's in one write holding the interpreter lock."""
    target = server()
    quiet, whole = [], []
    real_ready, real_sendall = libc.send_ready, socket.socket.sendall
    monkeypatch.setattr(libc, "send_ready", lambda fd, data: quiet.append(bytes(data)) or real_ready(fd, data))
    monkeypatch.setattr(socket.socket, "sendall", lambda sock, data, *a: whole.append(bytes(data)) or real_sendall(sock, data, *a))
    session = new_session()
    poster = StreamPoster(session)
    for _ in range(3):
        _post(poster, target.port)
    session.close()
    assert target.connections == 1 and len(target.requests) == 3
    assert [data for data in whole if data.startswith(b"POST")] == target.requests[:1]  # (the server's answers too)
    assert quiet == target.requests[1:]


def test_a_write_the_socket_takes_only_in_part_still_arrives_whole(server, monkeypatch):
    target = server()
    real = libc.send_ready
    monkeypatch.setattr(libc, "send_ready", lambda fd, data: real(fd, bytes(data)[:7]))  # 7 bytes now, the rest later
    session = new_session()
    _, data = _post(StreamPoster(session), target.port)
    session.close()
    assert data == EVENTS
    assert target.requests[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert target.requests[0].endswith(b"\r\n\r\n" + BODY)


def test_the_timeout_is_set_when_the_connection_is_made_not_twice_per_request(server, monkeypatch):
    target = server()
    calls = []
    real = socket.socket.settimeout
    monkeypatch.setattr(socket.socket, "settimeout", lambda sock, value: calls.append(value) or real(sock, value))
    session = new_session()
    poster = StreamPoster(session)
    _post(poster, target.port)
    on_connect = len(calls)
    for _ in range(3):
        _post(poster, target.port)
    sock = poster._target(f"http://127.0.0.1:{target.port}/v1/chat/completions")[0].pool.queue[-1].sock
    session.close()
    assert type(sock) is _QuietSocket and sock.gettimeout() == WAIT_S
    assert target.connections == 1 and len(target.requests) == 4
    assert 1 <= on_connect <= 2 and len(calls) == on_connect  # urllib3 asks twice a request: no call for the same value


def test_a_connection_the_server_closed_between_requests_is_replaced(server):
    target = server(close_after=1)  # keep-alive by its headers, closed after each answer
    session = new_session()
    poster = StreamPoster(session)
    _post(poster, target.port)
    threading.Event().wait(0.3)  # the server's close reaches this side
    _, data = _post(poster, target.port)
    session.close()
    assert data == EVENTS
    assert target.connections == 2 and len(target.requests) == 2


def test_readable_now_tells_data_a_close_and_nothing():
    a, b = socket.socketpair()
    try:
        assert libc.readable_now(a.fileno()) is False
        b.send(b"x")
        assert libc.readable_now(a.fileno()) is True
        a.recv(1)
        b.close()
        assert libc.readable_now(a.fileno()) is True  # the peer closed: readable (EOF)
    finally:
        a.close()
        b.close()


def test_send_ready_writes_what_fits_and_zero_when_the_buffer_is_full():
    a, b = socket.socketpair()
    try:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        assert libc.send_ready(a.fileno(), b"hello") == 5 and b.recv(5) == b"hello"
        block, total = b"z" * 65536, 0
        for _ in range(1000):  # bounded: the buffer fills within a few writes
            sent = libc.send_ready(a.fileno(), block)
            total += sent
            if sent == 0:
                break
        assert sent == 0 and total > 0
        b.close()
        while True:  # bounded by what was queued: the peer is gone, the next write fails as send() would
            try:
                libc.send_ready(a.fileno(), b"after")
            except OSError as exc:
                assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
                break
    finally:
        a.close()
        b.close()


def test_epoll_add_registers_as_select_does_and_refuses_a_second_time():
    a, b = socket.socketpair()
    ep = select.epoll()
    try:
        libc.epoll_add(ep.fileno(), a.fileno(), select.EPOLLIN)
        assert ep.poll(0) == []
        b.send(b"x")
        assert ep.poll(WAIT_S) == [(a.fileno(), select.EPOLLIN)]
        with pytest.raises(FileExistsError):
            libc.epoll_add(ep.fileno(), a.fileno(), select.EPOLLIN)
    finally:
        ep.close()
        a.close()
        b.close()


def test_the_handover_keeps_the_socket_as_it_was_and_takes_the_bytes_that_came_with_the_head(server):
    target = server()
    session = new_session()
    poster = StreamPoster(session)
    response = poster.post(f"http://127.0.0.1:{target.port}/v1/chat/completions", BODY, {}, timeout=WAIT_S)
    sock = response.raw._fp.fp.raw._sock
    before = sock.gettimeout(), sock.getblocking()
    handoff = prepare(response)
    assert handoff is not None
    handed, _body, early, restore = handoff
    assert handed is sock and (sock.gettimeout(), sock.getblocking()) == before  # no mode change, no system call
    assert early == b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENTS), EVENTS)  # one write from the server: all buffered with the head
    assert response.raw._fp.fp.raw._sock is sock  # the buffered reader has its socket back
    restore()
    assert (sock.gettimeout(), sock.getblocking()) == before
    response.close()
    session.close()
