"""slo: --slo grammar, verdicts against a summary, goodput per-request bounds."""

import argparse

import pytest

from sse_perf_tool.config import ConfigError
from sse_perf_tool.slo import SLO_HELP, Slo, all_met, evaluate_slos, meets_bounds, parse_slos, request_bounds, value_of


@pytest.mark.parametrize(
    "text,metric,op,limit,unit",
    [
        ("ttft_p95<800ms", "ttft_p95", "<", 800.0, "ms"),
        ("ttft_p95<800", "ttft_p95", "<", 800.0, "ms"),  # ms is the default latency unit
        ("e2e_p99<=20s", "e2e_p99", "<=", 20000.0, "ms"),  # s is converted to ms
        ("tpot_mean < 0.06 s", "tpot_mean", "<", 60.0, "ms"),
        ("  TTFT_P95 <= 800 MS ", "ttft_p95", "<=", 800.0, "ms"),  # case and spaces do not matter
        ("itl_max<1e3", "itl_max", "<", 1000.0, "ms"),
        ("ttft_from_scheduled_p90<.5s", "ttft_from_scheduled_p90", "<", 500.0, "ms"),
        ("e2e_from_scheduled_p50<900", "e2e_from_scheduled_p50", "<", 900.0, "ms"),
        ("queue_p99<=0", "queue_p99", "<=", 0.0, "ms"),
        ("ttfb_min>1", "ttfb_min", ">", 1.0, "ms"),
        ("ttfo_p50<1000", "ttfo_p50", "<", 1000.0, "ms"),
        ("success>=99.5%", "success", ">=", 99.5, "%"),
        ("success>=99.5", "success", ">=", 99.5, "%"),  # % is optional
        ("error_rate<1 %", "error_rate", "<", 1.0, "%"),
        ("goodput_pct>=90", "goodput_pct", ">=", 90.0, "%"),
        ("goodput>2.5", "goodput", ">", 2.5, "/s"),
        ("requests_per_s>=10", "requests_per_s", ">=", 10.0, "/s"),
        ("rps>=10", "requests_per_s", ">=", 10.0, "/s"),  # alias
        ("TPS>500/s", "output_tokens_per_s", ">", 500.0, "/s"),  # alias, explicit /s
    ],
)
def test_valid_terms_parse_to_canonical_metric_and_unit(text, metric, op, limit, unit):
    (slo,) = parse_slos(text)
    assert slo == Slo(text.strip(), metric, op, limit, unit)


def test_several_terms_keep_order_and_skip_empty_ones():
    slos = parse_slos("ttft_p95<800ms, tpot_mean<=60,,success>=99%,")
    assert [s.metric for s in slos] == ["ttft_p95", "tpot_mean", "success"]
    assert [s.expr for s in slos] == ["ttft_p95<800ms", "tpot_mean<=60", "success>=99%"]


@pytest.mark.parametrize(
    "text,needles",
    [
        ("", ["empty"]),
        (" , ,", ["empty"]),
        ("ttft_p96<800ms", ["unknown metric 'ttft_p96' in 'ttft_p96<800ms'",
                            "did you mean 'ttft_p9", "stats: mean, min, p50"]),
        ("ttf_p95<800", ["unknown metric 'ttf_p95'", "did you mean 'ttft_p95'"]),
        ("sucess>=99", ["unknown metric 'sucess'", "did you mean 'success'"]),
        ("ttft_p95 800ms", ["'ttft_p95 800ms'", "needs an operator"]),
        ("ttft_p95==800", ["needs an operator"]),
        ("<800", ["needs a metric"]),
        ("ttft_p95<", ["needs a value"]),
        ("ttft_p95<8x0", ["bad number '8x0'"]),
        ("ttft_p95<nan", ["bad number 'nan'"]),
        ("ttft_p95<inf", ["bad number 'inf'"]),
        ("ttft_p95<-inf", ["bad number '-inf'"]),
        ("ttft_p95<1e999", ["bad number '1e999'"]),
        ("ttft_p95<1_000", ["bad number"]),
        ("ttft_p95<-5ms", ["negative", "'ttft_p95<-5ms'"]),
        ("success>=99s", ["unit 's' does not fit success", "use %"]),
        ("ttft_p95<80%", ["unit '%' does not fit ttft_p95", "ms or s"]),
        ("ttft_p95<800us", ["unit 'us' does not fit ttft_p95"]),
        ("rps>=10ms", ["unit 'ms' does not fit requests_per_s"]),
        ("tps>1s", ["unit 's' does not fit output_tokens_per_s"]),
        ("goodput>1%", ["unit '%' does not fit goodput"]),
        ("success>=150%", ["above 100"]),
        ("ttft_p95<800,tpot_mean<abc", ["bad number 'abc'", "tpot_mean<abc"]),  # names the bad term
    ],
)
def test_bad_terms_raise_one_line_naming_the_problem(text, needles):
    with pytest.raises(ConfigError) as info:
        parse_slos(text)
    message = str(info.value)
    assert message.startswith("--slo: ") and "\n" not in message
    for needle in needles:
        assert needle in message


def test_help_lists_every_metric_kind_and_survives_argparse():
    for name in ("ttft", "ttft_from_scheduled", "p95", "success", "error_rate", "goodput_pct", "rps", "tps"):
        assert name in SLO_HELP
    parser = argparse.ArgumentParser()
    parser.add_argument("--slo", help=SLO_HELP)
    assert "goodput_pct" in parser.format_help()  # a bare '%' would break argparse's %-formatting


SUMMARY = {
    "requests": {"total": 200, "ok": 199, "failed": 1, "success_rate_pct": 99.5},
    "throughput": {"requests_per_s": 10.0, "output_tokens_total": 9000, "output_tokens_per_s": 450.0},
    "ttft_ms": {"count": 199, "mean": 400.0, "min": 100.0, "p50": 380.0, "p90": 700.0,
                "p95": 800.0, "p99": 950.0, "max": 1200.0},
    "tpot_ms": {"count": 0, "mean": None, "min": None, "p50": None, "p90": None,
                "p95": None, "p99": None, "max": None},
    "goodput": {"requests_per_s": 8.0, "pct": 80.0, "bounds": {"ttft_ms": 800.0}},
}


@pytest.mark.parametrize(
    "text,value,met",
    [
        ("ttft_p95<800", 800.0, False),  # boundary: < is strict
        ("ttft_p95<=800", 800.0, True),  # boundary: <= includes the limit
        ("ttft_p99<0.9s", 950.0, False),
        ("ttft_mean>=400", 400.0, True),
        ("ttft_min>100", 100.0, False),
        ("success>=99.5%", 99.5, True),
        ("error_rate<=0.5", 0.5, True),  # error rate = 100 - success rate
        ("rps>=10", 10.0, True),
        ("tps>500", 450.0, False),
        ("goodput>=8", 8.0, True),
        ("goodput_pct>90", 80.0, False),
        ("tpot_p95<60", None, False),  # empty distribution: no value, never met
        ("e2e_p95<2000", None, False),  # section missing from the summary
        ("queue_max<10", None, False),
    ],
)
def test_evaluate_reads_the_value_and_compares(text, value, met):
    (verdict,) = evaluate_slos(parse_slos(text), SUMMARY)
    slo = parse_slos(text)[0]
    assert verdict == {"expr": slo.expr, "metric": slo.metric, "op": slo.op, "limit": slo.limit,
                       "unit": slo.unit, "value": value, "met": met}


def test_missing_sections_give_none_not_a_crash():
    """A summary without requests/throughput/goodput (or with nulls) yields None for each metric."""
    empty = {"requests": {"success_rate_pct": None}, "goodput": None}
    for text in ("success>=99", "error_rate<1", "rps>1", "tps>1", "goodput>1", "goodput_pct>1", "ttft_p50<1"):
        assert value_of(parse_slos(text)[0], empty) is None
        assert value_of(parse_slos(text)[0], {}) is None


def test_all_met_needs_every_verdict():
    assert all_met(evaluate_slos(parse_slos("ttft_p95<=800,rps>=10"), SUMMARY))
    assert not all_met(evaluate_slos(parse_slos("ttft_p95<=800,rps>=11"), SUMMARY))
    assert all_met([])


def test_request_bounds_take_goodput_families_and_keep_the_tightest():
    slos = parse_slos("ttft_p95<800, ttft_p50<=500, tpot_mean<60, tpot_p99<=60, e2e_max<=20s, "
                      "ttfo_p90<0.9s, ttft_from_scheduled_p99<2000, e2e_from_scheduled_p50<=3000, "
                      "itl_p95<50, ttfb_p95<100, queue_p99<10, success>=99, rps>1, goodput>1")
    assert request_bounds(slos) == {
        "ttft_ms": ("<=", 500.0),  # smallest upper limit wins, whatever the stat
        "tpot_ms": ("<", 60.0),  # same limit: the strict operator is tighter
        "e2e_ms": ("<=", 20000.0),
        "ttfo_ms": ("<", 900.0),
        "ttft_from_scheduled_ms": ("<", 2000.0),
        "e2e_from_scheduled_ms": ("<=", 3000.0),
    }  # itl, ttfb, queue and non-latency SLOs give no per-request bound


def test_request_bounds_lower_bounds_keep_the_largest_and_upper_beats_lower():
    assert request_bounds(parse_slos("ttft_p50>100, ttft_p95>=300")) == {"ttft_ms": (">=", 300.0)}
    assert request_bounds(parse_slos("ttft_p50>=300, ttft_p95>300")) == {"ttft_ms": (">", 300.0)}
    assert request_bounds(parse_slos("ttft_p50>100, ttft_p95<800")) == {"ttft_ms": ("<", 800.0)}
    assert request_bounds(parse_slos("ttft_p95<800, ttft_p50>100")) == {"ttft_ms": ("<", 800.0)}
    assert request_bounds(parse_slos("success>=99")) == {}


BOUNDS = {"ttft_ms": ("<", 800.0), "tpot_ms": ("<=", 60.0)}


@pytest.mark.parametrize(
    "record,meets",
    [
        ({"ok": True, "ttft_ms": 500.0, "tpot_ms": 60.0}, True),  # <= includes the limit
        ({"ok": True, "ttft_ms": 800.0, "tpot_ms": 10.0}, False),  # < excludes the limit
        ({"ok": True, "ttft_ms": 500.0, "tpot_ms": 61.0}, False),
        ({"ok": True, "ttft_ms": 500.0, "tpot_ms": None}, True),  # TPOT undefined (<2 tokens): meets, as vLLM
        ({"ok": True, "ttft_ms": None, "tpot_ms": 10.0}, False),  # any other null fails
        ({"ok": True, "tpot_ms": 10.0}, False),  # a missing field fails too
        ({"ok": False, "ttft_ms": 500.0, "tpot_ms": 10.0}, False),  # failed requests never count
        ({"ttft_ms": 500.0, "tpot_ms": 10.0}, False),
    ],
)
def test_meets_bounds(record, meets):
    assert meets_bounds(record, BOUNDS) is meets


def test_meets_bounds_without_bounds_counts_every_ok_request():
    assert meets_bounds({"ok": True, "ttft_ms": None}, {})
    assert not meets_bounds({"ok": False}, {})


def test_lower_bound_on_a_request_field():
    assert meets_bounds({"ok": True, "e2e_ms": 300.0}, {"e2e_ms": (">=", 300.0)})
    assert not meets_bounds({"ok": True, "e2e_ms": 300.0}, {"e2e_ms": (">", 300.0)})
