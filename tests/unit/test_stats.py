"""stats: percentiles match numpy's linear method, summaries follow docs/metrics.md, per-second buckets."""

from array import array

import math

import pytest

from sse_perf_tool.records import ErrorKind, RequestRecord
from sse_perf_tool.stats import TimeSeries, distribution, percentile, summarise

NS = 1_000_000_000
MS = 1_000_000


@pytest.mark.parametrize(
    "values,pct,expected",
    [
        ([1, 2, 3, 4, 10], 50, 3.0),
        ([1, 2, 3, 4, 10], 90, 7.6),  # numpy.percentile(..., 90) with linear interpolation
        ([1, 2, 3, 4, 10], 99, 9.76),
        ([5], 99, 5.0),
        ([1, 2], 95, 1.95),
    ],
)
def test_percentile_is_numpy_linear(values, pct, expected):
    assert percentile(sorted(values), pct) == pytest.approx(expected)


def test_empty_distribution_has_count_zero_and_nulls_never_zeros():
    dist = distribution([])
    assert dist["count"] == 0
    assert all(dist[k] is None for k in ("mean", "min", "p50", "p90", "p95", "p99", "max"))


def test_distribution_fields():
    dist = distribution([4.0, 1.0, 3.0, 2.0])
    assert dist["count"] == 4 and dist["mean"] == 2.5 and dist["min"] == 1.0 and dist["max"] == 4.0
    assert dist["p50"] == 2.5


def _rec(ok=True, ttft=100.0, itl=(10.0, 20.0), tokens=3, kind=None):
    return {"ok": ok, "error_kind": kind, "ttfb_ms": 50.0 if ok else None, "ttft_ms": ttft, "ttfo_ms": ttft,
            "tpot_ms": 15.0, "e2e_ms": ttft + sum(itl), "itl_ms": list(itl), "output_tokens": tokens}


def test_summary_latencies_only_from_successful_requests_and_itl_pooled():
    records = [_rec(ttft=100.0), _rec(ttft=300.0, itl=(5.0,)), _rec(ok=False, ttft=9999.0, kind="timeout")]
    s = summarise(records, duration_s=2.0)
    assert s["requests"] == {"total": 3, "ok": 2, "failed": 1, "success_rate_pct": pytest.approx(200 / 3),
                             "empty": 0, "paused": 0, "cancelled": 0, "warmup": 0}
    assert s["errors"] == {"timeout": 1}
    assert s["ttft_ms"]["count"] == 2 and s["ttft_ms"]["max"] == 300.0
    assert s["itl_ms"]["count"] == 3  # every gap of every successful request
    assert s["throughput"]["requests_per_s"] == 1.5, "every finished request: the load the server answered"
    assert s["throughput"]["ok_requests_per_s"] == 1.0
    assert s["throughput"]["output_tokens_total"] == 6
    assert s["throughput"]["output_tokens_per_s"] == 3.0


def test_summary_of_nothing_is_nulls():
    s = summarise([], duration_s=None)
    assert s["requests"]["success_rate_pct"] is None
    assert s["throughput"]["requests_per_s"] is None
    assert s["e2e_ms"]["count"] == 0 and s["e2e_ms"]["p50"] is None


def _record(sent_s, token_s, tokens, ok=True, ended_s=None):
    rec = RequestRecord(1, 1, "q", None, 0.0, int(sent_s * NS))
    rec.token_times_ns = array("q", [int(t * NS) for t in token_s])
    if token_s:
        rec.first_token_ns = rec.first_answer_ns = rec.token_times_ns[0]
    rec.ended_ns = int((ended_s if ended_s is not None else (token_s[-1] if token_s else sent_s)) * NS)
    rec.output_tokens = tokens
    rec.ok = ok
    if not ok:
        rec.error_kind = ErrorKind.TRUNCATED
    return rec


def test_tokens_are_spread_over_the_seconds_their_events_arrived():
    ts = TimeSeries(start_ns=0)
    # 4 events: two in second 0, two in second 2; usage says 8 tokens -> 2 per event
    ts.add(_record(0.1, [0.2, 0.9, 2.1, 2.5], tokens=8))
    rows = ts.rows()
    assert [r["output_tokens"] for r in rows] == [4, 0, 4]
    assert sum(r["output_tokens"] for r in rows) == 8
    assert rows[0]["requests_started"] == 1 and rows[2]["requests_ok"] == 1


def test_uneven_token_split_keeps_the_exact_total():
    ts = TimeSeries(start_ns=0)
    ts.add(_record(0.0, [0.5, 1.5, 2.5], tokens=10))
    assert sum(r["output_tokens"] for r in ts.rows()) == 10


def test_second_percentiles_and_cumulative_success():
    ts = TimeSeries(start_ns=0)
    ts.add(_record(0.0, [0.1, 0.3], tokens=2))            # ok, ends second 0, ttft 100 ms
    ts.add(_record(0.0, [0.3, 0.5], tokens=2))            # ok, ends second 0, ttft 300 ms
    ts.add(_record(0.5, [], tokens=0, ok=False, ended_s=1.2))  # failed in second 1
    rows = ts.rows()
    assert rows[0]["ttft_p50_ms"] == pytest.approx(200.0)
    assert rows[0]["success_rate_pct"] == 100.0
    assert rows[1]["requests_failed"] == 1
    assert rows[1]["ttft_p50_ms"] is None  # nothing ok finished there: a gap, not 0
    assert rows[1]["success_rate_pct"] == pytest.approx(200 / 3)


def test_finalised_seconds_free_their_raw_values_but_keep_percentiles():
    ts = TimeSeries(start_ns=0)
    ts.add(_record(0.0, [0.1, 0.2], tokens=2))
    ts.finalise_until(1)
    assert ts._rows[0].lat is None  # memory bounded by seconds, not requests
    assert ts.rows()[0]["ttft_p50_ms"] == pytest.approx(100.0)
    ts.add(_record(0.0, [0.4, 0.5], tokens=2))  # a late record still counts
    assert ts.rows()[0]["requests_ok"] == 2


def test_warmup_records_are_counted_apart_and_excluded_from_every_figure():
    records = [dict(_rec(ttft=5000.0), warmup=True), dict(_rec(ok=False, kind="timeout"), warmup=True),
               _rec(ttft=100.0), _rec(ttft=200.0)]
    s = summarise(records, duration_s=1.0)
    assert s["requests"]["warmup"] == 2
    assert s["requests"]["total"] == 2 and s["requests"]["failed"] == 0 and s["errors"] == {}
    assert s["ttft_ms"]["max"] == 200.0
    assert s["throughput"]["output_tokens_total"] == 6


def test_goodput_counts_successful_requests_within_every_bound():
    """vLLM's goodput: a request counts when it is ok and each bounded value meets its bound."""
    records = [_rec(ttft=100.0), _rec(ttft=900.0), _rec(ttft=300.0, itl=(100.0, 100.0)),
               _rec(ok=False, ttft=50.0, kind="timeout")]
    bounds = {"ttft_ms": ("<", 800.0), "e2e_ms": ("<=", 400.0)}
    s = summarise(records, duration_s=2.0, bounds=bounds)
    # e2e: 130 ok, 930 (ttft fails anyway), 500 > 400 fails -> only the first is good
    assert s["goodput"]["requests_per_s"] == pytest.approx(0.5)
    assert s["goodput"]["pct"] == pytest.approx(25.0)
    assert s["goodput"]["bounds"] == {"ttft_ms": 800.0, "e2e_ms": 400.0}
    unbounded = summarise(records, duration_s=2.0)
    assert unbounded["goodput"]["requests_per_s"] == unbounded["throughput"]["ok_requests_per_s"]


def test_queue_and_from_scheduled_distributions_are_summarised():
    records = [dict(_rec(ttft=100.0), queue_ms=0.0, ttft_from_scheduled_ms=100.0, e2e_from_scheduled_ms=130.0),
               dict(_rec(ttft=100.0), queue_ms=400.0, ttft_from_scheduled_ms=500.0, e2e_from_scheduled_ms=530.0)]
    s = summarise(records, duration_s=1.0)
    assert s["queue_ms"]["max"] == 400.0 and s["queue_ms"]["mean"] == 200.0
    assert s["ttft_from_scheduled_ms"]["p50"] == 300.0
    assert s["e2e_from_scheduled_ms"]["min"] == 130.0


def test_per_dataset_figures_only_when_records_carry_datasets():
    records = [dict(_rec(ttft=100.0), dataset="maths"), dict(_rec(ttft=300.0), dataset="maths"),
               dict(_rec(ok=False, kind="timeout"), dataset="coding"), _rec(ttft=50.0)]
    s = summarise(records, duration_s=2.0)
    assert set(s["datasets"]) == {"maths", "coding"}
    maths = s["datasets"]["maths"]
    assert maths["requests"] == 2
    assert maths["ok"] == 2 and maths["ttft_ms"]["p50"] == 200.0 and maths["output_tokens_per_s"] == 3.0
    assert s["datasets"]["coding"]["success_rate_pct"] == 0.0
    assert "datasets" not in summarise([_rec()], duration_s=1.0)


# -- Values: bounded memory for long runs -------------------------------------------------------


def test_values_below_the_limit_are_exactly_the_distribution_of_a_list():
    """Up to the exact limit nothing is approximated: the same dict as distribution(list)."""
    from sse_perf_tool.stats import Values

    data = [((i * 7919) % 1000) / 7.0 for i in range(500)]
    values = Values(exact_limit=500)
    values.extend(data[:3])
    for value in data[3:]:
        values.append(value)
    assert values.buckets is None and len(values) == 500
    assert values.distribution() == distribution(data)


@pytest.mark.parametrize("shape", ["lognormal", "with_zeros", "signed"])
def test_values_beyond_the_limit_keep_count_min_max_exact_and_percentiles_within_the_step(shape):
    """Folded into log buckets: count, min and max exact, mean to float rounding, every percentile
    within RELATIVE_STEP/2 of numpy-style linear interpolation on all the values."""
    import random

    from sse_perf_tool.stats import RELATIVE_STEP, Values

    rng = random.Random(7)
    draw = {"lognormal": lambda: rng.lognormvariate(3, 1),
            "with_zeros": lambda: rng.choice([0.0, 0.0, rng.uniform(0, 50)]),
            "signed": lambda: rng.uniform(-5, 5)}[shape]
    data = [draw() for _ in range(20_000)]
    values = Values(exact_limit=1_000)
    for start in range(0, len(data), 9):  # batches like the ITL lists of requests
        values.extend(data[start:start + 9])
    got, want = values.distribution(), distribution(data)
    assert values.buckets is not None and len(values.exact) == 0, "folded: no value is kept"
    assert got["count"] == want["count"] and got["min"] == want["min"] and got["max"] == want["max"]
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-9, abs=1e-9)
    for key in ("p50", "p90", "p95", "p99"):
        assert got[key] == pytest.approx(want[key], rel=RELATIVE_STEP / 2, abs=1e-12), key


def test_values_memory_grows_with_the_range_not_the_count():
    """A million values in a narrow range fold into a few thousand buckets."""
    from sse_perf_tool.stats import Values

    values = Values(exact_limit=1_000)
    batch = [20.0 + (i % 1000) / 1000.0 for i in range(1000)]
    for _ in range(1000):
        values.extend(batch)
    assert len(values) == 1_000_000
    assert values.bucket_count() < 600  # ln(21/20) / 1e-4 ≈ 488 buckets


def test_values_histogram_is_dense_counts_between_the_extremes_and_clamps_absurd_magnitudes():
    """A wide range costs 8 bytes per bucket between the smallest and largest value; magnitudes
    beyond the bucketed range share its end buckets, while min and max stay exact."""
    from sse_perf_tool.stats import LARGEST_BUCKETED, RELATIVE_STEP, SMALLEST_BUCKETED, Values

    values = Values(exact_limit=10)
    spread = [1.0 * 10 ** (i % 7) for i in range(10_000)]  # 1 ms .. 1,000 s, 7 decades
    values.extend(spread[:20])
    for start in range(20, len(spread), 50):
        values.extend(spread[start:start + 50])
    expected = math.log(1e6) / math.log1p(RELATIVE_STEP)
    assert expected <= values.bucket_count() <= expected + 2
    assert values.dense.itemsize * len(values.dense) < 1.2e6
    got = values.distribution()
    assert got["min"] == 1.0 and got["max"] == 1e6 and got["count"] == 10_000
    assert got["p50"] == pytest.approx(1000.0, rel=RELATIVE_STEP / 2)

    extreme = Values(exact_limit=1)
    extreme.extend([1e-12, 5.0, 1e15, 1e-300])
    assert extreme.bucket_count() <= math.log(LARGEST_BUCKETED / SMALLEST_BUCKETED) / math.log1p(RELATIVE_STEP) + 2
    out = extreme.distribution()
    assert out["min"] == 1e-300 and out["max"] == 1e15 and out["count"] == 4
    assert out["p50"] == pytest.approx((SMALLEST_BUCKETED + 5.0) / 2, rel=1e-3)


def test_empty_answers_finish_reasons_and_token_sources_are_counted():
    """requests.empty counts ok requests with no token-bearing event; finish_reasons count every
    request ("none" when the server gave none) and appear only when some request had one;
    tokens.sources counts the successful requests by where their token count came from."""
    records = [dict(_rec(ttft=100.0), chunks=3, finish_reason="stop", token_source="usage"),
               dict(_rec(ttft=1.0), chunks=0, finish_reason="stop", token_source="usage"),
               dict(_rec(ok=False, ttft=50.0, kind="truncated"), chunks=1, finish_reason=None, token_source="tokenizer")]
    s = summarise(records, duration_s=1.0)
    assert s["requests"]["empty"] == 1 and s["requests"]["ok"] == 2
    assert s["finish_reasons"] == {"stop": 2, "none": 1}
    assert s["tokens"]["sources"] == {"usage": 2}
    assert "finish_reasons" not in summarise([dict(_rec(ttft=1.0), chunks=1)], duration_s=1.0)


def test_the_usage_checked_by_the_tokenizer_adds_up_to_tokens_check():
    records = [dict(_rec(tokens=10), token_source="usage", tokenizer_tokens=12) for _ in range(3)]
    records += [dict(_rec(tokens=10), token_source="usage"), dict(_rec(tokens=5), token_source="tokenizer",
                                                                   tokenizer_tokens=5)]
    check = summarise(records, duration_s=1.0)["tokens"]["check"]
    assert check == {"requests": 3, "usage_tokens": 30, "tokenizer_tokens": 36, "disagree_pct": 20.0}
    assert "check" not in summarise([_rec()], duration_s=1.0)["tokens"]
