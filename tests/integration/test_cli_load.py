"""The load models end to end through `cli.main()` against the embedded mock server on loopback:
sweeps, SLO verdicts and exit 99, open-loop arrivals free of coordinated omission, warm-up,
early stop on the error rate, weighted datasets, config files, seeds, and bad input (exit 2,
nothing sent). Runs are short (a few seconds at most) with small token counts."""

from __future__ import annotations

import itertools
import json
import math
import socket
import time

import pytest

from sse_perf_tool.arrivals import arrival_offsets_ns
from sse_perf_tool.cli import parse_run_args

from .run_folder import RUN_FILES, Run, only_run


# -- helpers ---------------------------------------------------------------------------------------


FAST_DEMO = "ttft_ms=5,itl_ms=1,tokens=8"  # the --demo server, fast: the test is about the pipe, not latency


def target(server) -> list:
    return ["--base-url", server.base_url]


# -- 1. sweeps ----------------------------------------------------------------------------------------

def test_thread_sweep_levels_records_and_timeseries(make_mock, tmp_path, cli):
    """--sweep-threads 1,4: one summary block per level in order ({"threads": v}); the levels' request
    counts add up to the whole run; every record carries its level, request ids run 1..N with no gap
    or repeat across levels; 4 threads give more requests/s than 1 against a fixed-latency server;
    with a generous SLO both levels meet it, best_level is the highest (4) and the exit code is 0;
    timeseries.csv has phase and level columns and --cooldown leaves `cooldown` seconds between levels."""
    server = make_mock(ttft_ms=40, itl_ms=2, tokens=4)
    code, out, err = cli([*target(server), "--sweep-threads", "1,4", "--duration", 1, "--cooldown", 1,
                          "--slo", "ttft_p95<2s", "--output-dir", tmp_path, "--quiet"])
    assert code == 0, err
    run = only_run(tmp_path)
    s = run.summary
    assert [b["level"] for b in s["levels"]] == [{"threads": 1}, {"threads": 4}]
    assert sum(b["requests"]["total"] for b in s["levels"]) == s["requests"]["total"] == len(run.records)
    by_level = {1: [r for r in run.records if r["level"] == 1], 4: [r for r in run.records if r["level"] == 4]}
    assert len(by_level[1]) + len(by_level[4]) == len(run.records), "every record carries level 1 or 4"
    for block in s["levels"]:
        assert block["requests"]["total"] == len(by_level[block["level"]["threads"]])
        assert block["meets_slo"] is True
        assert block["from_s"] < block["to_s"]
    ids = [r["request_id"] for r in run.records]
    assert ids == list(range(1, len(ids) + 1))
    # level 1 ran first: its ids come before level 4's
    assert max(r["request_id"] for r in by_level[1]) < min(r["request_id"] for r in by_level[4])
    assert {r["thread_id"] for r in by_level[1]} == {1}
    rps = [b["throughput"]["requests_per_s"] for b in s["levels"]]
    assert rps[1] > 1.2 * rps[0], rps
    assert s["sweep"] == {"kind": "threads", "values": [1, 4], "best_level": 4}
    assert s["run"]["load"]["sweep"] == {"kind": "threads", "values": [1, 4], "cooldown_s": 1.0}
    assert [v["met"] for v in s["slo"]] == [True]
    # the cooldown lies between the two levels
    assert s["levels"][1]["from_s"] - s["levels"][0]["to_s"] >= 1.0
    # time series
    cols = run.ts_columns
    assert cols.index("phase") == cols.index("success_rate_pct") + 1 and cols.index("level") == cols.index("phase") + 1
    phases = [row["phase"] for row in run.timeseries]
    assert set(phases) <= {"measure", "cooldown"}
    assert "cooldown" in phases
    assert all(row["level"] == "" for row in run.timeseries if row["phase"] == "cooldown")
    levels_seen = [row["level"] for row in run.timeseries if row["phase"] == "measure"]
    assert levels_seen[0] == "1" and levels_seen[-1] == "4"
    assert levels_seen == sorted(levels_seen, key=int), "level 1 seconds, then level 4 seconds"
    first_cool, last_cool = phases.index("cooldown"), len(phases) - 1 - phases[::-1].index("cooldown")
    assert run.timeseries[first_cool - 1]["level"] == "1" and run.timeseries[last_cool + 1]["level"] == "4"
    assert "level" in out.lower() and "4 threads" in out


def test_thread_sweep_with_impossible_slo_has_no_best_level_and_exits_99(make_mock, tmp_path, cli):
    """ttft_p95<1ms against a 40 ms server: every level misses, best_level is null, the top-level
    verdicts are the first level's, the exit code is 99, and the run folder is still complete."""
    server = make_mock(ttft_ms=40, itl_ms=2, tokens=3)
    code, out, err = cli([*target(server), "--sweep-threads", "1,4", "--duration", 0.5, "--slo", "ttft_p95<1ms",
                          "--output-dir", tmp_path, "--quiet"])
    assert code == 99, err
    run = only_run(tmp_path)
    s = run.summary
    assert [b["meets_slo"] for b in s["levels"]] == [False, False]
    assert s["sweep"]["best_level"] is None
    assert s["slo"] == s["levels"][0]["slo"]
    assert s["slo"][0]["met"] is False and s["slo"][0]["value"] > 1.0
    for name in RUN_FILES[:4]:
        assert (run.path / name).is_file(), name
    assert "no level met the SLOs" in out


def test_rate_sweep_levels_are_rates(make_mock, tmp_path, cli):
    """--sweep-rate 10,20: open-loop levels {"rate": 10.0} and {"rate": 20.0}; records carry the rate as
    their level; the higher rate sends twice the requests in the same time."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=3)
    code, _, err = cli([*target(server), "--sweep-rate", "10,20", "--arrival", "constant", "--duration", 0.5,
                        "--output-dir", tmp_path, "--quiet"])
    assert code == 0, err
    run = only_run(tmp_path)
    s = run.summary
    assert [b["level"] for b in s["levels"]] == [{"rate": 10.0}, {"rate": 20.0}]
    assert s["sweep"] == {"kind": "rate", "values": [10.0, 20.0], "best_level": None}
    assert s["run"]["load"]["model"] == "open"
    counts = {lv: sum(1 for r in run.records if r["level"] == lv) for lv in (10.0, 20.0)}
    assert counts[10.0] + counts[20.0] == len(run.records)
    # constant arrivals over a 0.5 s window: 5 and 10 due (0, 0.1, ... 0.4 s / 0, 0.05, ... 0.45 s)
    assert counts == {10.0: 5, 20.0: 10}
    assert all(b["meets_slo"] is None for b in s["levels"])


# -- 2. SLO verdicts ----------------------------------------------------------------------------------

def test_slo_verdicts_carry_the_measured_figures(make_mock, tmp_path, cli):
    """Each verdict has expr, metric, op, limit (canonical unit), unit, value, met; the value is the
    summary's own figure (ttft p95, success rate, requests/s); all met -> exit 0; goodput counts the
    requests within the per-request ttft bound."""
    server = make_mock(ttft_ms=10, itl_ms=1, tokens=4)
    code, out, err = cli([*target(server), "--threads", 2, "--requests", 8, "--quiet", "--output-dir", tmp_path,
                          "--slo", "ttft_p95 < 2s, success>=99%", "--slo", "rps>0.5"])
    assert code == 0, err
    s = only_run(tmp_path).summary
    assert [list(v) for v in s["slo"]] == [["expr", "metric", "op", "limit", "unit", "value", "met"]] * 3
    ttft, success, rps = s["slo"]
    assert ttft == {"expr": "ttft_p95 < 2s", "metric": "ttft_p95", "op": "<", "limit": 2000.0, "unit": "ms",
                    "value": s["ttft_ms"]["p95"], "met": True}
    assert success == {"expr": "success>=99%", "metric": "success", "op": ">=", "limit": 99.0, "unit": "%",
                       "value": s["requests"]["success_rate_pct"], "met": True}
    assert rps == {"expr": "rps>0.5", "metric": "requests_per_s", "op": ">", "limit": 0.5, "unit": "/s",
                   "value": s["throughput"]["requests_per_s"], "met": True}
    assert s["goodput"]["bounds"] == {"ttft_ms": 2000.0}
    assert s["goodput"]["pct"] == 100.0
    assert "MISSED" not in out


def test_missed_slo_exits_99_with_every_file_written(make_mock, tmp_path, cli):
    """A missed SLO: exit 99, every run file still written, the terminal names the SLO and says MISSED."""
    server = make_mock(ttft_ms=20, itl_ms=1, tokens=4)
    code, out, err = cli([*target(server), "--threads", 2, "--requests", 4, "--quiet", "--output-dir", tmp_path,
                          "--slo", "ttft_p50<1ms,success>=50"])
    assert code == 99, err
    run = only_run(tmp_path)
    for name in RUN_FILES:
        assert (run.path / name).is_file(), name
    missed, met = run.summary["slo"]
    assert missed["met"] is False and missed["value"] == run.summary["ttft_ms"]["p50"] >= 20
    assert met["met"] is True
    assert run.summary["goodput"]["pct"] == 0.0
    line = next(line for line in out.splitlines() if "ttft_p50<1ms" in line)
    assert line.startswith("SLO") and line.rstrip().endswith("MISSED")
    assert len(run.records) == 4


# -- 3. open loop and coordinated omission --------------------------------------------------------------

def test_open_loop_queue_time_grows_when_the_server_is_slower_than_the_arrivals(make_mock, tmp_path, cli):
    """20 requests/s constant into one thread, each request taking ~130 ms: request k is due at
    50(k-1) ms but sent later and later. queue_ms rises along the ids; ttft_from_scheduled_ms =
    queue_ms + ttft_ms; scheduled_at is exactly 50 ms apart; the summary's queue distribution has max > 0."""
    server = make_mock(ttft_ms=100, itl_ms=10, tokens=3)
    code, out, err = cli([*target(server), "--rate", 20, "--arrival", "constant", "--threads", 1, "--requests", 8,
                          "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    recs = run.records
    assert [r["request_id"] for r in recs] == list(range(1, 9))
    assert all(r["ok"] for r in recs)
    queues = [r["queue_ms"] for r in recs]
    assert all(b > a + 30 for a, b in zip(queues, queues[1:])), queues
    assert queues[-1] > 300
    for r in recs:
        assert r["ttft_from_scheduled_ms"] == pytest.approx(r["queue_ms"] + r["ttft_ms"], abs=0.002)
        assert r["e2e_from_scheduled_ms"] == pytest.approx(r["queue_ms"] + r["e2e_ms"], abs=0.002)
        assert r["scheduled_at"] <= r["started_at"]
    gaps_ms = [(b["scheduled_at"] - a["scheduled_at"]) * 1000 for a, b in zip(recs, recs[1:])]
    assert gaps_ms == pytest.approx([50.0] * 7, abs=5.0)
    s = run.summary
    assert s["queue_ms"]["count"] == 8 and s["queue_ms"]["max"] > 0
    assert s["queue_ms"]["max"] == pytest.approx(max(queues), abs=0.01)
    assert s["ttft_from_scheduled_ms"]["p50"] > s["ttft_ms"]["p50"]
    assert s["run"]["load"] == {"model": "open", "threads": 1, "processes": 1, "rate": 20.0, "arrival": "constant",
                                "seed": s["run"]["load"]["seed"], "warmup_s": None, "warmup_requests": None,
                                "sweep": None, "backend": "threads", "workers": 0,
                                "nodes": [{"host": socket.gethostname()}], "clock_bound_ms_max": None}
    assert s["requests"]["not_sent"] == 0  # --requests: every arrival was sent, late


def test_open_loop_with_enough_threads_keeps_queue_time_small(make_mock, tmp_path, cli):
    """With 8 threads and a fast server every arrival finds a free thread: queue_ms is only the time
    a thread takes to wake at the due instant, so its median stays under 20 ms and it never builds up
    (p95 under 200 ms: a shared 2-core test machine can stall a whole burst of wake-ups by tens of
    ms, 54 ms once in CI; a queue that builds up grows by ~80 ms per request, as in the one-thread
    run above, to seconds by the 30th)."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=3)
    code, _, err = cli([*target(server), "--rate", 40, "--arrival", "constant", "--threads", 8, "--requests", 30,
                        "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    s = run.summary
    queues = sorted(r["queue_ms"] for r in run.records)
    assert s["requests"]["total"] == 30 and s["queue_ms"]["count"] == 30
    assert s["queue_ms"]["p50"] < 20, queues
    assert s["queue_ms"]["p95"] < 200, queues
    assert s["ttft_from_scheduled_ms"]["p50"] < s["ttft_ms"]["p50"] + 20


def test_open_loop_arrivals_that_never_found_a_thread_are_reported_not_sent(make_mock, tmp_path, cli):
    """--rate 20 --duration 1 into one thread of a ~300 ms server: only a few of the 20 arrivals due
    in that second are sent; the rest are counted in requests.not_sent and the terminal warns."""
    server = make_mock(ttft_ms=300, itl_ms=5, tokens=2)
    code, out, err = cli([*target(server), "--rate", 20, "--arrival", "constant", "--threads", 1, "--duration", 1,
                          "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    not_sent = run.summary["requests"]["not_sent"]
    assert not_sent > 0
    assert 1 <= len(run.records) < 10
    # 20 arrivals were due in the window: each was either sent or counted as not sent
    assert len(run.records) + not_sent == 20
    assert f"{not_sent} scheduled requests were never sent" in out


# -- 4. warm-up -------------------------------------------------------------------------------------------

def test_warmup_seconds_are_recorded_but_left_out_of_the_summary(make_mock, tmp_path, cli):
    """--warmup 1 --duration 1: the warm-up records come first (by request id) and are flagged;
    requests.total counts only the measured ones, requests.warmup the others; the time series starts
    with `warmup` seconds, then `measure` ones."""
    server = make_mock(ttft_ms=20, itl_ms=2, tokens=3)
    code, out, err = cli([*target(server), "--threads", 2, "--warmup", 1, "--duration", 1, "--quiet",
                          "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    flags = [r["warmup"] for r in run.records]
    n_warm = flags.count(True)
    assert n_warm > 0 and flags.count(False) > 0
    assert flags == [True] * n_warm + [False] * (len(flags) - n_warm), "warm-up is a prefix of the ids"
    s = run.summary
    assert s["requests"]["warmup"] == n_warm
    assert s["requests"]["total"] == len(flags) - n_warm
    assert s["ttft_ms"]["count"] == s["requests"]["ok"] == s["requests"]["total"]
    assert s["run"]["load"]["warmup_s"] == 1.0
    # the measured ones were sent at least 1 s after the first warm-up one
    first = run.records[0]["started_at"]
    assert all(r["started_at"] - first >= 0.5 for r in run.records if not r["warmup"])
    phases = [row["phase"] for row in run.timeseries]
    assert phases[0] == "warmup"
    assert phases.count("warmup") == 1  # second 0 only: [0, 1) s
    assert set(phases[1:]) == {"measure"}
    assert f"{n_warm} warm-up requests excluded" in out


def test_warmup_requests_are_the_first_n(mock_server, tmp_path, cli):
    """--warmup-requests 3 --requests 5: 8 records, ids 1-3 flagged warm-up, the summary counts 5."""
    code, _, err = cli([*target(mock_server), "--warmup-requests", 3, "--requests", 5, "--quiet",
                        "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    assert [(r["request_id"], r["warmup"]) for r in run.records] == [(i, i <= 3) for i in range(1, 9)]
    assert run.summary["requests"]["total"] == 5 and run.summary["requests"]["warmup"] == 3
    assert run.summary["run"]["load"]["warmup_requests"] == 3


# -- 5. early stop ---------------------------------------------------------------------------------------

def test_error_rate_above_the_limit_stops_the_run_early(make_mock, tmp_path, cli):
    """Every request answered 500, --max-error-rate 50, --duration 30: the run stops early (its
    measured span ends long before the planned 30 s), run.stopped_early says why (the error rate),
    the exit code is 3 (not one request succeeded; 99 when some did) and the report is still written. (--keep-going: the all-failed brake would
    stop this run first.)"""
    server = make_mock(error_rate=1.0)
    code, out, err = cli([*target(server), "--threads", 4, "--duration", 30, "--max-error-rate", 50, "--quiet",
                          "--output-dir", tmp_path, "--keep-going"])
    assert code == 3, err
    run = only_run(tmp_path)
    assert run.summary["run"]["duration_s"] < 30
    reason = run.summary["run"]["stopped_early"]
    assert isinstance(reason, str) and "error rate" in reason and "\n" not in reason
    assert run.summary["requests"]["failed"] >= 20
    assert run.summary["errors"].get("http_status", 0) >= 20
    assert (run.path / "report.html").is_file()
    assert "stopped early" in err and "stopped early" in out


# -- 6. weighted datasets --------------------------------------------------------------------------------

def test_weighted_datasets_are_drawn_in_proportion(make_mock, tmp_path, cli):
    """--dataset a=..:1 --dataset b=..:3, 200 requests: dataset b's share is within a 3-sigma binomial
    band of 75 %; summary.datasets has both, with the records' counts; queries come from their file."""
    server = make_mock(ttft_ms=0, itl_ms=0, tokens=2)
    a, b = tmp_path / "a.txt", tmp_path / "b.jsonl"
    a.write_text("alpha one\nalpha two\n", encoding="utf-8")
    b.write_text('{"query": "beta one"}\n{"query": "beta two"}\n{"query": "beta three"}\n', encoding="utf-8")
    n = 200
    code, _, err = cli([*target(server), "--dataset", f"a={a}:1", "--dataset", f"b={b}:3", "--requests", n,
                        "--threads", 8, "--seed", 3, "--quiet", "--output-dir", tmp_path / "out"])
    assert code == 0, err
    run = only_run(tmp_path / "out")
    assert len(run.records) == n
    counts = {name: sum(1 for r in run.records if r["dataset"] == name) for name in ("a", "b")}
    assert counts["a"] + counts["b"] == n
    sigma = math.sqrt(n * 0.25 * 0.75)
    assert abs(counts["b"] - 0.75 * n) <= 3 * sigma, counts
    for r in run.records:
        assert r["query"].startswith("alpha" if r["dataset"] == "a" else "beta")
    datasets = run.summary["datasets"]
    assert set(datasets) == {"a", "b"}
    for name in ("a", "b"):
        assert datasets[name]["requests"] == counts[name]
        assert datasets[name]["ok"] == counts[name]
        assert datasets[name]["ttft_ms"]["count"] == counts[name]


# -- 7. config files -----------------------------------------------------------------------------------

def _toml_str(text) -> str:
    return json.dumps(str(text))  # a JSON string is a valid TOML basic string


def test_config_file_options_with_command_line_overrides(make_mock, tmp_path, cli):
    """A TOML file sets threads, duration, slo and dataset; --threads on the command line wins; a
    --dataset on the command line replaces the file's datasets (it does not add to them); without
    one, the file's list is used."""
    server = make_mock(ttft_ms=5, itl_ms=1, tokens=2)
    file_ds, cli_ds = tmp_path / "file.txt", tmp_path / "cli.txt"
    file_ds.write_text("from the file\n", encoding="utf-8")
    cli_ds.write_text("from the command line\n", encoding="utf-8")
    conf = tmp_path / "run.toml"
    conf.write_text("\n".join([
        "threads = 2",
        "duration = 0.8",
        'slo = ["ttft_p95 < 5s", "success >= 90%"]',
        f"dataset = [{_toml_str(f'filed={file_ds}:1')}, {_toml_str(f'other={file_ds}:2')}]",
        "quiet = true",
    ]) + "\n", encoding="utf-8")

    args = parse_run_args(["--config", str(conf)])
    assert args.threads == 2 and args.duration == 0.8 and args.quiet is True
    assert args.dataset == [f"filed={file_ds}:1", f"other={file_ds}:2"]
    assert args.slo == ["ttft_p95 < 5s", "success >= 90%"]  # --slo is repeatable: one item per term

    code, _, err = cli([*target(server), "--config", conf, "--threads", 3, "--dataset", f"cmd={cli_ds}",
                        "--output-dir", tmp_path / "out"])
    assert code == 0, err
    run = only_run(tmp_path / "out")
    s = run.summary
    assert s["run"]["threads"] == 3 and s["run"]["load"]["threads"] == 3
    assert {r["thread_id"] for r in run.records} <= {1, 2, 3}
    assert set(s["datasets"]) == {"cmd"}
    assert {r["dataset"] for r in run.records} == {"cmd"}
    assert {r["query"] for r in run.records} == {"from the command line"}
    assert [v["expr"] for v in s["slo"]] == ["ttft_p95 < 5s", "success >= 90%"]
    assert s["run"]["config"]["duration_s"] == 0.8
    assert s["run"]["config"]["config_file"] == str(conf)


# -- 8. bad input ------------------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param(["--slo", "ttft_p95 800ms"], "needs an operator", id="malformed-slo"),
    pytest.param(["--slo", "ttft_p42<800ms"], "unknown metric", id="unknown-slo-metric"),
    pytest.param(["--dataset", "a={q}:0"], "weight must be greater than 0", id="dataset-weight-0"),
    pytest.param(["--rate", "0", "--duration", "1"], "--rate must be greater than 0", id="rate-0"),
    pytest.param(["--rate", "-1", "--duration", "1"], "--rate must be greater than 0", id="rate-negative"),
    pytest.param(["--sweep-threads", "1,x", "--duration", "1"], "--sweep-threads", id="sweep-not-a-number"),
    pytest.param(["--sweep-threads", "1,2", "--sweep-rate", "1,2", "--duration", "1"], "cannot be combined",
                 id="two-sweeps"),
    pytest.param(["--cooldown", "1", "--duration", "1"], "--cooldown", id="cooldown-without-sweep"),
    pytest.param(["--warmup", "1"], "warm-up needs --duration", id="warmup-without-duration"),
    pytest.param(["--config", "{bad_conf}"], "unknown option 'thread'", id="unknown-config-key"),
    pytest.param(["--config", "{tmp}/missing.toml"], "no such file", id="config-missing"),
    pytest.param(["--max-error-rate", "150", "--duration", "1"], "--max-error-rate", id="max-error-rate-150"),
    pytest.param(["--dataset", "a={q}", "--param-file", "{q}"], "cannot be combined", id="dataset-and-param-file"),
    pytest.param(["--rate", "5"], "--rate needs --duration", id="rate-without-end"),
    pytest.param(["--rate", "5", "--ramp-up", "2", "--duration", "1"], "--ramp-up", id="ramp-up-with-rate"),
]


@pytest.mark.parametrize("extra,needle", BAD_INPUT)
def test_bad_load_input_exits_2_with_one_line_and_sends_nothing(extra, needle, mock_server, tmp_path, cli):
    """Bad load options, SLOs, datasets or config files: exit 2, one line on stderr naming the problem,
    no request reaches the server and no run folder is made."""
    q = tmp_path / "q.txt"
    q.write_text("hello\n", encoding="utf-8")
    bad_conf = tmp_path / "bad.toml"
    bad_conf.write_text("thread = 4\n", encoding="utf-8")
    args = [a.format(q=q, tmp=tmp_path, bad_conf=bad_conf) for a in extra]
    out_dir = tmp_path / "out"
    code, out, err = cli([*target(mock_server), "--output-dir", out_dir, *args])
    assert code == 2, (out, err)
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert mock_server.stats.snapshot()["requests"] == 0
    assert not out_dir.exists() or not any(p.is_dir() for p in out_dir.iterdir())


# -- 9. seeds ------------------------------------------------------------------------------------------

def _scheduled_offsets_ms(run: Run) -> list:
    first = run.records[0]["scheduled_at"]
    return [(r["scheduled_at"] - first) * 1000 for r in run.records]


def _expected_offsets_ms(rate, seed, n) -> list:
    return [ns / 1e6 for ns in itertools.islice(arrival_offsets_ns(rate, "poisson", seed), n)]


def test_same_seed_same_poisson_schedule_and_the_seed_is_always_recorded(make_mock, tmp_path, cli):
    """Two open-loop runs with --seed 5 --arrival poisson have the same scheduled_at offsets (relative to
    the first request), those of arrivals.arrival_offsets_ns(rate, poisson, 5); a run without --seed
    records the seed it drew in run.load.seed, and its arrivals follow that seed."""
    server = make_mock(ttft_ms=2, itl_ms=1, tokens=2)
    rate, n = 25, 6
    runs = []
    for i, seed_args in enumerate((["--seed", 5], ["--seed", 5], [])):
        out_dir = tmp_path / f"run{i}"
        code, _, err = cli([*target(server), "--rate", rate, "--arrival", "poisson", "--requests", n,
                            "--threads", 8, *seed_args, "--quiet", "--output-dir", out_dir])
        assert code == 0, err
        runs.append(only_run(out_dir))
    first, second, unseeded = runs
    assert first.summary["run"]["load"]["seed"] == second.summary["run"]["load"]["seed"] == 5
    expected = _expected_offsets_ms(rate, 5, n)
    assert _scheduled_offsets_ms(first) == pytest.approx(expected, abs=5.0)
    assert _scheduled_offsets_ms(second) == pytest.approx(_scheduled_offsets_ms(first), abs=5.0)
    seed = unseeded.summary["run"]["load"]["seed"]
    assert isinstance(seed, int) and not isinstance(seed, bool) and seed > 0
    assert unseeded.summary["run"]["config"]["seed"] == seed
    assert _scheduled_offsets_ms(unseeded) == pytest.approx(_expected_offsets_ms(rate, seed, n), abs=5.0)


# -- regressions: bugs found while writing these tests --------------------------------------------

def test_warmup_seconds_with_a_request_count_still_measures_that_many(mock_server, tmp_path, cli):
    """--warmup S --requests N: the warm-up seconds come first, then N measured requests."""
    code, _, err = cli([*target(mock_server), "--warmup", 0.5, "--requests", 5, "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    assert run.summary["requests"]["warmup"] > 0
    assert run.summary["requests"]["total"] == 5
    assert sum(not r["warmup"] for r in run.records) == 5


def test_not_sent_after_an_early_stop_counts_only_arrivals_due_before_the_stop(make_mock, tmp_path, cli):
    """Open loop stopped early by the error rate: requests.not_sent is at most the arrivals due while
    the run was sending (rate x elapsed), not the rest of the planned --duration."""
    server = make_mock(error_rate=1.0)
    began = time.monotonic()
    code, out, err = cli([*target(server), "--rate", 50, "--duration", 30, "--threads", 8, "--max-error-rate", 50,
                          "--quiet", "--output-dir", tmp_path])
    took = time.monotonic() - began
    assert code == 3, err  # every request failed
    run = only_run(tmp_path)
    assert run.summary["run"]["stopped_early"]
    assert run.summary["requests"]["not_sent"] <= 50 * took


def test_cancellations_at_the_end_of_a_sweep_level_do_not_stop_the_next_level(make_mock, tmp_path, cli):
    """Requests cancelled by the run itself at the end of a level are not server errors: with
    --max-error-rate, a healthy but slow server is swept through every level, no early stop."""
    server = make_mock(ttft_ms=3000, itl_ms=1, tokens=2)
    code, _, err = cli([*target(server), "--sweep-threads", "20,21", "--duration", 0.5, "--grace", 0,
                        "--max-error-rate", 50, "--quiet", "--output-dir", tmp_path])
    run = only_run(tmp_path)
    assert run.summary["run"]["stopped_early"] is None
    assert code == 3, err  # no early stop; but each request was cut at its level's end: none succeeded


def test_a_sweeps_whole_run_rates_leave_out_cooldowns_and_warm_ups(mock_server, tmp_path, cli):
    """Whole-run requests/s of a sweep divides by the levels' own measured windows, not by the span
    from the first level's start to the last level's end (cooldown and warm-ups excluded)."""
    code, _, err = cli([*target(mock_server), "--sweep-threads", "1,2", "--duration", 0.5, "--cooldown", 0.5,
                        "--warmup", 0.3, "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    summary = only_run(tmp_path).summary
    levels = summary["levels"]
    windows = sum(level["throughput"]["requests_per_s"] and
                  level["requests"]["ok"] / level["throughput"]["requests_per_s"] for level in levels)
    assert summary["run"]["duration_s"] == pytest.approx(windows, rel=1e-6)
    span = levels[-1]["to_s"] - levels[0]["from_s"]  # first level's start to the last one's end
    assert summary["run"]["duration_s"] < span - 0.5  # the 0.5 s cooldown (and the warm-ups) left out


def test_credentials_in_urls_are_masked_in_every_output(mock_server, tmp_path, cli):
    host, port = mock_server.base_url.split("//")[1].split("/")[0].split(":")
    url = f"http://ops:hunter2secret@{host}:{port}/v1"
    code, out, err = cli(["--base-url", url, "--requests", 2, "--quiet", "--output-dir", tmp_path])
    assert code == 0, err
    run = only_run(tmp_path)
    assert "hunter2secret" not in out + err
    for name in ("summary.json", "report.html"):
        assert "hunter2secret" not in (run.path / name).read_text(encoding="utf-8")
    assert "hunter2secret".encode() not in (tmp_path / "history.db").read_bytes()


def test_a_closed_terminal_does_not_lose_records(tmp_path):
    """`sse-perf ... | head -2`: the live table's pipe closes mid-run; every request is still recorded."""
    import subprocess
    import sys

    proc = subprocess.Popen(f"{sys.executable} -m sse_perf_tool --demo --demo-mock {FAST_DEMO} --threads 4 "
                            f"--duration 1.5 --output-dir {tmp_path} | head -2", shell=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.communicate(timeout=60)
    run = only_run(tmp_path)
    assert run.summary["requests"]["total"] == len(run.records) >= 8
