"""The metric registry (sse_perf_tool/metrics.py) and what reads it: every distribution is in the
summary under its field, the SLO parser and goodput know it, and the tables take their columns
and labels from it. Also the per-request tokens/s metric end to end (records -> summary -> SLO ->
goodput -> compare)."""

from __future__ import annotations

from array import array

import pytest

from sse_perf_tool import compare, history, history_view, live, metrics, slo, stats
from sse_perf_tool.config import ConfigError
from sse_perf_tool.records import RECORD_FIELDS, RequestRecord

MS = 1_000_000  # ns


def _record(tokens: int, token_times_ms: list[float], ok: bool = True) -> RequestRecord:
    rec = RequestRecord(request_id=1, thread_id=1, query="q", dataset=None, started_at=0.0, sent_ns=0)
    rec.ok = ok
    rec.output_tokens = tokens
    rec.token_times_ns = array("q", (int(t * MS) for t in token_times_ms))
    if token_times_ms:
        rec.first_byte_ns = rec.first_token_ns = rec.first_answer_ns = rec.token_times_ns[0]
    rec.ended_ns = rec.last_token_ns or 0
    return rec


def test_every_distribution_is_a_record_field_and_a_summary_key():
    summary = stats.summarise([_record(4, [100, 110, 120, 130]).to_dict()], 1.0)
    for m in metrics.DISTRIBUTIONS:
        assert m.field in RECORD_FIELDS, m.key
        assert list(summary[m.field]) == list(metrics.DIST_KEYS), m.key
    assert [k for k in summary if k in metrics.BY_FIELD] == [m.field for m in metrics.DISTRIBUTIONS]


def test_labels_exist_in_every_language_and_keys_are_unique():
    assert len(metrics.BY_KEY) == len(metrics.DISTRIBUTIONS)
    for m in metrics.DISTRIBUTIONS:
        for text in (m.label, m.short, m.describe):
            assert text["en"].strip() and text["zh"].strip(), m.key
        assert m.direction in (metrics.LOWER, metrics.HIGHER)
        assert all(stat in metrics.STATS for attr in ("series", "live", "compare", "history", "level", "curve")
                   for stat in getattr(m, attr)), m.key
    for f in metrics.FIGURES:
        assert f.label["en"] and f.label["zh"], f.name


def test_request_tps_is_output_tokens_over_the_streaming_time():
    rec = _record(30, [100.0 + 5 * i for i in range(30)])  # 29 gaps of 5 ms: 145 ms of streaming
    assert rec.request_tps == pytest.approx(30 / 0.145)
    assert rec.to_dict()["request_tps"] == pytest.approx(30 / 0.145, abs=1e-3)
    assert _record(5, [100.0]).request_tps is None, "one event: E2E = TTFT, undefined"
    assert _record(0, []).request_tps is None


def test_every_slo_family_parses_with_its_unit():
    for m in metrics.select(slo=True):
        (parsed,) = slo.parse_slos(f"{m.key}_p95 {'<' if m.direction == metrics.LOWER else '>='} 10")
        assert parsed.unit == ("ms" if m.unit == "ms" else "/s"), m.key
    with pytest.raises(ConfigError, match="does not fit request_tps_p50"):
        slo.parse_slos("request_tps_p50>=20ms")
    assert "request_tps_<stat> (tokens/s per request)" in slo.SLO_HELP


def test_a_higher_is_better_bound_keeps_its_lower_limit_for_goodput():
    bounds = slo.request_bounds(slo.parse_slos("request_tps_p50>=20,request_tps_max<1000,ttft_p95<800"))
    assert bounds == {"request_tps": (">=", 20.0), "ttft_ms": ("<", 800.0)}
    fast, slow = _record(30, [100.0 + i for i in range(30)]), _record(30, [100.0 + 100 * i for i in range(30)])
    assert slo.meets_bounds(fast.to_dict(), bounds) and not slo.meets_bounds(slow.to_dict(), bounds)
    assert slo.meets_bounds(_record(1, [100.0]).to_dict(), bounds), "undefined below two events meets it, like TPOT"


def test_the_summary_judges_an_slo_on_request_tps():
    records = [_record(30, [100.0 + step * i for i in range(30)]).to_dict() for step in (1, 2, 100)]
    figures = stats.Figures(slo.request_bounds(slo.parse_slos("request_tps_p50>=100")))
    for rec in records:
        figures.add(rec)
    summary = figures.summary(1.0)
    assert summary["request_tps"]["count"] == 3
    assert summary["request_tps"]["p50"] == pytest.approx(30 / 0.058, rel=1e-4)
    assert summary["goodput"]["pct"] == pytest.approx(200 / 3)
    (verdict,) = slo.evaluate_slos(slo.parse_slos("request_tps_p50>=100"), summary)
    assert verdict["met"] and verdict["unit"] == "/s"


def test_tables_take_their_columns_from_the_registry():
    live_heads = live.header_line("en").split()
    for m, stat in metrics.stat_columns("live"):
        assert m.short["en"] in live_heads and stat in live_heads
    assert stats.TIMESERIES_COLUMNS[6:-3] == tuple(m.stat_name(s) for m, s in metrics.stat_columns("series"))
    names = [m.name for m in compare.METRICS]
    assert [m.stat_name(s) for m, s in metrics.stat_columns("compare")] == \
        [n for n in names if n not in {f.name for f in metrics.FIGURES}]
    assert compare.METRIC_BY_NAME["request_tps_p50"].direction == metrics.HIGHER
    assert {m.stat_name(s) for m, s in metrics.stat_columns("history")} <= set(history.FIGURES)
    assert {m.stat_name(s) for m, s in metrics.stat_columns("history")} <= set(history_view.LIST_FIELDS)


def test_the_terminal_summary_shows_request_tps_in_its_unit():
    summary = stats.summarise([_record(30, [100.0 + i for i in range(30)]).to_dict()], 1.0)
    summary["run"] = {"duration_s": 1.0}
    row = next(line for line in live.summary_lines(summary) if line.startswith("tok/s/req"))
    assert row.split()[1:4] == ["1", "1034.5", "1034.5"], "a rate with one decimal, not ms formatting"


def test_the_final_table_and_its_warnings_fit_80_columns():
    summary = stats.summarise([_record(30, [100.0 + i for i in range(30)]).to_dict()], 1.0)
    summary["run"] = {"duration_s": 1.0, "stopped_early": "word " * 60}
    lines = live.summary_lines(summary)
    assert all(live._cell_width(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert sum(line.startswith("!! stopped early") for line in lines) == 1 and lines[-1].startswith("   ")


def test_the_chinese_final_summary_fits_80_terminal_cells_too():
    """textwrap counts characters: a Chinese warning wrapped at 80 of them was 160 cells wide."""
    summary = stats.summarise([_record(30, [100.0 + i for i in range(30)]).to_dict()], 1.0)
    summary["run"] = {"duration_s": 1.0, "stopped_early": "服务端在最近五十个请求中的错误率超过了设定的上限" * 4}
    lines = live.summary_lines(summary, "zh")
    assert all(live._cell_width(line) <= 80 for line in lines), max(lines, key=live._cell_width)
    wrapped = [line for line in lines if "错误率" in line]
    assert len(wrapped) >= 3 and all(line.startswith("   ") for line in wrapped[1:])


def test_wrap_cells_breaks_at_spaces_and_between_wide_characters():
    assert live.wrap_cells("alpha beta gamma", 11) == ["alpha beta", "gamma"]
    assert live.wrap_cells("alpha beta gamma", 11, indent="  ") == ["alpha beta", "  gamma"]
    assert live.wrap_cells("你好世界再见", 8) == ["你好世界", "再见"]  # 2 cells each
    assert live.wrap_cells("query 你好世界", 10, first="> ") == ["> query 你", "好世界"]
    assert live.wrap_cells("http://a-very-long-host-name.example/v1", 10) == ["http://a-very-long-host-name.example/v1"]
    assert live.wrap_cells("", 10) == [""]
