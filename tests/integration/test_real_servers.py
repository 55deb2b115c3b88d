"""Issue 13, end to end over loopback: sse-perf against servers that behave as llama-cpp-python,
vLLM and llama.cpp's server really do (the mock's switches; their sources are named in
mock_server.py and mock_tokenizer.py). Every run is short and bounded (--requests / --duration)."""

import json
from pathlib import Path

import pytest



def only_run_dir(parent: Path) -> Path:
    (run_dir,) = [p for p in parent.iterdir() if p.is_dir()]
    return run_dir


def records_of(run_dir: Path) -> list:
    return [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def base(server, tmp_path, *extra):
    return ["--base-url", server.base_url, "--output-dir", tmp_path, "--quiet", "--no-history", *extra]


def test_a_plain_run_against_a_request_id_validating_server_is_all_ok(make_mock, tmp_path, cli):
    """llama-cpp-python validates X-Request-Id as a UUID: sse-perf's ids are UUIDs, so every request is ok."""
    server = make_mock(like="llama-cpp-python")
    code, _, err = cli(base(server, tmp_path, "--api", "openai-chat", "--requests", 8))
    assert code == 0, err
    run_dir = only_run_dir(tmp_path)
    records = records_of(run_dir)
    assert len(records) == 8 and all(r["ok"] for r in records), records[0]["error"]
    assert all(r["finish_reason"] == "stop" for r in records)
    prefix = summary_of(run_dir)["run"]["request_id_prefix"]
    assert prefix and len(prefix) == 24


def test_a_header_request_id_overrides_and_an_empty_400_says_so_and_the_brake_stops_the_run(make_mock, tmp_path, cli):
    """--header 'X-Request-Id: …' is sent as given (here not a UUID): every request gets an empty 400,
    the message says "empty 400 body", the run stops after the first 20 (exit 3: none succeeded) with one line naming
    the error, the files are still written, and the history lists the run as failed."""
    server = make_mock(check_request_id=True)
    history = tmp_path / "h.db"
    args = ["--base-url", server.base_url, "--output-dir", tmp_path, "--quiet", "--history", history,
            "--api", "openai-chat", "--header", "X-Request-Id: not-a-uuid", "--duration", 30]
    code, out, err = cli(args)
    assert code == 3
    assert "each of the first 20 requests failed" in err and "empty 400 body" in err
    run_dir = only_run_dir(tmp_path)
    records = records_of(run_dir)
    assert 20 <= len(records) <= 22  # the 20 judged, and at most what was in flight
    assert records[0]["error"] == "HTTP 400: Bad Request (empty 400 body)"
    assert records[0]["token_source"] is None  # nothing was counted
    assert (run_dir / "report.html").is_file()
    summary = summary_of(run_dir)
    assert "each of the first 20" in summary["run"]["stopped_early"]
    code, out, _ = cli(["history", "--history", history, "--json"])
    assert json.loads(out)["runs"][0]["status"] == "failed"


def test_keep_going_runs_on_when_everything_fails(make_mock, tmp_path, cli):
    server = make_mock(check_request_id=True)
    code, _, err = cli(base(server, tmp_path, "--api", "openai-chat", "--header", "X-Request-Id: x",
                            "--requests", 25, "--keep-going"))
    assert code == 3, err  # it ran on to the end; none succeeded
    assert len(records_of(only_run_dir(tmp_path))) == 25


def test_no_request_id_sends_none_and_conflicts_with_a_header(make_mock, tmp_path, cli):
    server = make_mock(check_request_id=True)
    code, _, err = cli(base(server, tmp_path, "--api", "openai-chat", "--requests", 3, "--no-request-id"))
    assert code == 0, err
    assert summary_of(only_run_dir(tmp_path))["run"]["request_id_prefix"] is None
    code, _, err = cli(base(server, tmp_path / "b", "--no-request-id", "--header", "X-Request-Id: a"))
    assert code == 2 and "cannot be combined" in err and len(err.strip().splitlines()) == 1


def test_interrupted_streams_are_truncated_not_ok(make_mock, tmp_path, cli):
    """llama-cpp-python's default interrupt_requests cuts a running stream when another request arrives
    ([DONE], no finish_reason, no last chunk): at 2 threads those requests are `truncated`, and no ok
    request lacks a finish_reason."""
    server = make_mock(interrupt=True, ttft_ms=5, itl_ms=5, tokens=20)
    code, out, err = cli(base(server, tmp_path, "--api", "openai-chat", "--threads", 2, "--requests", 30,
                              "--keep-going"))
    assert code == 0, err
    records = records_of(only_run_dir(tmp_path))
    cut = [r for r in records if r["error_kind"] == "truncated"]
    assert cut and server.stats.snapshot()["interrupted"] >= len(cut) > 0
    assert all(r["finish_reason"] is None for r in cut)
    assert all(r["finish_reason"] == "stop" and r["output_tokens"] == 20 for r in records if r["ok"])
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["errors"]["truncated"] == len(cut)
    assert summary["finish_reasons"]["none"] == len(cut)


def test_empty_answers_are_ok_with_zero_tokens_and_counted_apart(make_mock, tmp_path, cli):
    server = make_mock(empty_rate=1.0)
    code, out, err = cli(base(server, tmp_path, "--api", "openai-completions", "--requests", 5))
    assert code == 0, err
    records = records_of(only_run_dir(tmp_path))
    assert all(r["ok"] and r["output_tokens"] == 0 and r["chunks"] == 0 for r in records)
    assert all(r["ttft_ms"] is None and r["tpot_ms"] is None for r in records)
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["requests"]["empty"] == 5 and summary["requests"]["ok"] == 5
    assert summary["ttft_ms"]["count"] == 0 and summary["ttft_ms"]["p50"] is None
    assert summary["tokens"]["sources"] == {"usage": 5}  # the server said 0 completion tokens
    assert "empty answers" in out


def test_empty_answers_without_usage_count_nothing_and_raise_no_tokenizer_note(make_mock, tmp_path, cli):
    """No text and no usage: nothing to count (token_source None), so no tiktoken warning either."""
    server = make_mock(empty_rate=1.0, usage=False)
    code, out, err = cli(base(server, tmp_path, "--api", "openai-chat", "--requests", 3, "--tokenizer", "server"))
    assert code == 0, err
    assert all(r["token_source"] is None for r in records_of(only_run_dir(tmp_path)))
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["tokens"]["sources"] == {"none": 3} and summary["tokens"]["note"] is None


@pytest.mark.parametrize("kind", ["vllm", "llama.cpp", "llama-cpp-python"])
def test_tokenizer_server_counts_with_the_servers_own_endpoint(kind, make_mock, tmp_path, cli):
    """--tokenizer server finds the target's tokenize endpoint and counts every answer there
    (token_source `server`); the mock's count of its own answer is the true 8 tokens."""
    server = make_mock(usage=False, tokenize=kind)
    code, out, err = cli(base(server, tmp_path, "--api", "openai-chat", "--threads", 2, "--requests", 6,
                              "--tokenizer", "server"))
    assert code == 0, err
    records = records_of(only_run_dir(tmp_path))
    assert all(r["token_source"] == "server" and r["output_tokens"] == 8 for r in records)
    assert server.stats.snapshot()["tokenize_requests"] >= 6 + 1  # the preflight probe, then one per answer
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["tokens"]["sources"] == {"server": 6} and summary["tokens"]["note"] is None
    assert summary["tokens"]["server"]["counted"] == 6


def test_tokenizer_server_without_an_endpoint_is_refused_before_any_load(make_mock, tmp_path, cli):
    server = make_mock(usage=False, tokenize="none")
    code, _, err = cli(base(server, tmp_path, "--api", "openai-chat", "--requests", 3, "--tokenizer", "server"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no tokenizer endpoint" in err
    assert server.stats.snapshot()["events_sent"] == 0


def test_tiktoken_counts_for_a_non_openai_model_say_so_once(make_mock, tmp_path, cli):
    server = make_mock(usage=False)
    code, out, err = cli(base(server, tmp_path, "--api", "openai-chat", "--model", "SmolLM2-135M", "--requests", 3))
    assert code == 0, err
    summary = summary_of(only_run_dir(tmp_path))
    assert summary["tokens"]["sources"] == {"tokenizer": 3}
    assert "tiktoken" in summary["tokens"]["note"] and "--tokenizer server" in summary["tokens"]["note"]
    assert out.count("tiktoken cl100k_base") == 1
    code, out, err = cli(base(server, tmp_path / "gpt", "--api", "openai-chat", "--model", "gpt-4o-mini",
                              "--requests", 2))
    assert summary_of(only_run_dir(tmp_path / "gpt"))["tokens"]["note"] is None


def _write_tokenizer_json(path: Path) -> None:
    """A real tokenizer.json made with the tokenizers package: a word-level model of the mock's words."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from sse_perf_tool.mock_server import ANSWER_WORDS

    vocab = {"[UNK]": 0}
    for word in ANSWER_WORDS:
        vocab.setdefault(word.strip(), len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(path))


def test_tokenizer_hf_counts_with_a_local_tokenizer_json(make_mock, tmp_path, cli):
    """--tokenizer hf:PATH: the answer counted by the tokenizer.json (offline), token_source tokenizer:hf."""
    from tokenizers import Tokenizer

    path = tmp_path / "tokenizer.json"
    _write_tokenizer_json(path)
    server = make_mock(usage=False)
    code, _, err = cli(base(server, tmp_path / "o", "--api", "openai-completions", "--requests", 2,
                            "--tokenizer", f"hf:{path}"))
    assert code == 0, err
    records = records_of(only_run_dir(tmp_path / "o"))
    from sse_perf_tool.mock_server import token_text

    answer = "".join(token_text(i) for i in range(8))
    expected = len(Tokenizer.from_file(str(path)).encode(answer, add_special_tokens=False).ids)
    assert expected != 8  # whitespace words, not the mock's: the count is the tokenizer's own
    assert all(r["token_source"] == "tokenizer:hf" and r["output_tokens"] == expected for r in records)


@pytest.mark.parametrize("spec,needle", [("hf:/nonexistent/tokenizer.json", "no tokenizer.json"),
                                         ("hf:", "needs a path"), ("llama3", "--tokenizer must be")])
def test_bad_tokenizer_values_exit_2(spec, needle, make_mock, tmp_path, cli):
    server = make_mock()
    code, _, err = cli(base(server, tmp_path, "--tokenizer", spec))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert server.stats.snapshot()["requests"] == 0


def test_a_file_that_is_not_a_tokenizer_json_exits_2(make_mock, tmp_path, cli):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    server = make_mock()
    code, _, err = cli(base(server, tmp_path / "o", "--tokenizer", f"hf:{bad}"))
    assert code == 2 and "cannot load" in err and len(err.strip().splitlines()) == 1
    assert server.stats.snapshot()["requests"] == 0


def test_extra_body_reaches_the_server_and_is_recorded_masked(make_mock, tmp_path, cli):
    """--extra-body is merged into every request: max_tokens 3 makes the server stop at 3 tokens
    (finish_reason length); the summary records it with secret-looking values masked; @file works."""
    server = make_mock()
    extra = {"max_tokens": 3, "seed": 7, "api_key": "sk-abcdefghijklmnop1234"}
    code, _, err = cli(base(server, tmp_path, "--api", "openai-chat", "--requests", 2, "--extra-body",
                            json.dumps(extra)))
    assert code == 0, err
    run_dir = only_run_dir(tmp_path)
    records = records_of(run_dir)
    assert all(r["output_tokens"] == 3 and r["finish_reason"] == "length" for r in records)
    recorded = summary_of(run_dir)["run"]["config"]["extra_body"]
    assert recorded["max_tokens"] == 3 and recorded["seed"] == 7 and recorded["api_key"] == "sk-…1234"
    for name in ("summary.json", "report.html"):
        assert "sk-abcdefghijklmnop1234" not in (run_dir / name).read_text(encoding="utf-8")
    body = tmp_path / "extra.json"
    body.write_text(json.dumps({"max_tokens": 2}))
    code, _, err = cli(base(server, tmp_path / "f", "--api", "openai-chat", "--requests", 1, "--extra-body",
                            f"@{body}"))
    assert code == 0, err
    assert records_of(only_run_dir(tmp_path / "f"))[0]["output_tokens"] == 2


@pytest.mark.parametrize("value,needle", [("{bad", "not valid JSON"), ("[1, 2]", "JSON object"),
                                          ("@/nonexistent.json", "file not found")])
def test_bad_extra_body_exits_2(value, needle, make_mock, tmp_path, cli):
    server = make_mock()
    code, _, err = cli(base(server, tmp_path, "--extra-body", value))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert server.stats.snapshot()["requests"] == 0
