"""A lean streaming server for the capacity benchmark: OpenAI chat completions as SSE over
HTTP/1.1 chunked, and as little work per event as a server can do, so that the benchmark
measures the client. One asyncio event loop per worker process, the workers sharing the port
(SO_REUSEPORT: the kernel spreads the connections), every event pre-encoded once (chunk framing
included) and written with one write, one decode-step loop per worker (every ITL it writes each
active stream's due events: no timer per event), and keep-alive connections.

Ground truth: each worker logs the perf_counter() instant (CLOCK_MONOTONIC, the clients' clock)
at which it wrote each request's first token, by X-Request-Id, counts the events it sent, and sums
how late each went out after its due instant (its own figure for whether it kept its schedule).

usage: python benchmarks/_stream_server.py TTFT_MS ITL_MS TOKENS OUT_PREFIX [WORKERS]
Prints the port, serves until SIGTERM, then each worker writes OUT_PREFIX.<n>.json
({"events_sent", "requests", "lag_s", "steps", "first_token_sent_at": {id: seconds}}). Standard
library only.
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


class _Stream:
    __slots__ = ("writer", "request_id", "due", "sent", "done")

    def __init__(self, writer, request_id: str, due: float, done) -> None:
        self.writer, self.request_id, self.due, self.sent, self.done = writer, request_id, due, 0, done


class Worker:
    """One process's streams, written by one decode-step loop: every ITL the loop wakes once and
    writes each active stream's due events, as a batching LLM server emits one token per running
    sequence per step. A stream's first token is due TTFT after its request arrived and goes out
    at the first step after that. No timer or future per event, so what the server costs per event
    does not depend on how the client reads (with a sleep per event, a server that kept ahead of
    its schedule paid for a wake per event, one that fell behind did not)."""

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
        self.lag_s = 0.0  # the sum over events of how late each went out after its due instant
        self.steps = 0
        self.first_token_sent_at: dict = {}
        self._active: list = []
        self._wake: asyncio.Event = None  # type: ignore[assignment]

    async def step_loop(self) -> None:
        """Every ITL: write what is due on every active stream (a late loop catches up at once)."""
        clock, sleep, events, tokens, itl = time.perf_counter, asyncio.sleep, self.token_events, self.tokens, self.itl_s
        self._wake = asyncio.Event()
        while True:
            if not self._active:
                self._wake.clear()
                await self._wake.wait()
            step = clock()
            self.steps += 1
            still = []
            for stream in self._active:
                while stream.due <= step and stream.sent < tokens:
                    stream.writer.write(events[stream.sent])
                    if stream.sent == 0 and stream.request_id:
                        self.first_token_sent_at[stream.request_id] = clock()
                    self.lag_s += step - stream.due
                    stream.sent += 1
                    self.events_sent += 1
                    stream.due += itl
                if stream.sent < tokens and not stream.writer.is_closing():
                    still.append(stream)
                elif not stream.done.done():
                    stream.done.set_result(None)
            self._active = still
            wait = step + itl - clock()
            if wait > 0:
                await sleep(wait)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # every event goes out when written (asyncio sets this only on sockets it made itself)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
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
                writer.write(HEAD)
                stream = _Stream(writer, request_id, time.perf_counter() + self.ttft_s, loop.create_future())
                self._active.append(stream)
                self._wake.set()
                await stream.done
                if stream.sent < self.tokens:  # the client went away mid-stream
                    return
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
        stepper = asyncio.get_running_loop().create_task(worker.step_loop())
        await asyncio.sleep(0)  # the step loop is waiting before the first request comes
        server = await asyncio.start_server(worker.serve, sock=sock, backlog=1024)
        stop = asyncio.Event()

        def on_term() -> None:
            for pid in children:
                os.kill(pid, signal.SIGTERM)
            stop.set()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        async with server:
            await stop.wait()
        stepper.cancel()

    asyncio.run(main())
    with open(f"{out_prefix}.{index}.json", "w") as fh:
        json.dump({"events_sent": worker.events_sent, "requests": worker.requests, "lag_s": worker.lag_s,
                   "steps": worker.steps, "first_token_sent_at": worker.first_token_sent_at}, fh)


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
