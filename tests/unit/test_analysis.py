"""analysis (the digest a model is shown, analysis.md), report_analysis (the model's text as blocks,
never HTML) and mock_analysis (the mock's fixed answer): what is sent never holds a prompt, a key, a
header or a server's message; the digest fits its budget whole sections at a time; the file
round-trips with its secrets masked."""

from __future__ import annotations

import json
import math

import pytest

from sse_perf_tool import analysis, mock_analysis
from sse_perf_tool.analysis import (ANALYSIS_FILE, ANALYSIS_MARKER, CONTEXT_CHARS, SERIES_POINTS, SYSTEM, AnalysisError,
                                    build_digest, read_analysis, write_analysis)
from sse_perf_tool.masking import register_secrets
from sse_perf_tool.report_analysis import MAX_CHARS, analysis_blocks

SECRETS = ("SECRET-PROMPT-123", "app-KEY-456", "KEY-789", "/x/keys.txt", "EXTRA-BODY-SECRET", "LEAKED-MSG")


def _dist(p50: float) -> dict:
    return {"count": 10, "mean": p50, "min": p50 / 2, "p50": p50, "p90": p50 * 1.5, "p95": p50 * 1.8,
            "p99": p50 * 2, "max": p50 * 3}


def _level(threads: int) -> dict:
    return {"level": {"threads": threads}, "from_s": 0, "to_s": 60, "warmup_to_s": None,
            "requests": {"total": 100, "ok": 99, "failed": 1, "not_sent": 0},
            "errors": {"http_500": 1}, "errors_by_status": {"500": 1},
            "top_errors": [{"message": f"LEAKED-MSG level {threads}: the prompt was SECRET-PROMPT-123", "count": 1}],
            "throughput": {"requests_per_s": 1.5 * threads, "output_tokens_per_s": 90.0 * threads},
            "goodput": {"requests_per_s": 1.4 * threads, "pct": 99.0},
            "ttft_ms": _dist(40.0 + threads), "tpot_ms": _dist(9.0), "e2e_ms": _dist(900.0), "itl_ms": _dist(9.5),
            "queue_ms": _dist(3.0), "meets_slo": threads < 8}


def make_summary(levels: int = 3) -> dict:
    return {
        "run": {
            "started_at": 1796221915.1, "ended_at": 1796225515.1, "duration_s": 3600.0, "api": "openai-chat",
            "base_url": "http://user:pw@host/v1", "threads": 8, "tool_version": "0.1.0",
            "request_id_prefix": "3c589f15-2057-45ff-b8b6-",
            "config": {
                "base_url": "http://user:pw@host/v1", "api": "openai-chat", "threads": 8, "duration_s": 3600.0,
                "query": "SECRET-PROMPT-123", "api_key": "app-KEY-456", "api_key_file": "/x/keys.txt",
                "headers": ["X-Api-Key: KEY-789"], "extra_body": {"note": "EXTRA-BODY-SECRET"},
                "model": "qwen2.5-7b", "ssh_key": "/x/id_ed25519", "known_hosts": "/x/known_hosts",
            },
        },
        "requests": {"total": 5400, "ok": 5399, "failed": 1, "warmup": 0, "not_sent": 0},
        "errors": {"http_500": 1},
        "errors_by_status": {"500": 1},
        "top_errors": [{"message": "LEAKED-MSG: upstream said SECRET-PROMPT-123 is too long", "count": 1}],
        "throughput": {"requests_per_s": 1.5, "ok_requests_per_s": 1.5, "output_tokens_total": 324000,
                       "output_tokens_per_s": 90.0},
        "ttft_ms": _dist(45.0), "tpot_ms": _dist(9.0), "e2e_ms": _dist(900.0),
        "queue_ms": _dist(3.0), "ttft_from_scheduled_ms": _dist(48.0), "e2e_from_scheduled_ms": _dist(903.0),
        "finish_reasons": {"stop": 5399},
        "goodput": {"requests_per_s": 1.5, "pct": 99.98, "bounds": {}},
        "levels": [_level(2 ** i) for i in range(levels)],
        "findings": [
            {"id": "queue_building", "severity": "warning", "text": "TTFT grew from 40 ms to 400 ms", "from_s": 120,
             "to_s": 3600, "evidence": {"slope": 0.1}, "title": "A queue builds", "suggestion": "fewer threads"},
            {"id": "few_requests", "severity": "info", "text": "4 successful requests", "from_s": None, "to_s": None},
            "not a finding",
        ],
    }


def make_rows(seconds: int = 3600) -> list[dict]:
    return [{"second": s, "active_threads": 8, "requests_started": 2, "requests_ok": 1 + s % 2, "requests_failed": 0,
             "output_tokens": 90 + s % 7, "ttft_p50_ms": 40.0 + s % 10, "ttft_p95_ms": 80.25 + s % 3,
             "tpot_p50_ms": 9.0, "e2e_p95_ms": 950.0, "success_rate_pct": 100.0, "phase": "measure", "level": None,
             "gpu[0].util_pct": 80.0 + s % 5}
            for s in range(seconds)]


def dumped(digest: dict) -> str:
    return json.dumps(digest, ensure_ascii=False)


def points_of(digest: dict) -> int:
    return len((digest["series"] or {}).get("from_s") or ())


# -- what is never sent --------------------------------------------------------------------------
def test_the_digest_never_holds_a_prompt_a_key_a_header_value_or_a_servers_error_message():
    summary = make_summary()
    for max_chars in (10 ** 9, CONTEXT_CHARS, 6000):
        digest = build_digest(summary, make_rows(), max_chars)
        text = dumped(digest)
        for secret in SECRETS:
            assert secret not in text, (max_chars, secret)
        assert ":pw@" not in text
        assert digest["options"]["base_url"] == "http://user:…@host/v1"
        assert digest["summary"]["run"]["base_url"] == "http://user:…@host/v1"
        assert "request_id_prefix" not in digest["summary"]["run"]
        for dropped in ("query", "api_key", "api_key_file", "headers", "extra_body", "ssh_key", "known_hosts"):
            assert dropped not in digest["options"]
        assert digest["options"]["model"] == "qwen2.5-7b"  # what is not secret stays
    assert summary["run"]["config"]["query"] == "SECRET-PROMPT-123"  # the summary itself is left as it was
    assert summary["top_errors"][0]["message"].startswith("LEAKED-MSG")


def test_the_digest_masks_the_password_of_the_llm_base_url_in_the_options():
    # summary.json keeps run.config as RunConfig.masked() made it, which leaves llm_base_url as given
    summary = make_summary()
    summary["run"]["config"]["llm_base_url"] = "http://ops:llm-pass-321@gpu1:8000/v1"
    text = dumped(build_digest(summary, make_rows(10), 10 ** 9))
    assert "llm-pass-321" not in text


def test_the_digest_has_no_nan_or_infinity_it_is_strict_json():
    summary = make_summary()
    summary["throughput"]["requests_per_s"] = float("nan")
    summary["goodput"]["pct"] = float("inf")
    digest = build_digest(summary, make_rows(10), 10 ** 9)
    # the non-finite floats become null (what `_finite` is for): a model's server reads strict JSON
    assert digest["summary"]["throughput"]["requests_per_s"] is None
    assert digest["summary"]["goodput"]["pct"] is None
    assert "NaN" not in dumped(digest) and "Infinity" not in dumped(digest)


# -- what is kept, and how it is reduced -------------------------------------------------------------
def test_the_digest_keeps_findings_levels_and_the_series_in_at_most_120_points():
    summary = make_summary()
    digest = build_digest(summary, make_rows(3600), 10 ** 9)
    assert digest["findings"] == [
        {"id": "queue_building", "severity": "warning", "text": "TTFT grew from 40 ms to 400 ms", "from_s": 120,
         "to_s": 3600},
        {"id": "few_requests", "severity": "info", "text": "4 successful requests", "from_s": None, "to_s": None},
    ]
    assert [lv["level"] for lv in digest["levels"]] == [{"threads": 1}, {"threads": 2}, {"threads": 4}]
    assert all("top_errors" not in lv for lv in digest["levels"])
    assert digest["levels"][0]["itl_ms"]["p50"] == 9.5  # the detail, while it fits
    assert digest["summary"]["requests"]["ok"] == 5399 and digest["summary"]["queue_ms"]["p50"] == 3.0
    series = digest["series"]
    assert series["seconds_per_point"] == 30
    assert len(series["from_s"]) == 120 and series["from_s"][:3] == [0, 30, 60]
    assert "gpu[0].util_pct" in series and "ttft_p50_ms" in series and "phase" not in series
    for column, values in series.items():
        if column != "seconds_per_point":
            assert len(values) == 120, column
    # each point is the mean of its 30 seconds
    assert series["ttft_p50_ms"][0] == pytest.approx(sum(40.0 + s % 10 for s in range(30)) / 30, abs=0.01)


def test_a_short_run_keeps_every_second():
    digest = build_digest(make_summary(), make_rows(10), 10 ** 9)
    assert digest["series"]["seconds_per_point"] == 1
    assert digest["series"]["from_s"] == list(range(10))


def test_a_smaller_budget_makes_the_series_coarser_then_drops_it_then_the_detail_never_cutting_a_record():
    summary, rows = make_summary(levels=6), make_rows(3600)
    findings = build_digest(summary, rows, 10 ** 9)["findings"]
    budget = 10 ** 9
    seen = []  # (points, detail kept) of each digest as the budget shrinks
    for _ in range(20):  # bounded: 10 configurations at most, then AnalysisError
        try:
            digest = build_digest(summary, rows, budget)
        except AnalysisError as exc:
            assert f"{budget:,}" in str(exc) and "--llm-context-chars" in str(exc)
            break
        text = dumped(digest)
        assert len(text) <= budget
        assert json.loads(text) == digest  # whole JSON, never cut mid-record
        assert digest["summary"]["requests"] == summary["requests"]
        assert digest["findings"] == findings
        assert len(digest["levels"]) == 6
        for level in digest["levels"]:
            assert level["level"] and level["requests"]["ok"] == 99 and set(level["ttft_ms"]) >= {"p50", "p95", "p99"}
        series = digest["series"]
        if series:
            n = len(series["from_s"])
            assert all(len(v) == n for k, v in series.items() if k != "seconds_per_point")
            assert series["seconds_per_point"] == math.ceil(3600 / n)
        detail = "queue_ms" in digest["summary"]
        assert detail == ("itl_ms" in digest["levels"][0])  # the summary's and the levels' detail go together
        seen.append((points_of(digest), detail))
        budget = len(text) - 1
    else:
        pytest.fail("the digest never stopped fitting")
    assert seen[:5] == [(120, True), (60, True), (30, True), (15, True), (0, True)]
    assert len(seen) > 5 and not seen[5][1]  # then the detail goes
    assert seen[-1] == (0, False)  # the essentials alone are the last that fits


def test_the_finest_series_that_fits_is_kept():
    summary, rows = make_summary(), make_rows(3600)
    sizes = {}
    budget = 10 ** 9
    for _ in range(len(SERIES_POINTS) + 1):
        digest = build_digest(summary, rows, budget)
        sizes[points_of(digest)] = len(dumped(digest))
        budget = len(dumped(digest)) - 1
    assert list(sizes) == [120, 60, 30, 15, 0]
    assert points_of(build_digest(summary, rows, sizes[60])) == 60  # exactly its size fits
    assert points_of(build_digest(summary, rows, sizes[120] - 1)) == 60


def test_a_budget_too_small_for_the_essentials_is_an_analysis_error():
    with pytest.raises(AnalysisError, match="--llm-context-chars"):
        build_digest(make_summary(), make_rows(3600), 500)


def test_an_empty_run_makes_a_digest_without_series():
    digest = build_digest({"run": {}, "requests": {"total": 0, "ok": 0}}, [], 10 ** 9)
    assert digest["series"] == {} and digest["findings"] == [] and digest["levels"] == []
    assert digest["summary"]["requests"] == {"total": 0, "ok": 0}


# -- the model's text as blocks ----------------------------------------------------------------------
def test_headings_paragraphs_lists_and_code_become_blocks():
    text = ("# Capacity\n"
            "The service holds 8 threads\n"
            "with TTFT p95 under 200 ms.\n"
            "\n"
            "## What limits it\n"
            "- the GPU at 98 %\n"
            "  of its compute\n"
            "* the scheduler\n"
            "1. run a sweep\n"
            "2) then a longer run\n"
            "\n"
            "```bash\n"
            "  sse-perf --sweep-threads 1,2,4\n"
            "\n"
            "    --duration 60\n"
            "```\n"
            "Last words.")
    assert analysis_blocks(text) == [
        {"kind": "h", "text": "Capacity"},
        {"kind": "p", "text": "The service holds 8 threads with TTFT p95 under 200 ms."},
        {"kind": "h", "text": "What limits it"},
        {"kind": "ul", "items": ["the GPU at 98 % of its compute", "the scheduler"]},
        {"kind": "ol", "items": ["run a sweep", "then a longer run"]},
        {"kind": "pre", "text": "  sse-perf --sweep-threads 1,2,4\n\n    --duration 60"},
        {"kind": "p", "text": "Last words."},
    ]


def test_a_paragraph_right_before_a_list_ends_there():
    assert analysis_blocks("Look at:\n- one\n- two") == [
        {"kind": "p", "text": "Look at:"}, {"kind": "ul", "items": ["one", "two"]}]


def test_html_in_the_answer_stays_literal_text():
    text = "The run <script>alert(1)</script> was fine <img src=x onerror=alert(1)> **bold** [a](javascript:x)"
    blocks = analysis_blocks(text)
    assert blocks == [{"kind": "p", "text": text}]
    code = analysis_blocks("```\n<script>alert(1)</script>\n```")
    assert code == [{"kind": "pre", "text": "<script>alert(1)</script>"}]


def test_an_unclosed_fence_keeps_the_rest_as_code():
    assert analysis_blocks("intro\n```\nline 1\n# not a heading") == [
        {"kind": "p", "text": "intro"}, {"kind": "pre", "text": "line 1\n# not a heading"}]


def test_an_answer_over_max_chars_is_cut_with_a_note():
    text = ("word " * 20 + "\n\n") * (MAX_CHARS // 100 + 50)
    assert len(text) > MAX_CHARS
    blocks = analysis_blocks(text)
    assert sum(len(b.get("text", "")) for b in blocks[:-1]) <= MAX_CHARS
    assert blocks[-1] == {"kind": "p", "text": f"(cut at {MAX_CHARS:,} of {len(text):,} characters)"}
    assert analysis_blocks("") == []


# -- analysis.md ---------------------------------------------------------------------------------------
def test_write_then_read_round_trips_who_wrote_it_and_the_text(tmp_path):
    text = "## Reading\n\nThe run is fine.\n\n- one\n- two\n"
    path = write_analysis(tmp_path, text, "qwen2.5-7b", "http://ops:pw-77@gpu1:8000/v1", "zh")
    assert path == tmp_path / ANALYSIS_FILE
    assert "pw-77" not in path.read_text(encoding="utf-8")
    got = read_analysis(tmp_path)
    assert got["model"] == "qwen2.5-7b"
    assert got["endpoint"] == "http://ops:…@gpu1:8000/v1"
    assert got["lang"] == "zh"
    assert got["written_at"] and got["written_at"].endswith("Z")
    assert got["text"] == text.strip()
    assert not (tmp_path / (ANALYSIS_FILE + ".tmp")).exists()


def test_the_server_default_model_is_named_so(tmp_path):
    write_analysis(tmp_path, "text", None, "http://gpu1:8000/v1", "en")
    assert read_analysis(tmp_path)["model"] == "(the server default)"


def test_a_registered_key_in_the_answer_is_masked_in_the_file(tmp_path):
    key = "sk-analysis-echoed-key-0123456789"
    register_secrets([key])
    write_analysis(tmp_path, f"The header carried {key} in clear.", "m", "http://gpu1:8000/v1", "en")
    content = (tmp_path / ANALYSIS_FILE).read_text(encoding="utf-8")
    assert key not in content
    assert "sk-…6789" in content


def test_a_folder_without_analysis_md_reads_as_none(tmp_path):
    assert read_analysis(tmp_path) is None
    assert read_analysis(tmp_path / "no-such-folder") is None


def test_a_file_without_front_matter_is_all_text(tmp_path):
    (tmp_path / ANALYSIS_FILE).write_text("## Notes\n\nwritten by hand\n", encoding="utf-8")
    assert read_analysis(tmp_path) == {"model": None, "endpoint": None, "written_at": None, "lang": None,
                                       "text": "## Notes\n\nwritten by hand"}


# -- the mock's side -----------------------------------------------------------------------------------
def test_the_mock_and_sse_perf_name_the_same_marker_and_every_system_prompt_names_it():
    assert mock_analysis.ANALYSIS_MARKER == analysis.ANALYSIS_MARKER == ANALYSIS_MARKER
    assert set(SYSTEM) >= {"en", "zh"}
    for lang, prompt in SYSTEM.items():
        assert ANALYSIS_MARKER in prompt, lang


def test_only_a_system_message_naming_the_marker_is_an_analysis_request():
    named = f"You read a run ({ANALYSIS_MARKER})."
    assert mock_analysis.is_analysis_request({"messages": [{"role": "system", "content": SYSTEM["en"]},
                                                           {"role": "user", "content": "{}"}]})
    assert mock_analysis.is_analysis_request({"messages": [{"role": "system", "content": named}]})
    assert not mock_analysis.is_analysis_request({"messages": [{"role": "user", "content": named}]})
    assert not mock_analysis.is_analysis_request({"messages": [{"role": "system", "content": "You are helpful."}]})
    assert not mock_analysis.is_analysis_request({"messages": [{"role": "assistant", "content": named}]})
    assert not mock_analysis.is_analysis_request({"prompt": named})
    assert not mock_analysis.is_analysis_request({"messages": None})
    assert not mock_analysis.is_analysis_request({"messages": [named]})


def test_the_mock_streams_its_fixed_analysis_as_chat_chunks_ending_in_done():
    events = mock_analysis.analysis_events("m")
    assert events[-1] == b"data: [DONE]\n\n"
    text = ""
    for event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        obj = json.loads(event[len(b"data: "):])
        assert obj["model"] == "m"
        for choice in obj["choices"]:
            text += choice["delta"].get("content") or ""
    assert text == mock_analysis.MOCK_ANALYSIS
