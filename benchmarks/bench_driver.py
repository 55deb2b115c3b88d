"""The driver's limit: how many finished requests a second the process that drives a run absorbs.

With --processes or --ray, the workers read the streams and the driver only counts: every record
goes through its one statistics thread (the aggregator) to the run's sinks, as a run builds them
(records.jsonl and requests.csv, the summary's figures, the report's digest, the history
recorder, the quiet live table). This feeds COUNT synthetic records of TOKENS token instants each
from one thread, as fast as the queue takes them, and times them until the last is counted.
No network: it measures the driver alone. docs/scaling.md turns the figures into concurrent streams.

usage: python benchmarks/bench_driver.py [--count 20000] [--tokens 64,512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sse_perf_tool.aggregator import Aggregator  # noqa: E402
from sse_perf_tool.history import History, HistoryRecorder  # noqa: E402
from sse_perf_tool.live import LiveTable  # noqa: E402
from sse_perf_tool.records import RequestRecord  # noqa: E402
from sse_perf_tool.report_records import RecordDigest  # noqa: E402
from sse_perf_tool.stats import RunFigures  # noqa: E402
from sse_perf_tool.storage import RecordWriter  # noqa: E402

MS = 1_000_000


def records(count: int, tokens: int, start_ns: int, per_s: int = 1000):
    """Requests of `tokens` tokens at 20 ms each, ending `per_s` to the second from `start_ns`."""
    for index in range(count):
        ended = start_ns + index * (1_000_000_000 // per_s) + tokens * 20 * MS + 200 * MS
        sent = ended - tokens * 20 * MS - 200 * MS
        times = array("q", (sent + 200 * MS + k * 20 * MS for k in range(tokens)))
        record = RequestRecord(index + 1, index % 256 + 1, "hello", None, time.time(), sent, first_byte_ns=times[0],
                               first_token_ns=times[0], first_answer_ns=times[0], ended_ns=ended,
                               token_times_ns=times, ok=True, http_status=200)
        record.output_tokens, record.token_source, record.output_chars = tokens, "usage", tokens * 4
        yield record


def one(count: int, tokens: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench-driver-"))
    start_ns = time.perf_counter_ns()
    writer = RecordWriter(folder)
    history = History(str(folder / "history.db"))
    recorder = HistoryRecorder(history, history.begin_run(folder, {"started_at": time.time(), "options": {}}))
    sinks = [writer, RunFigures({}, per_level=False), RecordDigest(None, histograms=False), recorder,
             LiveTable(io.StringIO(), quiet=True)]
    aggregator = Aggregator(start_ns, sinks, 256, usable_cores=3)
    made = list(records(count, tokens, start_ns))
    aggregator.start()
    began = time.perf_counter()
    for record in made:
        aggregator.submit(record)
    aggregator.close(timeout=600)
    elapsed = time.perf_counter() - began
    writer.close()
    history.close()
    return count / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--tokens", default="64,512")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{args.count} records a run, {args.repeats} runs each")
    for tokens in (int(t) for t in args.tokens.split(",")):
        rates = [one(args.count, tokens) for _ in range(args.repeats)]
        print(f"{tokens:>4} tokens a record: {statistics.median(rates):>7,.0f} records/s "
              f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
