"""Pure tests: no sockets, no subprocesses, no waiting on real time (a scripted clock instead).
One file per package module: tests/unit/test_stats.py tests sse_perf_tool/stats.py."""
