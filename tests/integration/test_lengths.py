"""--input-tokens and --output-tokens in real runs against the mock server, closed and open loop:
the prompts sent have their lengths, the answers the asked length, and summary.json says both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sse_perf_tool.cli import main


def _run(tmp_path: Path, capsys, *extra) -> tuple[dict, list]:
    code = main(["--demo", "--api", "openai-chat", "--demo-mock", "ttft_ms=5,itl_ms=1,tokens=50", "--seed", "4",
                 "--output-dir", str(tmp_path), "--no-history", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("run folder: ")))
    records = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    return json.loads((run_dir / "summary.json").read_text()), records


@pytest.mark.parametrize("load", [["--threads", "2", "--requests", "8"], ["--rate", "20", "--duration", "1"]])
def test_prompts_and_answers_have_the_lengths_asked(tmp_path, capsys, load):
    from sse_perf_tool.tokens import TokenCounter

    summary, records = _run(tmp_path, capsys, *load, "--input-tokens", "120", "--output-tokens", "10")
    assert records and all(r["ok"] for r in records)
    counter = TokenCounter()
    assert all(abs(counter.count(r["query"])[0] - 120) <= 2 for r in records)  # records keep the prompt sent
    assert {r["output_tokens"] for r in records} == {10} and {r["finish_reason"] for r in records} == {"length"}
    assert summary["workload"]["input_tokens"]["asked_mean"] == 120
    assert summary["workload"]["output_tokens"] == {"asked_mean": 10, "asked_sd": 0.0, "received_mean": 10.0}


@pytest.mark.parametrize("extra,needle", [
    (["--input-tokens", "0"], "--input-tokens takes"),
    (["--output-tokens", "many"], "--output-tokens takes"),
    (["--input-tokens", "10", "--query", "hi"], "--query and --input-tokens"),
    (["--prefix-tokens", "100"], "--prefix-tokens and --prefix-groups go together"),
    (["--prefix-tokens", "100", "--prefix-groups", "0"], "must be at least 1"),
])
def test_bad_lengths_exit_2_before_anything_is_sent(tmp_path, capsys, extra, needle):
    assert main(["--demo", "--output-dir", str(tmp_path), "--requests", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and not any(tmp_path.iterdir())


def test_shared_prefixes_are_reported_per_group(tmp_path, capsys):
    summary, records = _run(tmp_path, capsys, "--threads", "2", "--requests", "8", "--prefix-tokens", "64",
                            "--prefix-groups", "2", "--input-tokens", "16")
    assert {r["dataset"] for r in records} == {"prefix-1", "prefix-2"}
    assert {name: d["requests"] for name, d in summary["datasets"].items()} == {"prefix-1": 4, "prefix-2": 4}
    assert summary["workload"]["prefix"] == {"tokens": 64, "groups": 2}


def test_a_trace_is_replayed_at_its_moments_and_lengths_and_ends_by_itself(tmp_path, capsys):
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(f'{{"timestamp": {ms}, "input_length": 40, "output_length": {out}, "hash_ids": [1]}}\n'
                             for ms, out in ((0, 6), (200, 8), (400, 5), (600, 4))))
    summary, records = _run(tmp_path, capsys, "--trace", str(trace), "--trace-speed", "2")
    records.sort(key=lambda r: r["request_id"])
    first = records[0]["scheduled_at"]
    assert [round((r["scheduled_at"] - first) * 1000) for r in records] == [0, 100, 200, 300]  # 2x as fast
    assert [r["output_tokens"] for r in records] == [6, 8, 5, 4] and all(r["ok"] for r in records)
    assert len({r["query"] for r in records}) == 1  # the same 40 tokens of block 1
    assert summary["run"]["load"]["model"] == "open" and summary["workload"]["trace"]["requests"] == 4


@pytest.mark.parametrize("extra,needle", [
    (["--rate", "2", "--duration", "1"], "cannot be combined with --rate"),
    (["--input-tokens", "10"], "cannot be combined with --input-tokens"),
    (["--trace-speed", "0"], "--trace-speed must be greater than 0"),
])
def test_a_trace_with_what_would_override_it_exits_2(tmp_path, capsys, extra, needle):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 4, "output_length": 2}\n')
    assert main(["--demo", "--output-dir", str(tmp_path / "out"), "--trace", str(trace), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and not (tmp_path / "out").exists()
