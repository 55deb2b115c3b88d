"""report_capacity: the open loop's offered rate per second and throughput by concurrency."""

from __future__ import annotations

from sse_perf_tool.report_capacity import concurrency_view, finished_per_second, offered_rates


def _row(second, active=4, started=0, ok=0, failed=0, tokens=0, phase="measure", level=None):
    return {"second": second, "active_threads": active, "requests_started": started, "requests_ok": ok,
            "requests_failed": failed, "output_tokens": tokens, "phase": phase, "level": level}


def _summary(model="open", rate=5.0, duration=4.0, levels=None, sweep=None):
    summary = {"run": {"load": {"model": model, "rate": rate, "sweep": sweep},
                       "config": {"duration_s": duration}}}
    if levels is not None:
        summary["levels"] = levels
    return summary


def test_the_offered_rate_is_due_until_the_duration_then_nothing_is():
    rows = [_row(s, started=5) for s in range(4)] + [_row(4), _row(5)]  # two seconds of late finishes
    assert offered_rates(_summary(), rows) == [5.0, 5.0, 5.0, 5.0, 0.0, 0.0]


def test_a_run_for_a_number_of_requests_is_offered_until_its_last_sending_second():
    rows = [_row(0, started=3), _row(1, started=3), _row(2, started=0), _row(3, started=2), _row(4)]
    assert offered_rates(_summary(rate=3.0, duration=0.0), rows) == [3.0, 3.0, 3.0, 3.0, 0.0]


def test_a_rate_sweep_offers_each_levels_rate_and_nothing_in_its_cooldowns():
    levels = [{"level": {"rate": 2}, "from_s": 0.0, "to_s": 3.4},
              {"level": {"rate": 8}, "from_s": 5.0, "to_s": 8.2}]
    rows = [_row(s) for s in range(9)]
    assert offered_rates(_summary(rate=None, duration=3.0, levels=levels), rows) == \
        [2.0, 2.0, 2.0, 0.0, 0.0, 8.0, 8.0, 8.0, 0.0]


def test_a_thread_sweep_in_the_open_loop_offers_the_one_rate_in_each_level():
    levels = [{"level": {"threads": 2}, "from_s": 0.0, "to_s": 2.5}, {"level": {"threads": 4}, "from_s": 3.0}]
    rows = [_row(s) for s in range(6)]
    assert offered_rates(_summary(rate=4.0, duration=2.0, levels=levels), rows) == [4.0, 4.0, 0.0, 4.0, 4.0, 0.0]


def test_a_closed_loop_has_no_offered_rate():
    assert offered_rates(_summary(model="closed", rate=None), [_row(0)]) is None
    assert offered_rates({}, [_row(0)]) is None


def test_finished_per_second_counts_ok_and_failed():
    assert finished_per_second([_row(0, ok=2, failed=1), _row(1), {"second": 2}]) == [3, 0, None]


def test_throughput_by_concurrency_averages_the_seconds_at_each_count():
    rows = [_row(0, active=1, tokens=50, ok=1), _row(1, active=2, tokens=90, ok=1),
            _row(2, active=2, tokens=110, ok=3), _row(3, active=4, tokens=200, failed=2),
            _row(4, active=0, tokens=30),  # nothing in flight: left out
            _row(5, active=4, tokens=9)]   # the run's last, partial second: left out
    view = concurrency_view(_summary(model="closed"), rows)
    assert view["points"] == [{"c": 1, "seconds": 1, "tps": 50.0, "rps": 1.0},
                              {"c": 2, "seconds": 2, "tps": 100.0, "rps": 2.0},
                              {"c": 4, "seconds": 1, "tps": 200.0, "rps": 2.0}]
    assert view["only"] is None and view["open_loop"] is False


def test_warmup_and_cooldown_seconds_are_not_counted():
    rows = [_row(0, active=1, tokens=999, phase="warmup"), _row(1, active=2, tokens=10),
            _row(2, active=3, tokens=30), _row(3, active=3, tokens=999, phase="cooldown"), _row(4)]
    assert [(p["c"], p["tps"]) for p in concurrency_view(_summary(), rows)["points"]] == [(2, 10.0), (3, 30.0)]


def test_one_concurrency_gives_no_points_but_names_it():
    rows = [_row(s, active=8, tokens=100) for s in range(5)]
    view = concurrency_view(_summary(model="closed"), rows)
    assert view["points"] == [] and view["only"] == 8


def test_a_sweep_or_an_empty_series_has_no_concurrency_view():
    assert concurrency_view(_summary(levels=[{"level": {"threads": 2}}]), [_row(0), _row(1)]) is None
    assert concurrency_view(_summary(), []) is None
