"""A threaded HTTP server on 127.0.0.1, port 0, for tests that script a server's answers with a
BaseHTTPRequestHandler: started in a thread, shut down by the fixture that made it."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, **state):
        super().__init__(("127.0.0.1", 0), handler)
        for name, value in state.items():  # what the handler reads and records (self.server.<name>)
            setattr(self, name, value)

    @property
    def base(self) -> str:
        """The API base URL, as a Dify app or an OpenAI-compatible server has it."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> "LoopbackServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
