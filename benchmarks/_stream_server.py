"""A lean streaming server for the capacity benchmark: OpenAI chat completions as SSE over
HTTP/1.1 chunked, and as little work per event as a server can do, so that the benchmark
measures the client. One asyncio event loop per worker process, the workers sharing the port
(SO_REUSEPORT: the kernel spreads the connections), every event pre-encoded once (chunk framing
included) and written with one write, an absolute send schedule (TTFT, then ITL per token), and
keep-alive connections.

Ground truth: each worker logs the perf_counter() instant (CLOCK_MONOTONIC, the clients' clock)
at which it wrote each request's first token, by X-Request-Id, and counts the events it sent.

usage: python benchmarks/_stream_server.py TTFT_MS ITL_MS TOKENS OUT_PREFIX [WORKERS]
Prints the port, serves until SIGTERM, then each worker writes OUT_PREFIX.<n>.json
({"events_sent", "requests", "first_token_sent_at": {id: seconds}}). Standard library only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def _delta(content: str) -> bytes:
    return _event({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
                   "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]})


class Worker:
    def __init__(self, ttft_ms: float, itl_ms: float, tokens: int) -> None:
        self.ttft_s, self.itl_s, self.tokens = ttft_ms / 1000, itl_ms / 1000, tokens
        self.token_events = [_delta(f" w{k % 50}") for k in range(tokens)]
        self.tail = (_event({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
                             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                     + _event({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
                               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": tokens,
                                                        "total_tokens": tokens + 5}})
                     + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.events_sent = 0
        self.requests = 0
        self.first_token_sent_at: dict = {}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sleep, clock = asyncio.sleep, time.perf_counter
        # every event goes out when written (asyncio sets this only on sockets it made itself)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_id, length = "", 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"x-request-id":
                        request_id = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                start = clock()
                writer.write(HEAD)
                due = start + self.ttft_s
                for k, event in enumerate(self.token_events):
                    wait = due - clock()
                    if wait > 0:
                        await sleep(wait)
                    writer.write(event)
                    if k == 0 and request_id:
                        self.first_token_sent_at[request_id] = clock()
                    self.events_sent += 1
                    due += self.itl_s
                    if writer.transport.get_write_buffer_size() > 1 << 20:  # a client that stopped reading
                        await writer.drain()
                writer.write(self.tail)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # the client went away (or the server stops): its connection ends here
        finally:
            writer.close()


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_worker(index: int, sock: socket.socket, args: tuple, out_prefix: str, children: tuple = ()) -> None:
    """Serve until SIGTERM (passed on to `children`, the other workers), then write the counts."""
    worker = Worker(*args)

    async def main() -> None:
        server = await asyncio.start_server(worker.serve, sock=sock, backlog=1024)
        stop = asyncio.Event()

        def on_term() -> None:
            for pid in children:
                os.kill(pid, signal.SIGTERM)
            stop.set()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        async with server:
            await stop.wait()

    asyncio.run(main())
    with open(f"{out_prefix}.{index}.json", "w") as fh:
        json.dump({"events_sent": worker.events_sent, "requests": worker.requests,
                   "first_token_sent_at": worker.first_token_sent_at}, fh)


def main() -> None:
    ttft_ms, itl_ms, tokens, out_prefix = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    first = _listen(0)
    port = first.getsockname()[1]
    socks = [first] + [_listen(port) for _ in range(workers - 1)]
    children = []
    for index, sock in enumerate(socks[1:], start=1):
        pid = os.fork()
        if pid == 0:
            for other in socks:
                if other is not sock:
                    other.close()
            run_worker(index, sock, (ttft_ms, itl_ms, tokens), out_prefix)
            os._exit(0)
        children.append(pid)
    for sock in socks[1:]:
        sock.close()
    print(port, flush=True)
    try:
        run_worker(0, first, (ttft_ms, itl_ms, tokens), out_prefix, tuple(children))
    finally:
        for pid in children:
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
