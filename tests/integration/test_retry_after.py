"""HTTP 429 with Retry-After (the mock's rate limit answers as Dify's: `too_many_requests` and a
Retry-After header): by default a virtual user sends again at once (a constant offered load);
with --honor-retry-after it waits as told, recorded on its next request as retry_wait_ms. Every
finished request counts in requests/s; the successful ones are ok_requests_per_s."""

from __future__ import annotations

import json

from sse_perf_tool import cli
from sse_perf_tool.mock_server import MockConfig, MockServer


def _run(tmp_path, *extra):
    # 1.6 s: the second request (after Retry-After's 1 s) falls well inside the run, the third after it
    server = MockServer(MockConfig(ttft_ms=1, itl_ms=1, tokens=2, rate_limit_rate=1.0, retry_after_s=1)).start()
    try:
        code = cli.main(["--base-url", server.base_url, "--threads", "1", "--duration", "1.6", "--keep-going",
                         "--quiet", "--no-history", "--output-dir", str(tmp_path), *extra])
    finally:
        server.stop()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    return code, records, json.loads((run_dir / "summary.json").read_text())


def test_honor_retry_after_waits_as_told_and_records_the_wait(tmp_path):
    code, records, summary = _run(tmp_path / "honor", "--honor-retry-after")
    assert code == 3 and all(r["error_kind"] == "rate_limited" for r in records)
    assert 2 <= len(records) <= 3, "one request a second, as Retry-After: 1 says"
    assert records[0]["retry_wait_ms"] is None
    assert all(900 <= r["retry_wait_ms"] <= 1500 for r in records[1:])
    assert summary["throughput"]["requests_per_s"] > 0 and summary["throughput"]["ok_requests_per_s"] == 0


def test_by_default_a_rate_limited_user_sends_again_at_once(tmp_path):
    code, records, summary = _run(tmp_path / "default")
    assert code == 3 and len(records) > 20
    assert all(r["retry_wait_ms"] is None for r in records)
    assert summary["throughput"]["requests_per_s"] > 10, "every finished request counts in requests/s"
