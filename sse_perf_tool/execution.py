"""The composition root: one run from a validated RunConfig to a written run folder.

prepare_run() checks every input (files, output folder, telemetry) and raises ConfigError before
anything is sent; execute_run() builds the parts from the config (the mock server for --demo, the
testers, the levels, the sinks, the aggregator, the self-check probe, the telemetry samplers), wires
them, runs the levels, stops the parts, and hands what they measured to the writers
(summary.complete_summary, storage, results, run_history), even when the run was interrupted.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from typing import Optional

from .config import ConfigError, RunConfig
from .console import say
from .masking import register_secrets, secret_header_values
from .dify_app import resolve_auto
from .demo import check_demo_mock, start_demo_mock
from .exit_codes import EXIT_INTERNAL, EXIT_NOTHING_OK, EXIT_OK, EXIT_SLO, EXIT_USAGE
from .flavors import get_flavor
from .interrupts import HeldStops, exit_code_of_stop, finish_quietly_on_ctrl_c, run_until_interrupted, sigint_restored
from .levels import Levels, plans_for
from .providers import ApiKeyProvider, QueryProvider, WeightedQueryProvider, parse_dataset_spec
from .results import report_inputs, say_closing, write_report
from .run_history import finish_history, open_history
from .run_info import banner, end_run_section, load_text, make_run_section
from .run_telemetry import gpu_csv_writer, start_samplers, telemetry_samplers
from .run_testers import Testers, TestersNotStarted, counting_stage, start_testers
from .storage import OutputError, check_writable


@dataclass
class PreparedRun:
    cfg: RunConfig
    queries: object  # QueryProvider or WeightedQueryProvider: next() -> Query
    keys: Optional[ApiKeyProvider]
    samplers: list = field(default_factory=list)  # telemetry samplers, preflighted
    slos: tuple = ()  # slo.Slo, parsed
    counter: object = None  # the token counter of this process (tokens.make_token_counter), loaded
    live: object = None  # --live: the live view's server, bound (live_server.LiveServer), serving from the run's start
    llm_key: Optional[str] = None  # --analyze: the model's key (--llm-api-key-file or SSE_PERF_LLM_API_KEY)
    schedule: Optional[tuple] = None  # --trace: each request's moment (ns after the start), scaled by --trace-speed


def prepare_run(cfg: RunConfig, ssh_password: Optional[str] = None) -> PreparedRun:
    """Check every input; raises ConfigError (exit 2) before anything is sent."""
    from .slo import parse_slos

    slos = parse_slos(cfg.slo) if cfg.slo else ()
    check_demo_mock(cfg)
    if cfg.turns > 1 and cfg.api != "auto" and not get_flavor(cfg.api).conversation:
        raise ConfigError(f"--turns needs a flavour that holds a conversation (dify-chat, openai-chat); "
                          f"{cfg.api} sends one prompt at a time")
    if cfg.datasets:
        specs = [parse_dataset_spec(text) for text in cfg.datasets]
        queries = WeightedQueryProvider.from_specs(specs, cfg.seed)
    else:
        queries = QueryProvider.from_config(cfg.param_file, cfg.query)
    schedule = None
    if cfg.trace is not None:  # its moments and lengths, read before anything is sent
        from .synthetic import FromTrace
        from .trace import BLOCK_TOKENS, load_trace

        entries = load_trace(cfg.trace)
        queries = FromTrace(entries, cfg.seed or 0, BLOCK_TOKENS)
        schedule = tuple(round(e.offset_s / cfg.trace_speed * 1e9) for e in entries)
    if cfg.input_tokens is not None or cfg.output_tokens is not None or cfg.prefix_tokens is not None:
        from .config import parse_length
        from .synthetic import ByLength

        queries = ByLength(queries, parse_length(cfg.input_tokens, "--input-tokens") if cfg.input_tokens else None,
                           parse_length(cfg.output_tokens, "--output-tokens") if cfg.output_tokens else None,
                           cfg.seed or 0,
                           (cfg.prefix_tokens, cfg.prefix_groups) if cfg.prefix_tokens is not None else None)
    keys = ApiKeyProvider.from_config(cfg.api_key_file, cfg.api_key)
    register_secrets([*(keys.all() if keys else ()), *secret_header_values(cfg.headers),
                      *(u.password for u in map(urlsplit, [cfg.base_url, *cfg.server_metrics]) if u.password),
                      ssh_password or ""])
    from .tokens import TokenizerUnavailable, make_token_counter

    try:
        counter = make_token_counter(cfg.tokenizer)
    except TokenizerUnavailable as exc:
        raise ConfigError(str(exc)) from None
    try:
        check_writable(cfg.output_dir)
        if cfg.html_report:
            check_writable(str(Path(cfg.html_report).resolve().parent))
    except OutputError as exc:
        raise ConfigError(str(exc)) from None
    samplers = telemetry_samplers(cfg, ssh_password)
    llm_key = _llm_key(cfg) if cfg.analyze else None
    return PreparedRun(cfg, queries, keys, samplers, slos, counter, _bind_live(cfg), llm_key, schedule)


def _llm_key(cfg: RunConfig) -> Optional[str]:
    """--analyze: the model's key, read now (a missing or empty file is bad input, before anything is sent)."""
    import os

    from .analysis import read_llm_key

    return read_llm_key(cfg.llm_api_key_file, dict(os.environ))


def _bind_live(cfg: RunConfig):
    """--live: its address taken now, so one in use is a usage error before anything is sent."""
    if cfg.live is None:
        return None
    from .config import parse_live_address
    from .live_server import LiveServer

    host, port = parse_live_address(cfg.live, cfg.allow_remote)
    try:
        return LiveServer(host, port)
    except OSError as exc:
        raise ConfigError(f"--live {cfg.live}: cannot listen there: {exc.strerror or exc}") from None


def execute_run(prepared: PreparedRun, out=None, err=None) -> int:
    """Run the load test; returns the exit code (0 done, 130 interrupted by Ctrl-C, 143 by SIGTERM,
    129 by SIGHUP, 1 internal error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    cfg = prepared.cfg
    mock = None
    if cfg.demo:
        mock, cfg = start_demo_mock(cfg, out)
    try:
        if cfg.api == "auto":  # one preflight call: the app's mode and required inputs, before any load
            cfg = resolve_auto(cfg, prepared.queries, prepared.keys.first() if prepared.keys else None,
                               lambda text: say(text, out))
            prepared = replace(prepared, cfg=cfg)
    except ConfigError as exc:
        if mock is not None:
            mock.stop()
        say(f"sse-perf: error: {exc}", err)
        return EXIT_USAGE
    try:
        with sigint_restored():  # the run's own Ctrl-C handling ends with it
            return _execute(cfg, prepared, out, err)
    finally:
        if mock is not None:
            mock.stop()


def _execute(cfg: RunConfig, prepared: PreparedRun, out, err) -> int:
    """The testers (in this process, or in --processes workers), then the run itself."""
    try:
        try:
            testers = start_testers(cfg, prepared.keys, prepared.counter, out, err)
        except TestersNotStarted as exc:
            return exc.exit_code
        try:
            return _run_and_write(cfg, prepared, testers, out, err)
        finally:
            testers.close()
    finally:
        if prepared.live is not None:
            prepared.live.close()


def _run_and_write(cfg: RunConfig, prepared: PreparedRun, testers: Testers, out, err) -> int:
    from .aggregator import Aggregator
    from .live import LiveTable
    from .report_records import RecordDigest
    from .runner import ALL_FAILED_STOP, AllFailedBrake, Runner
    from .selfcheck import ClientProbe, usable_cores
    from .slo import request_bounds
    from .stats import TIMESERIES_COLUMNS, RunFigures, mark_phases
    from .storage import RecordWriter, create_run_dir, load_records, write_summary, write_timeseries
    from .summary import ServerTokenCounts, complete_summary, slo_missed, with_findings

    # the parts, built from the config
    started_at = time.time()
    run_dir = create_run_dir(cfg.output_dir, started_at, cfg.model_name)
    writer = RecordWriter(run_dir)
    plans = plans_for(cfg, prepared.schedule)
    keys, pool, samplers = prepared.keys, testers.pool, prepared.samplers
    start_ns = time.perf_counter_ns()
    aggregator_ref: list = []
    # Python processes the self-check counts: with --processes this one and its workers (one machine's
    # cores); Ray workers may sit on other machines, so each is judged on its own and this one alone
    remote = pool is not None and pool.backend.name == "ray"
    processes = pool.backend.usable_cores() if pool is not None and not remote else 1
    sink = lambda record: aggregator_ref[0].submit(record)  # noqa: E731 - the aggregator is made below
    stage = None if testers.server_tokenizer is None else counting_stage(testers.server_tokenizer, sink)
    if stage is not None:
        sink = stage.submit
    brake = None if cfg.keep_going else AllFailedBrake(ALL_FAILED_STOP)  # one for the run, across levels

    def make_runner(plan):
        return Runner(plan, make_tester=testers.make_tester, next_query=prepared.queries.next,
                      next_key=(keys.next if keys else (lambda: None)), sink=sink, brake=brake,
                      honor_retry_after=cfg.honor_retry_after)

    levels = Levels(cfg, make_runner, aggregator_ref, start_ns, out, stage)
    history = open_history(cfg, run_dir, make_run_section(cfg, started_at, None, None, False), err)
    gpu_writer = gpu_csv_writer(samplers, run_dir)
    # the summary's figures, kept by the aggregator as records come (records.jsonl is not read again)
    figures = RunFigures(request_bounds(prepared.slos), per_level=cfg.sweep is not None)
    digest = RecordDigest(None, histograms=False)  # the report's errors and slowest requests, as they come
    sinks = [writer, figures, digest, history.recorder if history else None,  # each finished request goes to all
             LiveTable(out, quiet=cfg.quiet, lang=cfg.lang, show_gpu=gpu_writer is not None)]
    if gpu_writer is not None:
        from .gpu.summary import GpuCsvSink

        sinks.append(GpuCsvSink(gpu_writer))
    live = _start_live(cfg, prepared, load_text(cfg, plans[0], prepared), usable_cores(processes))
    if live is not None:
        sinks.append(live.feed)
    aggregator = Aggregator(start_ns, sinks, plans[0].threads, active_threads=levels.active_threads,
                            live_events=levels.live_events, max_error_rate_pct=cfg.max_error_rate_pct,
                            usable_cores=usable_cores(processes))
    if pool is None or remote:
        probe = ClientProbe(aggregator.submit_client)
        if remote:
            pool.merge_lags(False)  # their lags stay with their own verdicts (summary client.workers)
    else:  # the load generator is this process and its workers: their CPU adds up, their lags mix
        probe = ClientProbe(aggregator.submit_client, cpu_clock=lambda: time.process_time() + pool.cpu_seconds(),
                            other_lags=pool.take_lags)
    aggregator_ref.append(aggregator)

    # the run
    held = HeldStops()  # a stop before the parts are running is taken once they are (every file written)
    say(banner(cfg, plans[0], prepared), out)
    if live is not None:
        _say_live(cfg, live, out, err)
    if cfg.insecure:
        say("warning: --insecure: TLS certificates are not checked; anyone between here and the target can read "
            "and change the traffic, the API key included", err)
    aggregator.start()
    if stage is not None:
        stage.start()
    probe.start()
    start_samplers(samplers, aggregator)

    def run_levels() -> None:
        held.release()
        levels.run(plans)

    interrupted = run_until_interrupted(run_levels, levels.cancel, out)
    ended_at = time.time()
    finish_quietly_on_ctrl_c(interrupted, out)

    # the parts stopped, the last records counted, what went wrong said
    if levels.stopped_early:
        say(f"stopped early: {levels.stopped_early}", err)
    for sampler in samplers:
        sampler.stop()
    probe.stop()
    if stage is not None and not stage.close():  # the last answers counted and handed on first
        say("warning: the server tokenizer stage did not finish in time; the last requests may be missing", err)
    aggregator.close()
    if aggregator.is_alive():  # still busy after its timeout: its state cannot be read safely
        say("warning: the statistics thread did not finish in time; the summary may miss the last requests", err)
        if history is not None:
            history.recorder.failure = history.recorder.failure or "history: statistics thread still busy"
    if aggregator.internal_error:
        say(f"error: {aggregator.internal_error} (please report this bug)", err)
    writer.close()
    if gpu_writer is not None:
        gpu_writer.close()
    problems = [w for s in samplers for w in s.warnings] + levels.worker_errors
    problems += pool.problems() if pool is not None else []
    for problem in problems + ([aggregator.write_error] if aggregator.write_error else []):
        say(f"warning: {problem}", err)

    # what the parts measured, to the writers
    rows = mark_phases(aggregator.rows(), levels.phases)
    write_timeseries(run_dir, rows, TIMESERIES_COLUMNS + tuple(aggregator.series.extra_columns))
    sweep = cfg.sweep
    level_infos = None  # a sweep's levels: each one's phase (with its not_sent) and measured seconds
    if sweep is not None:
        level_infos = [dict(phase, duration_s=aggregator.level_duration_s(phase["value"])) for phase in levels.phases]
    kept = None if aggregator.is_alive() else report_inputs(digest, figures)
    if aggregator.is_alive():  # its figures may still be changing: the run folder's records are the truth
        figures = RunFigures.from_records(load_records(run_dir), request_bounds(prepared.slos), cfg.sweep is not None)
    summary = complete_summary(
        end_run_section(cfg, started_at, ended_at, aggregator.measured_duration_s, interrupted,
                        levels.stopped_early, testers.id_prefix, pool.describe() if pool is not None else None),
        figures, aggregator.measured_duration_s, prepared.slos, level_infos,
        sweep[0] if sweep else None, sweep[1] if sweep else (),
        not_sent=levels.not_sent, client=probe.summary(rows, processes),
        server_tokens=None if stage is None else ServerTokenCounts(
            stage.tokenizer.description, stage.counted, stage.fell_back, stage.failure),
        gpu_samples=aggregator.gpu_samples if gpu_writer is not None else None)
    if pool is not None:  # each worker judged on its own: the one that was the limit is named
        from .selfcheck import per_worker

        workers = per_worker([({"worker": worker.number, "where": worker.process.where}, rows)
                              for worker, rows in pool.worker_seconds(start_ns)])
        summary["client"]["workers"] = workers
        for entry in workers:
            if entry["saturated_from_s"] is not None:
                say(f"warning: worker {entry['worker']} ({entry['where']}) was the limit from second "
                    f"{entry['saturated_from_s']} (lag p99 up to {entry['lag_ms_p99_max'] or 0:.0f} ms, CPU "
                    f"{entry['cpu_pct_mean'] or 0:.0f} % of its core): its timings carry its own delay; give the run "
                    "more workers", err)
    for problem in (stage.failure, stage.internal_error) if stage is not None else ():
        if problem:
            say(f"warning: {problem}", err)
    if hasattr(prepared.queries, "asked"):  # --input-tokens / --output-tokens: the lengths asked, sent and got
        summary["workload"] = _lengths(prepared.queries.asked(), summary)
    with_findings(summary, rows, None if aggregator.is_alive() else digest.for_findings())
    write_summary(run_dir, summary)
    figures = None
    sinks.clear()
    if not aggregator.is_alive():
        aggregator.release_sinks()  # the figures' memory goes back before the report is built
    report_path = write_report(cfg, run_dir, err, kept)
    kept = digest = None
    history_line = finish_history(history, summary, rows, err, cfg.lang)
    say_closing(summary, cfg.lang, run_dir, report_path, history_line, out)
    if cfg.analyze:
        _analyze(cfg, prepared, run_dir, report_path, out, err)
    if interrupted:
        code = exit_code_of_stop()  # 130 Ctrl-C (or the live view's Stop), 143 SIGTERM, 129 SIGHUP
    elif aggregator.internal_error:
        code = EXIT_INTERNAL
    elif not summary["requests"]["ok"]:
        code = EXIT_NOTHING_OK  # every measured request failed (or none was sent): not a result to trust
    elif levels.stopped_early or slo_missed(summary):
        code = EXIT_SLO
    else:
        code = EXIT_OK
    if live is not None:
        live.feed.end(code, str(run_dir), str(report_path) if report_path else None)
        live.linger()
    return code


def _lengths(asked: dict, summary: dict) -> dict:
    """The summary's `workload`: the lengths asked and sent, with what the answers had on average."""
    if "output_tokens" in asked:
        ok = summary["requests"]["ok"]
        asked["output_tokens"]["received_mean"] = summary["throughput"]["output_tokens_total"] / ok if ok else None
    return asked


def _analyze(cfg: RunConfig, prepared: PreparedRun, run_dir: Path, report_path, out, err) -> None:
    """--analyze: after the summary, a model's reading into analysis.md, and the report written again
    with it; a failure is one warning line and the run keeps its exit code."""
    from .analysis import CONTEXT_CHARS, AnalysisError, LlmSettings, analyze_folder
    from .masking import mask_known

    settings = LlmSettings(cfg.llm_base_url or cfg.base_url, cfg.llm_model, prepared.llm_key, cfg.llm_timeout_s,
                           cfg.llm_context_chars or CONTEXT_CHARS)
    say("", out)
    say(f"analysis ({mask_known(settings.base_url)}):", out)
    try:
        path = analyze_folder(run_dir, settings, cfg.lang, out)
    except AnalysisError as exc:
        say(f"warning: --analyze: {mask_known(str(exc))} (the run's files are written; "
            "`sse-perf analyze RUN_DIR` tries again)", err)
        return
    say(f"analysis: {path}", out)
    if report_path:
        from .report import write_report as write_report_again

        try:
            write_report_again(run_dir, Path(report_path), lang=cfg.lang)
        except (OSError, ValueError) as exc:
            say(f"warning: the report could not be written again with the analysis: {exc}", err)


def _start_live(cfg: RunConfig, prepared: PreparedRun, load_text: str, cores: int):
    """--live: the feed (the aggregator's sink) and the page, served from now on. None without --live."""
    server = prepared.live
    if server is None:
        return None
    from .i18n import table
    from .interrupts import interrupt_self
    from .live_feed import MAX_KEPT, LiveFeed
    from .live_page import render_live_page
    from .masking import mask_url

    t = table("LIVE", cfg.lang)
    facts = [(t["target"], mask_url(cfg.base_url)),
             (t["flavour"], cfg.api), *([(t["model"], cfg.model)] if cfg.model else []), (t["load"], load_text),
             (t["started"], time.strftime("%Y-%m-%d %H:%M:%S"))]
    page, csp = render_live_page(cfg.lang, server.token, facts, MAX_KEPT, cfg.model_name)
    return server.start(LiveFeed(cfg.lang, cores), page, csp, interrupt_self)


def _say_live(cfg: RunConfig, server, out, err) -> None:
    say(f"live view: {server.url}", out)
    if not server.loopback:
        say(f"warning: --live {cfg.live} --allow-remote: anyone who can reach this address and has the URL's token "
            "can watch and stop the run; the page and the token travel unencrypted (plain HTTP)", err)
