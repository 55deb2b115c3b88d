"""Run the mock server in its own process (so it does not share sse-perf's interpreter lock),
print its port, and on SIGTERM dump its counters and first-token send instants as JSON."""

import json
import signal
import sys
import threading

from sse_perf_tool.mock_server import MockConfig, MockServer


def main() -> None:
    ttft_ms, itl_ms, tokens, out_path = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    server = MockServer(MockConfig(ttft_ms=ttft_ms, itl_ms=itl_ms, tokens=tokens, record_timings=True)).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(server.port, flush=True)
    done.wait()
    stats = server.stats.snapshot()
    timings = server.first_token_times()
    server.stop()
    with open(out_path, "w") as fh:
        json.dump({"stats": stats, "first_token_sent_at": timings}, fh)


if __name__ == "__main__":
    main()
