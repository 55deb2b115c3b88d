"""The command line end to end: bad input exits 2 before anything is sent; runs against the real
mock server over loopback write the whole run folder; Ctrl-C keeps partial results (exit 130)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sse_perf_tool.cli import main
from sse_perf_tool.records import RECORD_FIELDS


def run_dirs(parent: Path):
    return sorted(p for p in parent.iterdir() if p.is_dir())


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_shows_examples(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--demo" in out and "exit codes" in out


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--threads", "0"], "--threads"),
        (["--threads", "abc"], "whole number"),
        (["--duration", "-5"], "--duration"),
        (["--ramp-up", "-1"], "--ramp-up"),
        (["--timeout", "0"], "--timeout"),
        (["--duration", "nan"], "finite"),
        (["--param-file", "/nonexistent/q.txt"], "not found"),
        (["--api-key-file", "/nonexistent/keys.txt"], "not found"),
        (["--header", "broken"], "--header"),
        (["--api", "grpc"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_sends_nothing(extra, needle, mock_server, tmp_path, capsys):
    code, out, err = run_cli(["--base-url", mock_server.base_url, "--output-dir", tmp_path, *extra], capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert mock_server.stats.snapshot()["requests"] == 0
    assert run_dirs(tmp_path) == []


def test_argparse_errors_exit_2(capsys):
    assert main(["--threads", "x"]) == 2


@pytest.fixture
def run_cli_exit(capsys):
    """Like run_cli, but argparse errors (SystemExit) become return codes too."""

    def run(args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize(
    "url,needle", [("ftp://127.0.0.1:1/v1", "http://"), ("http://:80/v1", "no host"), ("127.0.0.1:8000", "http://")]
)
def test_bad_base_url(url, needle, tmp_path, run_cli_exit):
    code, _, err = run_cli_exit(["--base-url", url, "--output-dir", tmp_path])
    assert code == 2 and needle in err


def test_empty_files_are_errors(tmp_path, mock_server, run_cli_exit):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    for option in ("--param-file", "--api-key-file"):
        code, _, err = run_cli_exit(["--base-url", mock_server.base_url, option, empty, "--output-dir", tmp_path / "o"])
        assert code == 2 and "no " in err
    assert mock_server.stats.snapshot()["requests"] == 0


def test_unwritable_output_folder_is_refused(tmp_path, mock_server, run_cli_exit):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli_exit(["--base-url", mock_server.base_url, "--output-dir", blocker / "sub"])
    assert code == 2 and "cannot be written" in err
    assert mock_server.stats.snapshot()["requests"] == 0


@pytest.mark.parametrize("api", ["dify-chat", "dify-completion", "dify-workflow", "openai-chat", "openai-completions"])
def test_every_flavour_against_the_mock_server(api, mock_server, tmp_path, run_cli_exit):
    code, out, err = run_cli_exit(["--base-url", mock_server.base_url, "--api", api, "--model", "m", "--threads", 2,
                                   "--requests", 6, "--output-dir", tmp_path, "--quiet"])
    assert code == 0, err
    (run_dir,) = run_dirs(tmp_path)
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert all(r["ok"] for r in records), records[0]["error"]
    assert sorted(r["request_id"] for r in records) == [1, 2, 3, 4, 5, 6]
    for r in records:
        assert tuple(r) == RECORD_FIELDS
        assert r["chunks"] == 8
        assert r["ttft_ms"] <= r["e2e_ms"] <= r["total_ms"]
        assert len(r["itl_ms"]) == 7
        if api != "dify-workflow":  # Dify workflows report only total tokens: the tokenizer counts
            assert r["token_source"] == "usage" and r["output_tokens"] == 8
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"]["ok"] == 6 and summary["run"]["api"] == api
    assert "run folder:" in out


def test_run_folder_contents(mock_server, tmp_path, run_cli_exit):
    code, out, _ = run_cli_exit(["--base-url", mock_server.base_url, "--threads", 3, "--duration", 1.5,
                                 "--output-dir", tmp_path, "--model-name", "my model/v1"])
    assert code == 0
    (run_dir,) = run_dirs(tmp_path)
    assert run_dir.name.endswith("-my_model_v1")
    for name in ("records.jsonl", "timeseries.csv", "summary.json", "requests.csv"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("run", "requests", "errors", "throughput", "ttfb_ms", "ttft_ms", "ttfo_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert key in summary
    assert summary["run"]["threads"] == 3 and summary["run"]["interrupted"] is False
    records = (run_dir / "records.jsonl").read_text().splitlines()
    assert summary["requests"]["total"] == len(records) > 3
    csv_lines = (run_dir / "requests.csv").read_text().splitlines()
    assert len(csv_lines) == len(records) + 1 and "itl_ms" not in csv_lines[0]
    ts = (run_dir / "timeseries.csv").read_text().splitlines()
    assert ts[0].startswith("second,active_threads,requests_started")
    assert len(ts) >= 3  # at least seconds 0 and 1
    assert "TTFT" in out and "time" in out  # live table printed


def test_server_errors_are_recorded_and_the_run_completes(make_mock, tmp_path, run_cli_exit):
    server = make_mock(error_rate=1.0)
    code, out, _ = run_cli_exit(["--base-url", server.base_url, "--threads", 2, "--requests", 4,
                                 "--output-dir", tmp_path, "--quiet"])
    assert code == 3  # every request failed: exit 3, the run still written
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["errors"] == {"http_status": 4}
    assert summary["ttft_ms"]["count"] == 0 and summary["ttft_ms"]["p50"] is None
    record = json.loads((run_dir / "records.jsonl").read_text().splitlines()[0])
    assert record["http_status"] == 500 and "HTTP 500" in record["error"]


def test_keys_are_masked_in_every_output(make_mock, tmp_path, run_cli_exit):
    secret = "app-TOPSECRETtopsecret0123"
    server = make_mock(api_key=secret)
    code, out, err = run_cli_exit(["--base-url", server.base_url, "--api-key", secret, "--requests", 2,
                                   "--header", f"X-Api-Key: {secret}", "--output-dir", tmp_path])
    assert code == 0
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"]["ok"] == 2  # the key really was sent
    assert summary["run"]["config"]["api_key"] == "app-…0123"
    texts = [out, err] + [p.read_text(encoding="utf-8") for p in run_dir.iterdir() if p.is_file()]
    assert not any("TOPSECRET" in t for t in texts)


def test_wrong_key_gives_http_401_records(make_mock, tmp_path, run_cli_exit):
    server = make_mock(api_key="app-right")
    code, _, _ = run_cli_exit(["--base-url", server.base_url, "--api-key", "app-wrong", "--output-dir", tmp_path])
    assert code == 3  # every request failed: exit 3, the run still written
    (run_dir,) = run_dirs(tmp_path)
    record = json.loads((run_dir / "records.jsonl").read_text())
    assert record["error_kind"] == "http_status" and record["http_status"] == 401


def test_connection_refused_is_a_connect_error_not_a_crash(tmp_path, run_cli_exit):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code, out, _ = run_cli_exit(["--host", "127.0.0.1", "--port", port, "--threads", 2, "--output-dir", tmp_path])
    assert code == 3  # every request failed: exit 3, the run still written
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["errors"] == {"connect": 2}


def test_param_file_queries_and_datasets_reach_the_records(mock_server, tmp_path, run_cli_exit):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"query": "one", "dataset": "math"}\n{"query": "two", "dataset": "code"}\n', encoding="utf-8")
    code, _, _ = run_cli_exit(["--base-url", mock_server.base_url, "--param-file", qfile, "--requests", 4,
                               "--output-dir", tmp_path / "out", "--quiet"])
    assert code == 0
    (run_dir,) = run_dirs(tmp_path / "out")
    records = sorted((json.loads(l) for l in (run_dir / "records.jsonl").read_text().splitlines()),
                     key=lambda r: r["request_id"])
    assert [(r["query"], r["dataset"]) for r in records] == [("one", "math"), ("two", "code")] * 2


@pytest.mark.parametrize("sig,code,times", [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGTERM, 143, 2)])
def test_ctrl_c_cancels_in_flight_and_writes_everything(tmp_path, sig, code, times):  # SIGHUP: test_interrupts.py
    """SIGINT mid-run (and SIGTERM, SIGHUP: how timeout, Docker, Kubernetes and a closed terminal
    stop a process): exit 128 + the signal (not a traceback, not the end of the 60 s run), in-flight
    requests recorded as cancelled, every file written, the history `interrupted`. Each demo
    request takes ~300 ms, so the four threads always have some in flight, and some have finished
    once the live table printed its first second. `timeout` sends its signal to the process and
    then to its process group: the same stop twice within microseconds, not a second one."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sse_perf_tool", "--demo", "--demo-mock", "ttft_ms=300,itl_ms=5,tokens=4",
         "--threads", "4", "--duration", "60", "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        deadline = time.monotonic() + 20  # a bound against a hang only
        seen = ""
        while time.monotonic() < deadline:  # wait until the live table shows a finished request
            line = proc.stdout.readline()
            seen += line
            if line.strip().startswith("1s"):
                break
        for i in range(times):
            if i:
                time.sleep(0.005)
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)  # a bound against a hang only
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in out + err
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True
    assert summary["errors"].get("cancelled", 0) >= 1
    assert summary["requests"]["ok"] >= 1
    assert (run_dir / "timeseries.csv").is_file() and (run_dir / "report.html").is_file()
    import sqlite3

    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]


def test_mock_server_subcommand_rejects_bad_numbers(run_cli_exit):
    code, _, err = run_cli_exit(["mock-server", "--error-rate", "2"])
    assert code == 2 and "--error-rate" in err


def test_report_subcommand_refuses_a_non_run_folder(tmp_path, run_cli_exit):
    code, _, err = run_cli_exit(["report", str(tmp_path)])
    assert code == 2 and "not a run folder" in err


@pytest.mark.parametrize("extra,needle", [(["--demo-mock", "ttft_ms=5"], "give --demo too"),
                                          (["--demo", "--demo-mock", "foo=1"], "--demo-mock takes"),
                                          (["--demo", "--demo-mock", "tokens=x"], "must be a number"),
                                          (["--demo", "--demo-mock", "error_rate=2"], "error_rate must be between")])
def test_bad_demo_mock_settings_exit_2_with_one_line(extra, needle, tmp_path, run_cli_exit):
    code, _, err = run_cli_exit([*extra, "--output-dir", tmp_path])
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert run_dirs(tmp_path) == []


def test_demo_mock_sets_the_embedded_servers_behaviour(tmp_path, run_cli_exit):
    """--demo-mock ttft_ms=5,itl_ms=1,tokens=3: the demo's server answers fast with 3 tokens."""
    code, out, err = run_cli_exit(["--demo", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=3", "--requests", 2,
                                   "--output-dir", tmp_path, "--quiet", "--no-history"])
    assert code == 0, err
    assert "(ttft 5 ms, 1 ms per token, 3 tokens)" in out
    (run_dir,) = run_dirs(tmp_path)
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    assert [r["output_tokens"] for r in records] == [3, 3]


def test_lang_zh_speaks_chinese_on_every_line_of_the_run(tmp_path, capsys):
    """--lang zh: the start line, the demo line and the history line too, not only the tables."""
    from sse_perf_tool import cli as entry

    code = entry.main(["--demo", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=4", "--requests", "2", "--lang", "zh",
                       "--quiet", "--output-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "演示：内置模拟服务器" in out and "（Ctrl-C 停止并保留结果）" in out and "历史：第 1 次运行" in out
    assert "embedded mock server" not in out and "history: run" not in out
