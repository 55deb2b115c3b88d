"""summary: the figures of one group, from an iterable of records. A whole run's summary against
its records.jsonl: tests/integration/test_summary.py."""


from sse_perf_tool.stats import RunFigures, summarise


def test_summarise_over_an_iterable_is_the_figures_of_one_group():
    records = [{"ok": True, "ttft_ms": 10.0, "chunks": 2, "output_tokens": 3, "token_source": "usage"},
               {"ok": False, "error_kind": "timeout"}, {"ok": True, "warmup": True, "ttft_ms": 1.0}]
    figures = RunFigures.from_records(records)
    assert summarise(records, 2.0) == figures.whole.summary(2.0)
    assert figures.whole.summary(2.0)["requests"] | {} == {"total": 2, "ok": 1, "failed": 1, "success_rate_pct": 50.0,
                                                            "empty": 0, "warmup": 1}
