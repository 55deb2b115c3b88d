"""Every English string sse-perf shows, one table per output: the terminal summary (TERMINAL),
the terminal comparison (COMPARE), the HTML run report (REPORT) and the HTML comparison
(COMPARE_REPORT). The metrics' own names and definitions live in the metric registry (metrics.py).
zh.py has the same keys (a test checks it). Pure data; imports nothing.
"""

from __future__ import annotations

# live.py: the final summary table and its warnings
TERMINAL: dict[str, str] = {
        "b_trace": "replaying the trace {file} at {speed}× (at most {n} in flight)",
        "abandoned": "abandoned by their users (--cancel-rate; not failures)",
        "b_for": "for {s} s", "b_or": " or {n} requests", "b_requests": "{n} requests", "b_one_each": "one request per thread",
        "b_sweep": "sweep of {kind} {values}, {length} each", "b_kind_threads": "threads", "b_kind_rate": "rate",
        "b_arrivals": " ({arrival} arrivals, at most {n} in flight)", "b_rate": "{rate} requests/s", "b_sep": ", ",
        "b_ramp": "ramp-up {s} s", "b_threads": "{n} threads", "b_ray": "read by Ray workers ({cluster})", "b_processes": "read in {n} worker processes",
        "b_warmup_s": "after {s} s warm-up", "b_warmup_n": "after {n} warm-up requests", "b_datasets": "; datasets ",
        "b_proxy": " via proxy {proxy}", "b_ctrl_c": "(Ctrl-C stops and keeps the results)",
        "demo": "demo: embedded mock server at {url} (ttft {ttft} ms, {itl} ms per token, {tokens} tokens)",
        "history_line": "history: run #{id} in {path}",
        "legend": "(per second: ok, fail, tok/s; latencies in ms of the requests that ended in it; succ% since the start)",
        "incomplete": "the run did not finish (killed or crashed): figures rebuilt from its records",
        "redirected": "{n} requests followed a same-origin redirect (--follow-redirects): their TTFT includes it",
        "stops": "cancelled generations stopped at the server: {ok} (the stop call failed for {failed})",
        "turn": "turn",
        "lang": "en",
        "by_status": "failed by HTTP status", "paused": "paused for human input (not failures)",
        "cost": "server-reported cost", "priced": "over {n} priced requests",
        "server_vs_client": "{server} p50 {s} ms vs the client's {client} p50 {c} ms: {d} ms outside the server's clock (network, queueing)",
    "h_time": "time", "h_threads": "threads", "h_ok": "ok", "h_fail": "fail", "h_succ": "succ%",  # the live table's columns
        "title": "Summary", "requests": "requests", "ok": "ok", "failed": "failed", "success": "success rate",
        "duration": "duration", "rps": "requests/s", "tps": "output tokens/s", "tokens": "output tokens",
        "errors": "errors", "metric": "metric", "folder": "run folder", "report": "report",
        "interrupted": "interrupted by the user: partial results",
        "stopped": "stopped early", "warmup": "warm-up requests excluded from every figure",
        "open": "open loop", "closed": "closed loop", "arrivals": "arrivals", "in_flight": "at most {n} in flight",
        "not_sent": "{n} scheduled requests were never sent: all {threads} threads were busy (the server "
                    "did not keep up, or --threads is too low); the latencies above understate the wait",
        "goodput": "goodput", "of_requests": "of requests within", "no_bounds": "no per-request bound",
        "slo": "SLO", "met": "met", "missed": "MISSED", "level": "level", "succ": "succ%",
        "best": "highest level within the SLOs", "none_met": "no level met the SLOs",
        "dataset": "dataset", "threads": "threads", "rate": "req/s", "rate_level": "rate",
        "client": "load generator: lag p50 {p50} ms, p99 {p99} ms; CPU mean {mean}%, max {max}% ({cores} usable core(s))",
        "saturated": "the load generator was saturated from {s} s on: latencies after that include sse-perf's own "
                     "delay; use fewer threads, or more worker processes (--processes) on a machine with spare cores",
        "saturated_one": "the load generator was saturated from {s} s on: latencies after that include sse-perf's "
                         "own delay; run it on a machine with spare cores",
        "busy": "the machine was busy with other work from {s} s on: other processes used up to {others}% of its "
                "{cores} CPUs (load average up to {load}) while sse-perf used little: latencies include that delay; "
                "stop the other work or use a quieter machine",
        "empty": "empty answers (ok, no text, 0 tokens)", "finish": "finish reasons", "note": "note",
        "findings": "findings", "findings_more": "{n} more in the report", "sev_critical": "critical", "sev_warn": "warn", "sev_info": "info",
    }

# compare.py: the terminal comparison (the figures' own labels come from metrics.py)
COMPARE: dict[str, str] = {
    "findings_vs": "findings of {run} against the baseline (+ new, - gone; {same} the same):",
        "metric": "metric", "better": "better", "worse": "worse", "same": "same",
        "runs": "runs (changes are against [1], the baseline):",
        "differ": "!! the runs' settings differ ({items}): some differences below may come from them, "
                  "not from the models",
        "gate_failed": "regression gate FAILED: {n} metric(s) worse than the baseline by more than {pct}%:",
        "gate_passed": "regression gate passed: no metric worse than the baseline by more than {pct}%",
        "note": "↑/↓ = the value went up/down; better/worse by the metric's direction; within ±1% = same",
    }

# report.py and its views: the HTML run report
REPORT: dict[str, str] = {
    "series_power_limit": "{device} power limit",
    "nav_analysis": "Analysis", "sec_analysis": "A model's reading", "analysis_by": "Written by a model, not by sse-perf: {model} at {endpoint}, {when}. Check it against the figures below.",
    "nav_findings": "Findings", "sec_findings": "Findings", "findings_hint": "What the numbers say, the most severe first, each with its evidence; a link opens the chart that shows it, with those seconds marked. Thresholds: docs/metrics.md.", "sev_critical": "critical", "sev_warn": "warn", "sev_info": "info", "finding_chart": "see {chart}",
    "chart_in_flight": "Requests in flight (threads busy)",
    "series_in_flight": "in flight",
    "chart_offered": "Offered vs achieved rate",
    "series_offered": "offered (due)",
    "series_sent": "sent",
    "series_finished": "finished",
    "offered_sub": "offered {offered}, achieved {achieved} over the run, {not_sent} due but never sent",
    "offered_levels": "each level's rate",
    "sec_concurrency": "Throughput by concurrency",
    "nav_concurrency": "Concurrency",
    "conc_hint": "Each point is the mean over the measured seconds that ended with that many requests in "
                 "flight (warm-up, cooldown and the run's last, partial second left out). Throughput "
                 "that stops rising as concurrency grows is the deployment's ceiling.",
    "conc_only": "Every measured second ended with {n} requests in flight: a ramp-up (--ramp-up S), an "
                 "open-loop rate (--rate) or a sweep (--sweep-threads) shows how throughput changes with "
                 "concurrency.",
    "conc_x_closed": "Requests in flight (busy threads)",
    "conc_x_open": "Requests in flight",
    "conc_tps": "output tokens/s",
    "conc_rps": "requests finished/s",
    "conc_seconds": "seconds",
    "verdict_nothing_ok": "Not a result: none of the {n} measured requests succeeded. Most frequent error: {why}",
    "verdict_slo": "Service levels missed: {slos}",
    "verdict_stopped": "Stopped early: {why}",
    "verdict_interrupted": "Interrupted: the figures cover the part that ran",
    "verdict_failures": "{pct} of the requests failed: see Errors",
    "verdict_client": "The load generator or its machine was busy: latencies include that delay",
    "verdict_good": "{n} requests, {pct} successful, nothing to caution about",
    "sec_turns": "Per conversation turn",
    "turn": "Turn",
    "turns_note": "With --turns, each virtual user holds a conversation: later turns carry the earlier ones (a longer prompt), so their TTFT shows what the growing context costs.",
    "server_title": "The server's own timings (Dify's usage)",
    "server_client": "client",
    "server_diff": "client − server",
    "server_note": "What the server measured of each request beside what sse-perf measured: the difference is the time outside the server's clock (the network, and the queue before its pipeline starts).",
    "paused_note": "{n} requests paused for human input (a Dify workflow's human-input node): they closed on purpose and count as neither ok nor failed.",
    "errors_by_status": "Failed by HTTP status",
    "cost": "Server-reported cost",
    "cost_priced": "{n} priced requests",
    "lang": "en",  # views that take only the table read the language from it
    "slowest_of": "Ten highest {metric}",
    # page and navigation
    "title": "sse-perf load test report",
    "nav_summary": "Summary",
    "nav_timeseries": "Over time",
    "nav_gpu": "GPU",
    "nav_distributions": "Distributions",
    "nav_errors": "Errors",
    "nav_datasets": "Datasets",
    "nav_slowest": "Slowest",
    "nav_options": "Options",
    "nav_glossary": "Glossary",
    "interrupted": "Interrupted: partial results",
    "completed": "Completed",
    # header
    "target": "Target",
    "flavour": "API flavour",
    "model_label": "Model label",
    "model": "Model",
    "threads": "Threads",
    "ramp_up": "Ramp-up",
    "duration": "Duration",
    "started": "Started",
    "ended": "Ended",
    "tool_version": "Tool version",
    "token_source": "Output tokens counted by",
    "token_source_usage": "server usage",
    "token_source_tokenizer": "tiktoken",
    "token_source_server": "server tokenizer",
    "token_source_tokenizer:hf": "tokenizer.json",
    "token_source_estimate": "estimate",
    "finish_reasons": "Finish reasons",
    "card_requests_empty": "{n} empty",
    "token_note_head": "Note:",
    "busy_head": "The machine was busy with other work from {s} s on:",
    "busy_body": "load average up to {load} on {cores} cores while sse-perf itself used at most {cpu} CPU meanwhile. "
    "The scheduling delay of those other processes is in the latencies; stop them or use a quieter machine.",
    # summary cards
    "sec_summary": "Summary",
    "card_requests": "Requests",
    "card_requests_sub": "{ok} ok · {failed} failed",
    "card_success": "Success rate",
    "card_rps": "Requests/s",
    "card_tps": "Output tokens/s",
    "card_tps_sub": "{tokens} tokens in total",
    "card_p95_sub": "p95 {value}",
    "card_p50_sub": "p50 {value}",
    "card_errors": "Errors",
    "card_errors_none": "no failed request",
    # time series
    "sec_timeseries": "Over time",
    "ts_hint": "Drag across a chart to zoom every chart to that range; "
    "shift+drag pans; pinch on touch screens; double-click resets.",
    "reset_zoom": "Reset zoom",
    "range_full": "Whole run",
    "range_shown": "Showing {from} – {to}",
    "no_timeseries": "The time series is empty.",
    "group_load": "Load and throughput",
    "group_latency": "Latency (requests finished in each second)",
    "group_gpu": "GPU",
    "group_server": "Server metrics",
    "group_other": "Other series",
    "chart_active_threads": "Active threads",
    "chart_requests": "Requests finished per second",
    "chart_tokens": "Output tokens per second",
    "chart_success": "Success rate, cumulative (%)",
    "series_active_threads": "active threads",
    "series_ok": "ok",
    "series_failed": "failed",
    "series_tokens": "tokens/s",
    "series_success": "success rate %",
    "series_p50": "p50",
    "series_p95": "p95",
    "gpu_util_pct": "GPU utilisation (%)",
    "gpu_mem_used_mib": "GPU memory used (MiB)",
    "gpu_temp_c": "GPU temperature (°C)",
    "gpu_power_w": "GPU power (W)",
    "gpu_sm_clock_mhz": "GPU SM clock (MHz)",
    "gpu_energy_j": "GPU energy (J, cumulative)",
    "series_mem_total": "{device} total",
    "mem_total_dashed": "dashed: memory total",
    "mem_total_is": "total {total} MiB",
    "chart_tokens_vs_util": "Output tokens/s vs GPU utilisation",
    "series_util": "GPU utilisation %",
    "series_util_mean": "mean GPU utilisation %",
    "per_gpu_mean": "mean over the GPUs",
    "srv_running": "Running requests",
    "srv_waiting": "Waiting requests",
    "srv_kv_cache": "KV-cache usage (0–1)",
    "srv_token_usage": "KV-cache token usage (0–1)",
    "gpu_other": "GPU {metric}",
    "per_gpu": "one line per GPU",
    "second_n": "second {n}",
    # GPU summary
    "sec_gpu": "GPU summary",
    "gpu_col_device": "GPU",
    "gpu_col_util_mean": "Util mean %",
    "gpu_col_util_max": "Util max %",
    "gpu_col_mem": "Peak memory / total (MiB)",
    "gpu_col_power": "Mean power (W)",
    "gpu_col_temp": "Max temp. (°C)",
    "gpu_col_energy": "Energy (J)",
    "gpu_col_samples": "Samples",
    "card_tpj": "Output tokens per joule",
    "card_tpj_sub": "{tokens} tokens / {energy} J of all GPUs",
    "tpj_unknown": "Output tokens per joule: not known, as not every GPU reported its energy "
    "(energy is read through local NVML only; GPUs sampled over SSH have none).",
    "gpu_note": "Means and maxima over the samples taken during the run (about one per second); "
    "energy counts from the first sample.",
    "g_gpu_title": "GPU utilisation",
    "g_gpu": "Share of the sampling period in which at least one kernel ran on the GPU "
    "(NVML / nvidia-smi): 100 % does not mean every SM was busy.",
    # distributions
    "sec_distributions": "Latency distributions",
    "dist_note": "Over successful requests. Histograms clip the long tail above p99 into the last bar.",
    "hist_requests": "requests",
    "hist_gaps": "gaps",
    "hist_empty": "No values.",
    "percentiles": "Percentiles (ms)",
    "metric": "Metric",
    "count": "Count",
    "mean": "Mean",
    "min": "Min",
    "max": "Max",
    # errors
    "sec_errors": "Errors",
    "no_errors": "Every request succeeded.",
    "err_kind": "Kind",
    "err_count": "Requests",
    "err_first": "First second",
    "err_last": "Last second",
    "err_examples": "Example messages",
    "err_connect": "refused, reset before the response, DNS or TLS failure",
    "err_timeout": "no byte within --timeout (connect, first byte or between events)",
    "err_http_status": "non-2xx HTTP status",
    "err_stream_error": "an error event inside a 200 stream",
    "err_truncated": "the stream ended before its terminal event",
    "err_protocol": "unparseable framing or JSON",
    "err_cancelled": "stopped by the user or the end of the run while in flight",
    "err_internal": "a bug in sse-perf itself (traceback on stderr), not the server's fault",
    # datasets
    "sec_datasets": "Per dataset",
    "dataset": "Dataset",
    "no_dataset": "(none)",
    "requests": "Requests",
    "ok": "OK",
    "failed": "Failed",
    "success_pct": "Success %",
    "tokens_mean": "Mean output tokens",
    # slowest
    "sec_slowest": "Slowest requests",
    "slowest_note": "Successful requests with the highest values.",
    "req_id": "Request",
    "thread": "Thread",
    "start_s": "Start (s)",
    "tokens": "Tokens",
    "query": "Query",
    "none_yet": "No successful request.",
    # options
    "sec_options": "Options of this run",
    # glossary
    "sec_glossary": "What the numbers mean",
    "g_tokens": "Server-reported usage when the stream has it, else the --tokenizer count: the server's "
    "own tokenizer endpoint, a local tokenizer.json or tiktoken (OpenAI's tokenizer), else an estimate.",
    "g_success": "HTTP 2xx, a well-formed stream, the flavour's terminal event (OpenAI: a finish_reason "
    "before [DONE]) and a body that ends properly. A proper answer with no text is ok and counted as "
    "empty. Failed requests count in totals and errors, never in latencies.",
    "g_rates": "Requests/s and output tokens/s = totals / measured duration (first send "
    "to last finish).",
    "g_percentiles": "Linear interpolation between closest ranks (numpy's default), over "
    "successful requests.",
    "g_second": "Second k covers [k, k+1) after the start. Per-second latencies are over "
    "requests that finished in that second; the success rate is cumulative.",
    "g_second_title": "Per second",
    "g_clock_title": "Clock",
    "g_clock": "Durations come from one monotonic clock, read as the bytes arrive and "
    "before JSON parsing.",
    # load models (issue 5): open/closed loop, warm-up, sweeps, SLOs, goodput
    "nav_slo": "SLOs",
    "nav_sweep": "Sweep",
    "fact_load": "Load model",
    "load_open": "Open loop",
    "load_closed": "Closed loop",
    "fact_arrivals": "Arrivals",
    "arrival_poisson": "Poisson",
    "arrival_constant": "constant",
    "rate_per_s": "{rate} req/s",
    "fact_seed": "Seed",
    "fact_ray": "Ray workers",
    "ray_fact": "{n} on {nodes} node(s)",
    "ray_clock_bound": "clocks within ±{ms} ms",
    "ray_one_clock": "on this machine's clock",
    "sec_workers": "Workers",
    "w_worker": "Worker", "w_where": "Where", "w_versions": "Versions", "w_offset": "Clock offset (ms)",
    "w_bound": "Bound (ms)", "w_cpu": "CPU of its core", "w_lag": "Worst lag p99", "w_limit": "The limit",
    "w_same_clock": "same clock", "w_limit_from": "from second {s}", "w_limit_never": "no",
    "workers_note": "Each worker process reads its share of the streams on one core. Its clock offset is how far its monotonic clock is from this machine's (records are moved onto this machine's clock; durations within a request are its own); the bound is how well that offset is known. A worker that was the limit added its own delay to the timings from that second on: give the run more workers.",
    "fact_processes": "Worker processes",
    "processes_fact": "{n}",
    "fact_sweep": "Sweep",
    "sweep_fact": "{kind} {values}",
    "sweep_kind_threads": "threads",
    "sweep_kind_rate": "rate (req/s)",
    "sweep_cooldown": "cooldown {s} s",
    "fact_warmup": "Warm-up",
    "warmup_seconds": "{s} s",
    "warmup_seconds_level": "{s} s per level",
    "warmup_first": "first {n} requests",
    "warmup_excluded": "{n} requests excluded from statistics",
    "stopped_early_badge": "Stopped early",
    "stopped_early": "Stopped early:",
    "not_sent_warning": "{n} scheduled arrivals were never sent: when they were due every thread was "
    "still busy, up to the end of the run. They count in no statistic; the server or --threads "
    "could not keep up with the arrival rate.",
    "unit_rps": "req/s",
    "unit_tps": "tok/s",
    "level_thread": "{n} thread",
    "level_threads": "{n} threads",
    "level_rate": "{n} req/s",
    "card_goodput": "Goodput",
    "card_goodput_sub": "{pct} of requests",
    "goodput_within": "within {bounds}",
    "goodput_no_bounds": "no latency SLO: every successful request counts",
    "sec_slo": "Service-level objectives",
    "slo_all_met": "All SLOs met",
    "slo_missed": "{missed} of {total} SLOs missed",
    "slo_scope_best": "Verdicts of the best level, {level}.",
    "slo_scope_first": "No level met every SLO: verdicts of the first level, {level}.",
    "slo_col_expr": "SLO",
    "slo_col_value": "Measured",
    "slo_col_limit": "Limit",
    "slo_col_verdict": "Verdict",
    "slo_met": "MET",
    "slo_missed_badge": "MISSED",
    "slo_note": "Whole-run figures, warm-up excluded. A value that was not measured never meets its SLO.",
    "sec_sweep": "Sweep: capacity per level",
    "best_level": "Highest level within the SLOs: {level}",
    "best_none": "No level met the SLOs",
    "best_no_slo": "No SLO was given (--slo), so no level is marked best.",
    "sweep_col_level": "Level",
    "sweep_col_rps": "Requests/s",
    "sweep_col_tps": "Output tok/s",
    "sweep_col_goodput": "Goodput req/s",
    "sweep_col_slo": "SLOs",
    "sweep_note": "Each level's figures exclude its warm-up; latencies in ms over successful requests.",
    "curves_title": "Capacity curves",
    "curves_hint": "One point per level, labelled with its {kind}: how latency grows with throughput.",
    "curve_kind_threads": "thread count",
    "curve_kind_rate": "arrival rate (req/s)",
    "curve_title": "{metric} {stat} (ms)",
    "curve_x": "x axis",
    "curve_x_tps": "Output tokens/s",
    "curve_x_rps": "Requests/s",
    "curve_best": "best",
    "legend_met": "met every SLO",
    "legend_missed": "missed an SLO",
    "legend_unknown": "no SLO",
    "legend_best": "best level",
    "legend_limit": "SLO limit",
    "band_warmup": "warm-up",
    "band_cooldown": "cooldown",
    "band_legend_warmup": "warm-up (excluded from statistics)",
    "band_legend_cooldown": "cooldown between levels",
    "band_legend_level": "sweep levels (alternating bands, labelled)",
    "dist_warmup_note": "{n} warm-up requests are excluded.",
    "open_loop_note": "Open loop: queue = scheduled → sent (the arrival waited for a free thread); "
    "“from scheduled” adds it to TTFT and E2E, so a slow server cannot hide its backlog "
    "(no coordinated omission).",
    "g_goodput_title": "Goodput",
    "g_goodput": "Requests per second (and share of requests) that succeeded with every per-request "
    "bound met: each SLO on a per-request metric (a latency, or tokens/s per request) bounds every request "
    "(vLLM's definition).",
    "g_slo_title": "SLO",
    "g_slo": "Service-level objective given with --slo, e.g. ttft_p95<800ms: a whole-run figure "
    "compared with a limit. Any missed SLO makes the run exit with code 99.",
    "g_queue_title": "Queue time",
    "g_queue": "Open loop only: scheduled arrival → request sent, the time an arrival waited because "
    "every thread was busy. 0 in a closed loop.",
    "g_warmup_title": "Warm-up",
    "g_warmup": "Requests sent during the warm-up are recorded but excluded from every statistic "
    "(the server's caches and batches are still filling).",
    "g_loop_title": "Open vs closed loop",
    "g_loop": "Closed loop: each thread sends its next request when the last ends, so a slow server "
    "slows the load. Open loop: requests arrive on a schedule (a rate, Poisson or constant), "
    "whatever the server does.",
    "g_level_title": "Sweep level",
    "g_level": "One step of a sweep (a thread count or an arrival rate), measured on its own with its "
    "own warm-up; the best level is the highest one that meets every SLO.",
    # self-check of the load generator (sse-perf's own scheduling lag and CPU)
    "group_client": "Load generator (self-check)",
    "chart_client_lag": "Scheduling lag of sse-perf (ms)",
    "chart_client_cpu": "CPU of sse-perf (% of one core)",
    "series_p99": "p99",
    "series_cpu": "CPU %",
    "series_limit": "limit",
    "client_lag_sub": "how late a {sleep} sleep wakes up · dashed: limit {limit}",
    "client_cpu_sub": "dashed: limit {limit} · usable cores: {cores}",
    "fact_client_lag": "Client lag",
    "fact_client_lag_text": "p50 {p50} · p99 {p99}",
    "fact_client_cpu": "Client CPU",
    "fact_client_cpu_text": "mean {mean} · max {max}",
    "fact_client_cores": "Usable cores",
    "card_client_lag": "Client lag p99",
    "card_client_ok": "limit {limit} · CPU max {cpu}",
    "card_client_bad": "saturated from {s} s on · limit {limit}",
    "saturated_head": "The load generator was saturated from {s} s on:",
    "saturated_body": "scheduling lag p99 up to {lag} (limit {lag_limit}), CPU up to {cpu} (limit {cpu_limit}). "
    "Latencies after that include sse-perf's own delay; use fewer threads, more worker processes "
    "(--processes) on a machine with spare cores, or free this one of other work.",
    "band_legend_saturated": "load generator saturated (latencies include sse-perf's own delay)",
    "g_client_title": "Self-check",
    "g_client": "A probe thread inside sse-perf sleeps {sleep} in a loop and measures how late it wakes up "
    "(scheduling lag: waiting for the interpreter lock or a CPU), and sse-perf's CPU use, once a second. "
    "The load generator counts as saturated from the first of {sustained} seconds in a row with lag p99 "
    "above {lag_limit} or CPU above {fraction} of the usable cores (one per process: the threads of one Python "
    "process share one interpreter lock); latencies measured after that include sse-perf's own delay.",
    # footer
    "generated": "Generated by sse-perf {version} at {when}.",
    "bundled": "Charts: Chart.js {chartjs}, chartjs-plugin-zoom {zoom}, Hammer.js {hammer} "
    "(MIT licence), inlined: this file needs no network.",
    "skipped_lines": "{n} unreadable line(s) of records.jsonl were skipped.",
    "null_note": "— means no value (not measured).",
    "latency_ms_note": "Latencies in ms over successful requests.",
}

# compare_report.py: the HTML comparison
COMPARE_REPORT: dict[str, str] = {
    "sec_findings": "Findings against the baseline", "findings_hint": "Each run's findings (see its report) as they differ from the baseline's: new, gone, or the same.", "change_new": "new", "change_gone": "gone", "change_unchanged": "same", "findings_none": "No finding in either run.",
        "title": "sse-perf comparison",
        "runs_n": "{n} runs",
        "baseline": "baseline",
        "nav_summary": "Main figures", "nav_settings": "Settings", "nav_timeseries": "Over time",
        "nav_distributions": "Distributions", "nav_sweep": "Sweep curves", "nav_glossary": "How to read",
        "sec_summary": "Main figures",
        "table_hint": "Changes are against the baseline, {base}. Green = better, red = worse by each metric's "
                      "direction; a change within ±1 % counts as the same. The bar in each cell compares the "
                      "value with the largest of its row.",
        "col_metric": "Metric",
        "dir_higher": "higher is better", "dir_lower": "lower is better",
        "m_requests_per_s": "Requests/s", "m_output_tokens_per_s": "Output tokens/s",
        "m_goodput_requests_per_s": "Goodput (requests/s)", "m_success_rate_pct": "Success rate (%)",
        "m_failed_requests": "Failed requests",
        "m_output_tokens_per_joule": "Output tokens per joule",
        "v_better": "better", "v_worse": "worse", "v_same": "same",
        "gate_passed": "No regression beyond {pct} %",
        "gate_failed": "{n} regression(s) beyond {pct} %",
        "regression": "regression (> {pct} %)",
        "regressions_title": "Worse than the baseline by more than {pct} %:",
        "sec_settings": "Settings",
        "settings_hint": "Highlighted rows differ between the runs.",
        "differ_banner": "The runs' settings differ ({items}): some differences may come from the settings, "
                         "not from the models.",
        "set_source": "Source", "set_load": "Load", "set_requests": "Requests", "set_max_tokens": "max_tokens",
        "set_dataset": "Workload", "set_duration": "Duration", "set_api": "API flavour", "set_base_url": "Target",
        "set_model": "Model", "set_started": "Started", "set_warmup": "Warm-up",
        "source_history": "history run #{id}", "source_folder": "run folder",
        "sec_timeseries": "Over time",
        "ts_hint": "x = seconds since each run started, one line per run. Second k is drawn at k + ½.",
        "chart_tps": "Output tokens/s", "chart_ttft": "TTFT p95 (ms) of the requests finished each second",
        "chart_ok": "Requests finished ok per second", "chart_gpu": "GPU utilisation (%, mean over GPUs)",
        "smoothing": "Smoothing", "smooth_off": "off", "smooth_n": "{n} s",
        "no_series": "No run has a time series.",
        "sec_distributions": "Distributions",
        "dist_hint": "Share of successful requests (warm-up excluded) at or below each latency. A curve further "
                     "left is faster; the horizontal gap at the 50 % and 95 % lines is the difference in p50 and p95.",
        "cdf_y": "requests ≤ x", "cdf_clipped": "x axis cut at {x} ms (long tail)",
        "no_records": "No successful request to draw.",
        "sec_sweep": "Sweep curves",
        "sweep_hint": "One line per run, one point per level: x = output tokens/s, y = latency p95. A curve "
                      "further right and lower serves more tokens at lower latency. A run that is not a sweep "
                      "is one point.",
        "curve_vs": "{metric} vs output tokens/s", "curve_x": "output tokens/s", "curve_y": "ms",
        "level_threads": "{n} thr", "level_rate": "{n} r/s",
        "bars_title": "At a glance",
        "sec_glossary": "How to read",
        "g_change": "Change = (run − baseline) / baseline × 100. No change is shown when the baseline is 0 or "
                    "has no value.",
        "g_direction": "Throughput, success rate, goodput and tokens per joule: higher is better. Latencies and "
                       "failed requests: lower is better.",
        "g_same": "Run-to-run noise: a change within ±1 % is shown as the same.",
        "g_gate": "sse-perf compare --baseline ID NEW --fail-on-regression 10% exits with code 99 when any "
                  "main metric of NEW is worse than the baseline by more than 10 %.",
        "g_metrics_of": "Definitions of {names} as in each run report's glossary (docs/metrics.md).",
        "generated": "Generated by sse-perf {version} at {when}.",
        "bundled": "Charts: Chart.js {chartjs} (MIT), inlined: the file needs no network.",
    }

# live_page.py and templates/live_app.js: the live view of a running test (--live)
LIVE: dict[str, str] = {
    "title": "sse-perf live",
    "target": "Target", "flavour": "Flavour", "model": "Model", "load": "Load", "started": "Started",
    "status_waiting": "waiting for the first second…",
    "status_running": "running · second {n}",
    "status_stopping": "stopping: cancelling requests in flight, writing results…",
    "status_ended": "ended",
    "status_lost": "connection lost: reconnecting…",
    "stop": "Stop the run",
    "stop_confirm": "Stop the run now? The requests in flight are cancelled and every result is written, as with "
                    "Ctrl-C in the terminal.",
    "stop_sent": "Stop sent",
    "stop_failed": "The stop was refused: {reason}",
    "headline": "This second (the terminal's row)",
    "warnings": "Warnings",
    "ended_at": "The run ended (exit code {code}). Run folder: {run_dir}",
    "report_at": "Report: {report}",
    "no_charts": "The charts appear with the first second's row.",
    "second_n": "second {n}",
    "kept": "Shows the last {n} seconds.",
}

# cli/ui_server.py and templates/ui*: the local console (sse-perf ui)
UI: dict[str, str] = {
    "title": "sse-perf console",
    "nav_runs": "Runs", "nav_new": "New run", "nav_targets": "Targets",
    "runs_hint": "Every run recorded in {db}. Select two or more to compare them.",
    "f_model": "Model name", "f_target": "Target", "f_status": "Status", "f_since": "Since",
    "f_any": "any", "filter": "Filter", "compare": "Compare selected",
    "h_id": "#", "h_started": "Started", "h_status": "Status", "h_model": "Model name", "h_target": "Target",
    "h_load": "Load", "h_requests": "Requests", "h_success": "Success %", "h_tps": "Tokens/s",
    "h_ttft": "TTFT p95", "h_files": "Files",
    "no_runs": "No run matches. Start one under New run, or run sse-perf in a terminal.",
    "report": "report", "no_report": "no report",
    "run_title": "Run #{id}", "run_folder": "Run folder", "files": "Files", "back": "All runs",
    "gone": "The run folder {dir} is not there any more.",
    "new_hint": "The options a run needs most. Start runs it exactly as the command line shown would, "
                "and opens its live view.",
    "use_target": "Saved target", "none": "none",
    "demo": "Demo (the embedded mock server)", "base_url": "Base URL", "api": "Flavour", "model": "Model",
    "model_name": "Run label (model name)", "key_file": "API key file", "key_env": "API key from environment variable",
    "param_file": "Query file", "datasets": "Weighted datasets (NAME=PATH[:WEIGHT], one per line)",
    "threads": "Threads", "rate": "Rate (requests/s, open loop)", "ramp_up": "Ramp-up (s)",
    "duration": "Duration (s)", "requests": "Requests in all", "slo": "SLOs (one per line)",
    "gpu": "GPU sources (local or ssh://user@host, one per line)",
    "server_metrics": "Server metrics URLs (one per line)", "headers": "Extra headers (Name: value, one per line)",
    "command": "Command line", "copy_command": "Copy", "copied": "Copied",
    "start": "Start", "starting": "Starting…", "check_ok": "The options are valid.",
    "active": "Runs started here", "no_active": "None yet.", "open_live": "live view", "stop": "Stop",
    "state_running": "running", "state_ended": "ended (exit code {code})",
    "targets_hint": "Saved in {db}. A target keeps where its API key is read from (a file or an environment "
                    "variable), never the key itself.",
    "t_name": "Name", "add_target": "Save a target (a new name adds one, a saved name replaces it)", "save": "Save", "delete": "Delete", "use": "New run with it",
    "no_targets": "No saved target yet.",
    "saved": "Saved.", "deleted": "Deleted.",
}

# findings.py: what the numbers say (title, evidence, suggestion of each finding, by its id)
FINDINGS: dict[str, dict[str, str]] = {
    "capacity_knee": {
        "title": "Capacity knee at {kind} {level}",
        "evidence": "from {kind} {level} to {next_level}, output tokens/s went from {tokens_per_s} to "
                    "{next_tokens_per_s} ({gain_pct:+} %) while {metric} rose {rise_pct} %",
        "suggestion": "past {level} the service queues instead of serving more: size for {level}, or add capacity"},
    "best_level": {
        "title": "Highest level within the SLOs: {kind} {level}",
        "evidence": "the highest sweep level at which every SLO was met",
        "suggestion": "plan for {level}; a level above it misses an SLO"},
    "no_level_met": {
        "title": "No level met the SLOs",
        "evidence": "even the lowest level ({kind} {lowest}) missed an SLO",
        "suggestion": "the service misses the SLOs at any load tested: fix it or the SLOs before sizing it"},
    "all_levels_met": {
        "title": "Every level met the SLOs",
        "evidence": "up to {kind} {level}, the highest tested",
        "suggestion": "the limit is above {level}: sweep higher to find it"},
    "goodput_peak": {
        "title": "Goodput peaks at {kind} {level}",
        "evidence": "{goodput_rps} requests/s within the SLO bounds at {kind} {level}",
        "suggestion": "more load past {level} brings fewer good answers per second"},
    "queue_building": {
        "title": "TTFT rises through the run (a queue building)",
        "evidence": "TTFT p95 went from {first_ms} ms in the first third of the run to {last_ms} ms in the last "
                    "({ratio}×)",
        "suggestion": "the load is above what the service sustains: lower it, or run longer to see where it settles"},
    "ramp_past_capacity": {
        "title": "Users added past capacity",
        "evidence": "from {threads} to {final_threads} active threads the output tokens/s stayed near {tokens_per_s} "
                    "(best {best_after})",
        "suggestion": "the service was full at about {threads} users; more only wait longer"},
    "scheduler_bound": {
        "title": "Requests wait while the GPUs are not busy",
        "evidence": "for {seconds} s, {waiting} requests waited in the server's queue on average while GPU "
                    "utilisation was {gpu_util_pct} %",
        "suggestion": "the scheduler or batch limits hold the load back (max-num-seqs, max batch tokens), not the GPUs"},
    "memory_bound": {
        "title": "KV cache full",
        "evidence": "for {seconds} s the KV cache was above {kv_limit_pct} % with requests waiting or preempted",
        "suggestion": "memory limits the batch: shorter contexts, more GPU memory for the cache, or fewer users"},
    "compute_bound": {
        "title": "GPUs saturated and TPOT rising",
        "evidence": "GPU utilisation {gpu_util_pct} % while TPOT p50 went from {tpot_first_ms} to {tpot_last_ms} ms",
        "suggestion": "compute is the limit: a smaller or quantised model, more GPUs, or less load"},
    "gpu_memory_near_full": {
        "title": "GPU {device} memory nearly full",
        "evidence": "{used_mib} MiB used of {total_mib} MiB",
        "suggestion": "little room left for the KV cache or a larger batch"},
    "power_capped": {
        "title": "GPU {device} at its power limit",
        "evidence": "for {seconds} s it drew at least 98 % of its {limit_w} W limit",
        "suggestion": "the board lowers its clocks to stay under the limit: the limit, not the load, bounds throughput"},
    "gpu_hot": {
        "title": "GPU {device} hot",
        "evidence": "up to {temp_c} °C",
        "suggestion": "a GPU this hot may throttle its clocks: check cooling before trusting the latencies"},
    "error_burst": {
        "title": "Error burst",
        "evidence": "{failed_pct} % of the requests failed in these seconds against {run_failed_pct} % over the run "
                    "({failed} failures; the run's errors: {kinds}; HTTP statuses: {statuses})",
        "suggestion": "look at the server's log for those seconds: a restart, a dependency, or an overload"},
    "rate_limited": {
        "title": "Rate limited",
        "evidence": "{requests} requests were refused with HTTP 429 or a rate-limit error",
        "suggestion": "the limit is a quota, not the service's capacity: raise it, use more keys, or --honor-retry-after"},
    "timeouts": {
        "title": "Requests timed out",
        "evidence": "{requests} requests ({pct} %) ran past a timeout",
        "suggestion": "the service stalled or the limits are too tight (--timeout, --idle-timeout, --request-timeout)"},
    "timeouts_after": {
        "title": "Timeouts from second {first_s} on",
        "evidence": "{requests} requests ({pct} %) timed out, the first in second {first_s}, the last in {last_s}",
        "suggestion": "the service degraded as the run went on (a queue, a leak, throttling): look at that second"},
    "slowest_share": {
        "title": "The slowest requests share a {field}",
        "evidence": "{count} of the {of} slowest requests have {field} {value}, which has {share_pct} % of all requests",
        "suggestion": "look at what {value} sends (longer prompts, another app, a later turn) before blaming the service"},
    "long_tail": {
        "title": "Long TTFT tail",
        "evidence": "TTFT p99 {p99_ms} ms is {ratio}× the p50 of {p50_ms} ms",
        "suggestion": "a few requests wait far longer than most: look at the slowest requests in the report"},
    "client_saturated": {
        "title": "The load generator was the limit",
        "evidence": "from second {second}: scheduling lag p99 {lag_p99_ms} ms, CPU up to {cpu_pct_max} %",
        "suggestion": "the latencies after that include sse-perf's own delay: fewer threads, or more worker processes"},
    "machine_busy": {
        "title": "The machine was busy with other work",
        "evidence": "from second {second} other processes took the CPU",
        "suggestion": "their delay is in the latencies: run on a quieter machine"},
    "few_requests": {
        "title": "Too few requests for a stable p99",
        "evidence": "{ok} successful requests; a p99 needs about {needed}",
        "suggestion": "run longer (--duration) or send more (--requests) before comparing tails"},
    "tokens_disagree": {
        "title": "The server's usage and the tokenizer disagree",
        "evidence": "over {requests} answers checked, the tokenizer counted {tokenizer} tokens where usage said {usage} "
                    "({pct:+} %)",
        "suggestion": "usage is the server's own count; a tokenizer made for another model miscounts: give "
                      "--tokenizer hf:PATH (the model's tokenizer.json) or server where usage is missing"},
    "not_sent": {
        "title": "Scheduled requests were not sent",
        "evidence": "{requests} open-loop arrivals found every thread busy",
        "suggestion": "the latencies understate the wait: more --threads, or a lower --rate"},
    "clock_bound": {
        "title": "Worker clocks only known roughly",
        "evidence": "a worker's clock is known to within {bound_ms} ms",
        "suggestion": "latencies across workers are comparable only to that bound"},
    "cold_start": {
        "title": "Cold start",
        "evidence": "TTFT p95 reached {first_ms} ms in the first seconds against {rest_ms} ms after",
        "suggestion": "add --warmup so the first requests do not weigh on the figures"},
    "dify_queueing": {
        "title": "Time spent outside Dify's own TTFT",
        "evidence": "the client's TTFT p50 {client_ms} ms against Dify's {server_ms} ms: {outside_ms} ms outside the "
                    "model's first token",
        "suggestion": "queueing in Dify (workers, the app's nodes) or the network, not in the model"},
}
