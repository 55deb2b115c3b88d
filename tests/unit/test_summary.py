"""summary: the figures of one group, from an iterable of records. A whole run's summary against
its records.jsonl: tests/integration/test_summary.py."""


import pytest

from sse_perf_tool.stats import RunFigures, summarise


def test_summarise_over_an_iterable_is_the_figures_of_one_group():
    records = [{"ok": True, "ttft_ms": 10.0, "chunks": 2, "output_tokens": 3, "token_source": "usage"},
               {"ok": False, "error_kind": "timeout"}, {"ok": True, "warmup": True, "ttft_ms": 1.0}]
    figures = RunFigures.from_records(records)
    assert summarise(records, 2.0) == figures.whole.summary(2.0)
    assert figures.whole.summary(2.0)["requests"] | {} == {"total": 2, "ok": 1, "failed": 1, "success_rate_pct": 50.0,
                                                            "empty": 0, "paused": 0, "cancelled": 0, "warmup": 1}


def test_paused_requests_are_neither_ok_nor_failed_and_errors_are_counted_by_status():
    """A Dify workflow paused for human input is its own outcome: out of the failures and the
    success rate; failed requests are also counted by their HTTP status (429 apart from 500);
    the server's own prices add up to the run's cost."""
    records = [
        {"ok": True, "output_tokens": 3, "ttft_ms": 10.0, "server_total_price": 0.25, "server_currency": "USD"},
        {"ok": True, "output_tokens": 3, "ttft_ms": 12.0, "server_total_price": 0.5, "server_currency": "USD"},
        {"ok": False, "error_kind": "paused", "http_status": 200},
        {"ok": False, "error_kind": "rate_limited", "http_status": 429},
        {"ok": False, "error_kind": "rate_limited", "http_status": 429},
        {"ok": False, "error_kind": "http_status", "http_status": 500},
        {"ok": False, "error_kind": "rate_limited", "http_status": 200},  # an in-stream 429
    ]
    summary = summarise(records, 1.0)
    req = summary["requests"]
    assert (req["total"], req["ok"], req["failed"], req["paused"]) == (7, 2, 4, 1)
    assert req["success_rate_pct"] == pytest.approx(100 * 2 / 6)
    assert summary["errors"] == {"rate_limited": 3, "http_status": 1}
    assert summary["errors_by_status"] == {"429": 2, "500": 1}
    assert summary["cost"] == {"total_price": 0.75, "currency": "USD", "priced_requests": 2}
    assert "cost" not in summarise(records[2:], 1.0)


def test_stops_at_the_server_are_counted_when_any_was_tried():
    records = [{"ok": False, "error_kind": "cancelled", "stop_sent": True},
               {"ok": False, "error_kind": "cancelled", "stop_sent": False},
               {"ok": False, "error_kind": "cancelled", "stop_sent": None}]
    assert summarise(records, 1.0)["requests"]["stops"] == {"ok": 1, "failed": 1}
    assert "stops" not in summarise(records[2:], 1.0)["requests"]


def test_requests_cancelled_by_sse_perf_are_not_failures_of_the_server():
    """Ctrl-C or the end of the run cancels what is in flight: those are counted apart (and listed
    among the errors), and the success rate is over the requests that ran to an end."""
    records = [{"ok": True, "output_tokens": 1, "ttft_ms": 5.0}] * 3 + [{"ok": False, "error_kind": "cancelled"}] * 2
    req = summarise(records, 1.0)["requests"]
    assert (req["total"], req["ok"], req["failed"], req["cancelled"], req["success_rate_pct"]) == (5, 3, 0, 2, 100.0)
    assert summarise(records, 1.0)["errors"] == {"cancelled": 2}
