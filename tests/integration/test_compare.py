"""`sse-perf compare` on history ids: three real demo runs against the embedded mock server (one
module fixture) give runs #1-#3; ids and folders mix, unknown and unfinished ids exit 2, the
baseline gate and the HTML work on history runs, and `sse-perf compare` is dispatched by the CLI.
The comparison itself (directions, change %, threshold, table, JSON, HTML) is in
tests/unit/test_compare.py, on fabricated run folders."""

from __future__ import annotations

import json

import pytest

from sse_perf_tool import cli

from compare_fixtures import T0, compare_metric, run_compare


# ---------------------------------------------------------------- real demo runs and the history


DEMO_RUNS = (("qwen-7b", 2), ("qwen-14b", 4), ("llama-8b", 8))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """Three real demo runs (embedded mock server) with different thread counts: ids 1, 2, 3.

    Each request takes ~35 ms at the mock and each thread sends three, so the run's length is set
    by the mock's latency rather than client start-up: 4x the threads serve several times the
    requests/s (a busy machine can still blur 2 against 4 threads, so the verdicts are checked
    against the measured changes)."""
    out = tmp_path_factory.mktemp("demo")
    for name, threads in DEMO_RUNS:
        code = cli.main(["--demo", "--demo-mock", "ttft_ms=30,itl_ms=1,tokens=6", "--threads", str(threads),
                         "--requests", str(3 * threads), "--output-dir", str(out),
                         "--quiet", "--model-name", name])
        assert code == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    return {"out": out, "db": out / "history.db",
            "folders": {name: next(f for f in folders if f.name.endswith(name)) for name, _ in DEMO_RUNS}}


def test_history_ids_are_labelled_by_model_name(capsys, demo):
    code, out, _ = run_compare(capsys, ["1", "2", "3", "--output-dir", str(demo["out"])])
    assert code == 0
    assert "[1] #1 qwen-7b" in out and "[2] #2 qwen-14b" in out and "[3] #3 llama-8b" in out
    assert "settings differ (threads/rate: 2 threads / 4 threads / 8 threads)" in out
    rps = next(line for line in out.splitlines() if line.startswith("requests/s")).split()
    values = [float(rps[1]), float(rps[2]), float(rps[6])]  # baseline; run 2: value, change, arrow, verdict; run 3
    for value, verdict in ((values[1], rps[5]), (values[2], rps[9])):
        change = 100.0 * (value - values[0]) / values[0]
        expected = "better" if change > 1.0 else "worse" if change < -1.0 else "same"
        assert verdict == expected, (rps, "requests/s: higher is better, within 1 % the same")
    assert values[2] > values[0], "8 threads against the mock serve more requests/s than 2"


def test_ids_and_folders_mix(capsys, demo):
    code, out, _ = run_compare(capsys, ["#1", str(demo["folders"]["llama-8b"]), "--history", str(demo["db"]), "--json"])
    assert code == 0
    body = json.loads(out)
    assert body["runs"][0]["id"] == 1 and body["runs"][0]["label"] == "#1 qwen-7b"
    assert body["runs"][1]["id"] is None and body["runs"][1]["label"] == demo["folders"]["llama-8b"].name
    assert compare_metric(body, "requests_per_s")["verdict"][1] == "better"


def test_unknown_id_exits_2_naming_the_closest_ids(capsys, demo):
    code, out, err = run_compare(capsys, ["1", "7", "--history", str(demo["db"])])
    assert code == 2 and out == ""
    assert err.strip() == "sse-perf compare: error: unknown run id '7' (closest known: 1, 2, 3)"
    code, _, err = run_compare(capsys, ["qwen", "1", "--history", str(demo["db"])])
    assert code == 2 and "closest known:" in err


def test_baseline_gate_on_history_runs(capsys, demo):
    """Run #1 (2 threads) against #3 (8 threads): far more throughput, so no throughput regression;
    --fail-on-regression 1000% lets nothing fail, 0% fails on any worse metric."""
    assert run_compare(capsys, ["--baseline", "1", "3", "--history", str(demo["db"]), "--fail-on-regression", "1000%"])[0] == 0
    body = json.loads(run_compare(capsys, ["--baseline", "3", "1", "--history", str(demo["db"]), "--json",
                                       "--fail-on-regression", "0%"])[1])
    assert "requests_per_s" in {r["metric"] for r in body["regressions"]}


def test_html_of_history_runs_is_written(capsys, demo, tmp_path):
    target = tmp_path / "out" / "cmp.html"
    code, out, _ = run_compare(capsys, ["1", "2", "3", "--history", str(demo["db"]), "--html", str(target)])
    assert code == 0 and f"comparison report: {target}" in out
    html = target.read_text("utf-8")
    assert "#3 llama-8b" in html and 'id="compare-table"' in html


def test_unfinished_history_run_cannot_be_compared(capsys, demo, tmp_path):
    from sse_perf_tool.history import History

    db_path = tmp_path / "h.db"
    import shutil

    shutil.copy(demo["db"], db_path)
    db = History(str(db_path))
    run_id = db.begin_run(tmp_path, {"started_at": T0, "model_name": "crashed"})
    db.close()
    code, _, err = run_compare(capsys, ["1", str(run_id), "--history", str(db_path)])
    assert code == 2 and f"run #{run_id} has no summary" in err


def test_sse_perf_compare_is_dispatched_by_the_cli(capsys, demo):
    code = cli.main(["compare", "1", "2", "--history", str(demo["db"]), "--json"])
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 2
