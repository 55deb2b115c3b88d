"""A run where no measured request succeeded is not a result: exit 3 (every file still written),
the terminal names the most frequent error messages with their counts, and the report opens with
a red verdict saying so; a healthy run's verdict is green."""

from __future__ import annotations

import json
import re

from sse_perf_tool import cli
from sse_perf_tool.mock_server import MockConfig, MockServer


def _run(tmp_path, capsys, **mock):
    server = MockServer(MockConfig(ttft_ms=5, itl_ms=1, tokens=4, **mock)).start()
    try:
        code = cli.main(["--base-url", server.base_url, "--requests", "6", "--threads", "2", "--keep-going",
                         "--output-dir", str(tmp_path), "--no-history"])
    finally:
        server.stop()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    verdict = re.search(r'<p class="verdict verdict-(\w+)" id="verdict">([^<]*)</p>', html)
    return code, capsys.readouterr().out, json.loads((run_dir / "summary.json").read_text()), verdict


def test_nothing_succeeded_is_exit_3_with_the_top_errors_and_a_red_verdict(tmp_path, capsys):
    code, out, summary, verdict = _run(tmp_path, capsys, error_rate=1.0)
    assert code == 3
    assert summary["top_errors"] == [{"message": "HTTP 500: internal_server_error: Simulated server error (mock "
                                                 "error_rate).", "count": 6}]
    assert "  6× HTTP 500: internal_server_error" in out
    assert verdict.group(1) == "bad" and "none of the 6 measured requests succeeded" in verdict.group(2)


def test_a_healthy_run_is_exit_0_with_a_green_verdict(tmp_path, capsys):
    code, out, summary, verdict = _run(tmp_path, capsys)
    assert code == 0 and summary["top_errors"] == []
    assert verdict.group(1) == "good" and "6 requests" in verdict.group(2)
