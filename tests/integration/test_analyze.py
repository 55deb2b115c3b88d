"""A model's reading of a run, end to end over loopback: `sse-perf analyze RUN_DIR` against the
mock server's fixed analysis (and scripted servers) writes analysis.md and the report's section;
every failure is one line, exit 2, and the run folder exactly as it was; `--analyze` on a run reads
it once it is written, and its options are checked before anything is sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sse_perf_tool.analysis import ANALYSIS_FILE, ANALYSIS_MARKER, SYSTEM, AnalysisError, ask, read_analysis
from sse_perf_tool.cli import main
from sse_perf_tool.mock_analysis import MOCK_ANALYSIS

from .fault_server import LAST_CHUNK, FaultServer, Hang, Reset, Send, Sleep, chunk, free_port, head, json_response

FIRST_LINE = MOCK_ANALYSIS.splitlines()[0]  # "## Mock analysis"
DEMO_MOCK = "ttft_ms=5,itl_ms=1,tokens=4"
ERROR_PREFIX = "sse-perf analyze: error:"


@pytest.fixture(autouse=True)
def no_llm_env(monkeypatch):
    """The model's URL and key come only from what each test gives."""
    monkeypatch.delenv("SSE_PERF_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("SSE_PERF_LLM_API_KEY", raising=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real demo run's folder (made once, in-process); each test analyses a copy of it."""
    parent = tmp_path_factory.mktemp("demo-run")
    code = main(["--demo", "--demo-mock", DEMO_MOCK, "--requests", "4", "--threads", "2", "--output-dir", str(parent),
                 "--no-history", "--quiet"])
    assert code == 0
    (folder,) = [p for p in parent.iterdir() if p.is_dir()]
    assert (folder / "summary.json").is_file() and (folder / "report.html").is_file()
    return folder


@pytest.fixture
def run_dir(finished_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(finished_run, target)
    return target


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def sse_event(obj) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode("utf-8")) + b"\n\n"


def content_event(text: str) -> bytes:
    return sse_event({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


def chunked_answer(*events: bytes) -> list:
    """A chunked event stream of `events`, then the last chunk and a close."""
    return [Send(head(chunked=True)), *(Send(chunk(e)) for e in events), Send(LAST_CHUNK)]


def _url(server: FaultServer) -> str:
    return f"http://127.0.0.1:{server.port}/v1"


def assert_one_error_line(code: int, err: str, needle: str = "") -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR_PREFIX), err
    assert needle in lines[0], err


# -- sse-perf analyze: the mock's fixed analysis ---------------------------------------------------
def test_analyze_writes_the_mocks_analysis_to_the_terminal_the_folder_and_the_report(run_dir, mock_server, cli):
    before = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="analysis"' not in before
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", mock_server.base_url, "--llm-model", "m"])
    assert code == 0, err
    assert FIRST_LINE in out and "Point --llm-base-url at a real" in out
    assert f"analysis: {run_dir / ANALYSIS_FILE}" in out and f"report: {run_dir / 'report.html'}" in out
    content = (run_dir / ANALYSIS_FILE).read_text(encoding="utf-8")
    assert "\nmodel: m\n" in content and f"endpoint: {mock_server.base_url}\n" in content
    got = read_analysis(run_dir)
    assert got["model"] == "m" and got["lang"] == "en" and got["text"] == MOCK_ANALYSIS.strip()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="analysis">'):]
    section = section[:section.index("</section>")]
    assert "<h3>Mock analysis</h3>" in section
    assert "<li>the findings, most severe first;</li>" in section
    assert "sse-perf analyze RUN_DIR --llm-base-url http://gpu1:8000/v1 --llm-model qwen2.5-7b" in section
    assert mock_server.stats.snapshot()["requests"] == 1


def test_analyze_as_a_command_prints_the_answer_and_exits_0(run_dir, mock_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSE_PERF_LLM_")}
    proc = subprocess.run([sys.executable, "-m", "sse_perf_tool", "analyze", str(run_dir), "--llm-base-url",
                           mock_server.base_url, "--llm-model", "m", "--lang", "zh"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(FIRST_LINE)
    assert read_analysis(run_dir)["lang"] == "zh"
    assert 'id="analysis"' in (run_dir / "report.html").read_text(encoding="utf-8")


def test_what_the_model_is_sent_is_the_digest_with_the_system_prompt_and_no_prompt(run_dir, cli):
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    prompt = summary["run"]["config"]["query"]
    assert prompt
    with FaultServer(chunked_answer(content_event("All "), content_event("fine."), sse_event(b"[DONE]"))) as server:
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{server.port}/v1",
                              "--llm-model", "qwen", "--lang", "zh"])
    assert code == 0, err
    assert out.startswith("All fine.\n")
    assert read_analysis(run_dir)["text"] == "All fine."
    (received,) = server.requests
    assert received.request_line.startswith("POST /v1/chat/completions ")
    assert "authorization" not in received.headers
    body = json.loads(received.body)
    assert body["model"] == "qwen" and body["stream"] is True
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM["zh"]} and ANALYSIS_MARKER in system["content"]
    digest = json.loads(user["content"])
    assert set(digest) == {"options", "summary", "levels", "findings", "series"}
    assert digest["summary"]["requests"]["ok"] == summary["requests"]["ok"]
    assert prompt not in received.body.decode("utf-8") and "query" not in digest["options"]


def test_the_model_default_is_sent_no_model_field(run_dir, cli):
    with FaultServer(chunked_answer(content_event("ok"), sse_event(b"[DONE]"))) as server:
        code, _, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{server.port}/v1"])
    assert code == 0, err
    assert "model" not in json.loads(server.requests[0].body)
    assert read_analysis(run_dir)["model"] == "(the server default)"


# -- failures: one line, exit 2, the folder as it was ------------------------------------------------
def test_connection_refused_is_one_line_and_leaves_the_folder(run_dir, cli):
    before = snapshot(run_dir)
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{free_port()}/v1"])
    assert_one_error_line(code, err, "ConnectionError")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_an_http_error_is_one_line_and_leaves_the_folder(key, run_dir, make_mock, tmp_path, cli):
    server = make_mock(api_key="k-123")
    extra = []
    if key is not None:
        key_file = tmp_path / "key.txt"
        key_file.write_text(key + "\n", encoding="utf-8")
        extra = ["--llm-api-key-file", key_file]
    before = snapshot(run_dir)
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", server.base_url, *extra])
    assert_one_error_line(code, err, "HTTP 401")
    assert snapshot(run_dir) == before
    assert ANALYSIS_FILE not in before
    if key is not None:
        assert key not in err


def test_a_server_that_never_answers_is_given_up_at_llm_timeout(run_dir, cli):
    before = snapshot(run_dir)
    with FaultServer([Hang()]) as server:  # accepts, reads the request, says nothing (bounded by MAX_HANG_S)
        started = time.monotonic()
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{server.port}/v1",
                              "--llm-timeout", "1"])
        elapsed = time.monotonic() - started
    assert_one_error_line(code, err, "Timeout")
    assert elapsed < 4.0  # about 1 s, not the server's own 5 s hang
    assert server.connections == 1
    assert snapshot(run_dir) == before


def test_an_answer_cut_off_midway_leaves_the_folder(run_dir, cli):
    before = snapshot(run_dir)
    script = [Send(head(chunked=True)), Send(chunk(content_event("Half an "))), Send(b"40\r\npartial"), Reset()]
    with FaultServer(script) as server:
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{server.port}/v1"])
    assert_one_error_line(code, err)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("events", [
    [b"data: not json\n\n"],
    [sse_event({"error": {"message": "context too long"}})],
    [sse_event({"choices": 5})],
    [sse_event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}), sse_event(b"[DONE]")],
], ids=["not-json", "error-object", "choices-a-number", "no-text-before-done"])
def test_an_answer_that_is_no_answer_is_one_line_and_leaves_the_folder(events, run_dir, cli):
    before = snapshot(run_dir)
    with FaultServer(chunked_answer(*events)) as server:
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", _url(server)])
    assert_one_error_line(code, err)
    assert snapshot(run_dir) == before


def test_a_folder_without_summary_json_is_one_line_and_nothing_is_sent(run_dir, mock_server, cli):
    (run_dir / "summary.json").unlink()
    before = snapshot(run_dir)
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", mock_server.base_url])
    assert_one_error_line(code, err, "summary.json")
    assert snapshot(run_dir) == before
    assert mock_server.stats.snapshot()["requests"] == 0


def test_no_llm_base_url_is_one_line(run_dir, cli):
    before = snapshot(run_dir)
    code, out, err = cli(["analyze", run_dir])
    assert_one_error_line(code, err, "--llm-base-url")
    assert "SSE_PERF_LLM_BASE_URL" in err
    assert snapshot(run_dir) == before


def test_the_llm_base_url_may_come_from_the_environment(run_dir, mock_server, cli, monkeypatch):
    monkeypatch.setenv("SSE_PERF_LLM_BASE_URL", mock_server.base_url)
    code, out, err = cli(["analyze", run_dir])
    assert code == 0, err
    assert read_analysis(run_dir)["text"] == MOCK_ANALYSIS.strip()


@pytest.mark.parametrize("extra,needle", [
    (["--llm-timeout", "0"], "--llm-timeout"),
    (["--llm-context-chars", "999"], "--llm-context-chars"),
    (["--llm-api-key-file", "/no/such/file"], "--llm-api-key-file"),
])
def test_bad_llm_options_are_one_line_and_nothing_is_sent(extra, needle, run_dir, mock_server, cli):
    before = snapshot(run_dir)
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", mock_server.base_url, *extra])
    assert_one_error_line(code, err, needle)
    assert snapshot(run_dir) == before
    assert mock_server.stats.snapshot()["requests"] == 0


def test_a_missing_run_folder_is_one_line(tmp_path, mock_server, cli):
    code, out, err = cli(["analyze", tmp_path / "no-such-run", "--llm-base-url", mock_server.base_url])
    assert_one_error_line(code, err, "not a folder")
    assert not (tmp_path / "no-such-run").exists()


# -- the key ---------------------------------------------------------------------------------------
def test_the_key_file_is_sent_as_a_bearer_token_and_never_shown(run_dir, make_mock, tmp_path, cli):
    server = make_mock(api_key="k-123")
    key_file = tmp_path / "llm-key.txt"
    key_file.write_text("\nk-123\n", encoding="utf-8")
    code, out, err = cli(["analyze", run_dir, "--llm-base-url", server.base_url, "--llm-model", "m",
                          "--llm-api-key-file", key_file])
    assert code == 0, err
    assert FIRST_LINE in out
    for text in (out, err, (run_dir / ANALYSIS_FILE).read_text(encoding="utf-8"),
                 (run_dir / "report.html").read_text(encoding="utf-8")):
        assert "k-123" not in text


def test_the_authorization_header_is_bearer_and_the_key_may_come_from_the_environment(run_dir, cli, monkeypatch):
    monkeypatch.setenv("SSE_PERF_LLM_API_KEY", "env-key-abcdef")
    with FaultServer(chunked_answer(content_event("ok"), sse_event(b"[DONE]"))) as server:
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", f"http://127.0.0.1:{server.port}/v1"])
    assert code == 0, err
    assert server.requests[0].headers["authorization"] == "Bearer env-key-abcdef"
    assert "env-key-abcdef" not in out + err


# -- ask(): the stream ---------------------------------------------------------------------------------
def test_ask_streams_each_piece_as_it_comes_and_returns_the_whole_answer():
    pieces = []
    with FaultServer(chunked_answer(content_event("one "), content_event("two"), sse_event(b"[DONE]"))) as server:
        answer = ask({"x": 1}, _url(server), "m", None, "en", 10.0, pieces.append)
    assert answer == "one two" and pieces == ["one ", "two"]


def test_ask_takes_a_stream_that_ends_without_done_as_the_answer():
    with FaultServer(chunked_answer(content_event("no done"))) as server:
        assert ask({}, _url(server), None, None, timeout_s=10.0) == "no done"


def test_ask_names_the_servers_error_of_an_http_error():
    body = json.dumps({"error": {"message": "model overloaded"}}).encode()
    with FaultServer([Send(json_response("503 Service Unavailable", body))]) as server:
        with pytest.raises(AnalysisError, match="HTTP 503: model overloaded"):
            ask({}, _url(server), None, None, timeout_s=10.0)


@pytest.mark.parametrize("event,needle", [
    (b"data: not json\n\n", "not JSON"),
    (sse_event({"error": {"message": "context too long"}}), "context too long"),
    (sse_event({"choices": 5}), None),
    (sse_event({"choices": {"0": {"delta": {"content": "x"}}}}), None),
], ids=["not-json", "error-object", "choices-a-number", "choices-an-object"])
def test_ask_turns_a_bad_chunk_into_an_analysis_error(event, needle):
    with FaultServer(chunked_answer(event, sse_event(b"[DONE]"))) as server:
        with pytest.raises(AnalysisError, match=needle):
            ask({}, _url(server), None, None, timeout_s=10.0)


def test_ask_with_no_text_before_done_is_an_analysis_error():
    role = sse_event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    finish = sse_event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    with FaultServer(chunked_answer(role, finish, sse_event(b"[DONE]"))) as server:
        with pytest.raises(AnalysisError):
            ask({}, _url(server), None, None, timeout_s=10.0)


def test_ask_with_a_stream_that_ends_empty_is_an_analysis_error():
    with FaultServer(chunked_answer()) as server:
        with pytest.raises(AnalysisError, match="without an answer"):
            ask({}, _url(server), None, None, timeout_s=10.0)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_ask_gives_up_at_its_timeout_while_the_answer_keeps_trickling(chunked):
    """--llm-timeout bounds the whole answer: a server that keeps sending a piece every 0.2 s for
    4 s does not hold a 1 s analysis for 4 s."""
    piece = content_event("more ")
    script = [Send(head(chunked=chunked))]
    for _ in range(20):
        script += [Send(chunk(piece) if chunked else piece), Sleep(0.2)]
    script += [Send(chunk(sse_event(b"[DONE]")) + LAST_CHUNK if chunked else sse_event(b"[DONE]"))]
    with FaultServer(script) as server:
        started = time.monotonic()
        with pytest.raises(AnalysisError, match="--llm-timeout"):
            ask({}, _url(server), None, None, timeout_s=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0


# -- the report shows the answer as text ---------------------------------------------------------------
def test_markup_in_the_answer_is_escaped_in_the_report(run_dir, cli):
    xss = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
    with FaultServer(chunked_answer(content_event(f"## Reading\n\nThe run {xss}\n\n- {xss}\n"),
                                    sse_event(b"[DONE]"))) as server:
        code, out, err = cli(["analyze", run_dir, "--llm-base-url", _url(server)])
    assert code == 0, err
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="analysis">'):]
    section = section[:section.index("</section>")]
    assert "<script>" not in section and "<img" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "&lt;img src=x onerror=alert(1)&gt;" in section


# -- --analyze on a run ----------------------------------------------------------------------------------
def _env_without_llm() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("SSE_PERF_LLM_")}


def test_demo_analyze_reads_the_run_after_its_summary(tmp_path):
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", DEMO_MOCK, "--analyze",
                           "--requests", "2", "--output-dir", str(out_dir), "--no-history"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_env_without_llm())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "== Summary ==" in out and FIRST_LINE in out
    assert out.index("== Summary ==") < out.index("report:") < out.index(FIRST_LINE)
    (folder,) = [p for p in out_dir.iterdir() if p.is_dir()]
    assert f"analysis: {folder / ANALYSIS_FILE}" in out
    assert read_analysis(folder)["text"] == MOCK_ANALYSIS.strip()
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert '<section id="analysis">' in html and "<h3>Mock analysis</h3>" in html
    assert "warning" not in proc.stderr


def test_analyze_that_fails_warns_once_and_keeps_the_runs_exit_code(tmp_path, cli):
    code, out, err = cli(["--demo", "--demo-mock", DEMO_MOCK, "--analyze", "--requests", "2", "--no-history",
                          "--llm-base-url", f"http://127.0.0.1:{free_port()}/v1", "--output-dir", tmp_path])
    assert code == 0
    warnings = [line for line in err.splitlines() if "--analyze" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: --analyze:")
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (folder / "summary.json").is_file() and (folder / "report.html").is_file()
    assert not (folder / ANALYSIS_FILE).exists()


def test_analyze_with_a_real_model_url_sends_its_key(tmp_path, make_mock, cli):
    target = make_mock()
    model = make_mock(api_key="k-run-456")
    key_file = tmp_path / "llm.key"
    key_file.write_text("k-run-456\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out, err = cli(["--base-url", target.base_url, "--api", "openai-chat", "--requests", "2", "--no-history",
                          "--analyze", "--llm-base-url", model.base_url, "--llm-model", "m",
                          "--llm-api-key-file", key_file, "--output-dir", out_dir])
    assert code == 0, err
    assert FIRST_LINE in out and "k-run-456" not in out + err
    (folder,) = [p for p in out_dir.iterdir() if p.is_dir()]
    assert read_analysis(folder)["model"] == "m"
    assert model.stats.snapshot()["requests"] == 1
    for path in folder.iterdir():
        assert "k-run-456" not in path.read_text(encoding="utf-8"), path.name


def test_the_llm_base_urls_password_is_in_no_file_of_the_run(tmp_path, mock_server, cli):
    url = mock_server.base_url.replace("http://", "http://ops:llm-pw-9876@")
    code, out, err = cli(["--base-url", mock_server.base_url, "--api", "openai-chat", "--requests", "1",
                          "--no-history", "--analyze", "--llm-base-url", url, "--output-dir", tmp_path])
    assert code == 0, err
    assert "llm-pw-9876" not in out + err
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert read_analysis(folder)["endpoint"] == mock_server.base_url.replace("http://", "http://ops:…@")
    for path in sorted(folder.iterdir()):
        assert "llm-pw-9876" not in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize("extra,needle", [
    (["--llm-model", "x"], "--analyze"),
    (["--llm-base-url", "{url}"], "--analyze"),
    (["--analyze"], "--llm-base-url"),
    (["--analyze", "--llm-base-url", "{url}", "--llm-api-key-file", "/no/such/file"], "--llm-api-key-file"),
    (["--analyze", "--llm-base-url", "ftp://127.0.0.1:1/v1"], "--llm-base-url"),
    (["--analyze", "--llm-base-url", "{url}", "--llm-timeout", "0"], "--llm-timeout"),
])
def test_run_llm_options_are_checked_before_anything_is_sent(extra, needle, tmp_path, mock_server, cli):
    out_dir = tmp_path / "out"
    extra = [a.replace("{url}", mock_server.base_url) for a in extra]
    code, out, err = cli(["--base-url", mock_server.base_url, "--requests", "1", "--no-history",
                          "--output-dir", out_dir, *extra])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sse-perf: error:") and needle in lines[0], err
    assert mock_server.stats.snapshot()["requests"] == 0
    assert not out_dir.exists() or not any(p.is_dir() for p in out_dir.iterdir())


@pytest.mark.parametrize("extra,needle", [
    (["--llm-context-chars", "10", "--analyze"], "--llm-context-chars"),
    (["--analyze", "--llm-api-key-file", "/no/such/file"], "--llm-api-key-file"),
    (["--llm-model", "x"], "--analyze"),
])
def test_demo_llm_options_are_checked_before_the_demo_starts(extra, needle, tmp_path, cli):
    out_dir = tmp_path / "out"
    code, out, err = cli(["--demo", "--demo-mock", DEMO_MOCK, "--requests", "1", "--no-history",
                          "--output-dir", out_dir, *extra])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sse-perf: error:") and needle in lines[0], err
    assert "demo: embedded mock server" not in out
    assert not out_dir.exists() or not any(p.is_dir() for p in out_dir.iterdir())


def test_sse_perf_llm_base_url_stands_in_for_llm_base_url_only_with_analyze(tmp_path, mock_server, cli, monkeypatch):
    """SSE_PERF_LLM_BASE_URL stands in for --llm-base-url with --analyze (and only with it)."""
    monkeypatch.setenv("SSE_PERF_LLM_BASE_URL", mock_server.base_url)
    code, out, err = cli(["--base-url", mock_server.base_url, "--api", "openai-chat", "--requests", "1",
                          "--no-history", "--output-dir", tmp_path / "a"])
    assert code == 0, err
    assert not any((p / ANALYSIS_FILE).exists() for p in (tmp_path / "a").iterdir())
    code, out, err = cli(["--base-url", mock_server.base_url, "--api", "openai-chat", "--requests", "1",
                          "--no-history", "--analyze", "--output-dir", tmp_path / "b"])
    assert code == 0, err
    (folder,) = [p for p in (tmp_path / "b").iterdir() if p.is_dir()]
    assert read_analysis(folder)["text"] == MOCK_ANALYSIS.strip()
