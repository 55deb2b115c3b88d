"""A Prometheus endpoint on 127.0.0.1:0 whose answer (body, status, delay) a test can change while
it runs: tests/integration/test_server_metrics.py and test_cli_telemetry.py scrape it."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_texts import VLLM_TEXT


class MetricsServer:
    """Serves `body` with `status` at any path; both may be changed while it runs."""

    def __init__(self, body=VLLM_TEXT, status=200, delay_s=0.0):
        self.body, self.status, self.delay_s = body, status, delay_s
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.hits += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                data = owner.body.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url():
    with MetricsServer() as srv:
        url = srv.url
    return url
