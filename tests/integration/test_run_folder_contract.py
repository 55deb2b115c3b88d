"""The run folder's shape, pinned: file names, records.jsonl fields in order, requests.csv and
timeseries.csv columns, summary.json keys. A real --demo run (embedded mock server, loopback) is
compared with lists written from the project's contract (CONTRACT.md, "The run folder", and its
"Added by later issues" section) and docs/run-folder.md for the fields added since; a change to
any output file's shape fails here and has to be made on purpose, in both places."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sse_perf_tool import cli

# records.jsonl, in this order (requests.csv: the same without itl_ms). The first 22 are
# CONTRACT.md's table; then its load-model additions, the sweep's level and warm-up flag
# (docs/run-folder.md), finish_reason (issue 13), request_tps (issue 14) and the server's own
# account of the request, the conversation turn and the stop call (issue 15); the redirects a
# request followed (issue 16).
RECORD_FIELDS = (
    "request_id", "thread_id", "query", "dataset", "started_at", "ok", "error_kind", "error", "http_status",
    "ttfb_ms", "ttft_ms", "ttfo_ms", "e2e_ms", "total_ms", "itl_ms", "tpot_ms", "chunks", "output_tokens",
    "token_source", "output_chars", "reasoning_tokens", "prompt_tokens", "tokenizer_tokens", "finish_reason", "scheduled_at",
    "queue_ms", "ttft_from_scheduled_ms", "e2e_from_scheduled_ms", "level", "warmup", "request_tps",
    "server_latency_ms", "server_ttft_ms", "server_generate_ms", "server_elapsed_ms", "server_total_price",
    "server_currency", "conversation_turn", "stop_sent", "redirects", "retry_wait_ms",
)
TIMESERIES_FIXED = (
    "second", "active_threads", "requests_started", "requests_ok", "requests_failed", "output_tokens",
    "ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "tpot_p95_ms", "e2e_p50_ms", "e2e_p95_ms",
    "success_rate_pct", "phase", "level",
)
SELF_CHECK_COLUMNS = ("client.lag_p50_ms", "client.lag_p99_ms", "client.cpu_pct", "client.load_avg",
                      "client.machine_cpu_pct")
DIST_KEYS = ["count", "mean", "min", "p50", "p90", "p95", "p99", "max"]
DISTRIBUTIONS = ("ttfb_ms", "ttft_ms", "ttfo_ms", "tpot_ms", "itl_ms", "e2e_ms", "request_tps", "server_ttft_ms",
                 "server_latency_ms", "server_generate_ms", "server_elapsed_ms", "queue_ms",
                 "ttft_from_scheduled_ms", "e2e_from_scheduled_ms")
SUMMARY_SECTIONS = {
    "run": {"started_at", "ended_at", "duration_s", "api", "base_url", "threads", "ramp_up_s", "model_name",
            "interrupted", "config", "load", "stopped_early", "request_id_prefix", "tool_version"},
    "requests": {"total", "ok", "failed", "success_rate_pct", "empty", "warmup", "paused"},
    "throughput": {"requests_per_s", "ok_requests_per_s", "output_tokens_total", "output_tokens_per_s"},
    "goodput": {"requests_per_s", "pct", "bounds"},
    "client": {"lag_ms_p50", "lag_ms_p99", "cpu_pct_mean", "cpu_pct_max", "cores_usable", "saturated_from_s"},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """Six requests of ~0.4 s on two threads: long enough (> 1 s) for the self-check to sample."""
    base = tmp_path_factory.mktemp("contract")
    queries = base / "short.jsonl"
    queries.write_text('{"query": "hello"}\n{"query": "again"}\n', encoding="utf-8")
    code = cli.main(["--demo", "--demo-mock", "ttft_ms=400,itl_ms=1,tokens=8", "--threads", "2", "--requests", "6",
                     "--dataset", f"short={queries}", "--slo", "ttft_p95<5s,request_tps_p50>=1",
                     "--output-dir", str(base), "--model-name", "contract", "--quiet"])
    assert code == 0
    (folder,) = [p for p in base.iterdir() if p.is_dir()]
    return folder


def test_the_run_folder_holds_the_contracts_files(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"records.jsonl", "requests.csv", "timeseries.csv", "summary.json", "report.html"} <= names
    assert run_dir.name.endswith("-contract")


def test_every_record_has_the_contracts_fields_in_order(run_dir):
    lines = (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    for line in lines:
        assert tuple(json.loads(line)) == RECORD_FIELDS


def test_requests_csv_has_the_record_fields_without_itl(run_dir):
    with (run_dir / "requests.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert tuple(header) == tuple(name for name in RECORD_FIELDS if name != "itl_ms")


def test_timeseries_csv_starts_with_the_fixed_columns(run_dir):
    with (run_dir / "timeseries.csv").open(newline="", encoding="utf-8") as f:
        header = tuple(next(csv.reader(f)))
    assert header[: len(TIMESERIES_FIXED)] == TIMESERIES_FIXED
    assert header[len(TIMESERIES_FIXED):] == SELF_CHECK_COLUMNS, "no telemetry in this run: only the self-check's"


def test_summary_json_has_the_contracts_sections_and_distributions(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    for section, keys in SUMMARY_SECTIONS.items():
        assert keys <= set(summary[section]), (section, keys - set(summary[section]))
    for name in DISTRIBUTIONS:
        assert list(summary[name]) == DIST_KEYS, name
    assert summary["ttft_ms"]["count"] == 6 and summary["queue_ms"]["max"] == 0.0
    assert summary["errors"] == {} and summary["errors_by_status"] == {} and summary["tokens"]["sources"] == {"usage": 6}
    assert [v["metric"] for v in summary["slo"]] == ["ttft_p95", "request_tps_p50"]
    assert set(summary["slo"][0]) >= {"expr", "metric", "limit", "value", "met"}
    assert list(summary["datasets"]) == ["short"]
    assert {"requests", "ok", "failed", "success_rate_pct", "output_tokens_per_s", "ttft_ms", "tpot_ms",
            "e2e_ms"} <= set(summary["datasets"]["short"])
