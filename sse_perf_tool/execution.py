"""One run from a validated RunConfig to a written run folder: wiring only.

prepare_run() checks every input (files, output folder) and raises ConfigError before anything is
sent; execute_run() starts the mock server (--demo), the workers and the aggregator, handles
Ctrl-C, and writes every output even when the run was interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from .config import ConfigError, RunConfig, mask_url
from .flavors import get_flavor
from .flavors.base import RequestSettings
from .providers import ApiKeyProvider, QueryProvider, WeightedQueryProvider, parse_dataset_spec
from .exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SLO, EXIT_USAGE
from .levels import Levels, plans_for
from .run_info import banner, end_run_section, make_run_section
from .storage import OutputError, check_writable

_NS = 1_000_000_000


@dataclass
class PreparedRun:
    cfg: RunConfig
    queries: object  # QueryProvider or WeightedQueryProvider: next() -> Query
    keys: Optional[ApiKeyProvider]
    samplers: list = field(default_factory=list)  # telemetry samplers, preflighted
    slos: tuple = ()  # slo.Slo, parsed
    counter: object = None  # the token counter of this process (tokens.make_token_counter), loaded


def prepare_run(cfg: RunConfig, ssh_password: Optional[str] = None) -> PreparedRun:
    """Check every input; raises ConfigError (exit 2) before anything is sent."""
    from .slo import parse_slos

    slos = parse_slos(cfg.slo) if cfg.slo else ()
    if cfg.demo_mock:
        from .mock_server import MockConfig

        try:
            MockConfig(**dict(cfg.demo_mock))
        except ValueError as exc:
            raise ConfigError(f"--demo-mock: {exc}") from None
    if cfg.datasets:
        specs = [parse_dataset_spec(text) for text in cfg.datasets]
        queries = WeightedQueryProvider.from_specs(specs, cfg.seed)
    else:
        queries = QueryProvider.from_config(cfg.param_file, cfg.query)
    keys = ApiKeyProvider.from_config(cfg.api_key_file, cfg.api_key)
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
    return PreparedRun(cfg, queries, keys, _telemetry_samplers(cfg, ssh_password), slos, counter)


def _telemetry_samplers(cfg: RunConfig, ssh_password: Optional[str]) -> list:
    """Build and preflight every telemetry source asked for (none: nothing imported)."""
    if not cfg.gpu and not cfg.server_metrics:
        return []
    from .gpu import TelemetryError, make_gpu_sampler, parse_gpu_indices

    samplers = []
    try:
        indices = parse_gpu_indices(cfg.gpu_index) if cfg.gpu_index else None
        for value in cfg.gpu:
            samplers.append(make_gpu_sampler(
                value, indices=indices, ssh_key=cfg.ssh_key, ssh_password=ssh_password,
                accept_new_host_key=cfg.ssh_accept_new_host_key, known_hosts=cfg.known_hosts))
        if cfg.server_metrics:
            from .server_metrics import PrometheusSampler

            for url in cfg.server_metrics:
                samplers.append(PrometheusSampler(url, names=list(cfg.server_metric_names)))
        for sampler in samplers:
            sampler.preflight()
    except TelemetryError as exc:
        for sampler in samplers:
            sampler.stop()
        raise ConfigError(str(exc)) from None
    return samplers


def _sample_sink(aggregator, sampler, index: int):
    """Where a sampler's batches go. With several --server-metrics URLs, the second and later
    ones get their host in the column (`server[name@host:port]`) so columns never collide."""
    if sampler.source != "server" or index == 0:
        return aggregator.submit_samples
    from urllib.parse import urlsplit

    host = urlsplit(sampler.url).netloc

    def sink(samples):
        for sample in samples:
            sample.values = {f"{name}@{host}": value for name, value in sample.values.items()}
        aggregator.submit_samples(samples)

    return sink


def _say(text: str, out) -> None:
    print(text, file=out, flush=True)


def execute_run(prepared: PreparedRun, out=None, err=None) -> int:
    """Run the load test; returns the exit code (0 done, 130 interrupted, 1 internal error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    cfg = prepared.cfg
    mock = None
    if cfg.demo:
        from .mock_server import MockConfig, MockServer

        mock_config = MockConfig(host="127.0.0.1", port=0, **dict(cfg.demo_mock))
        mock = MockServer(mock_config).start()
        cfg = replace(cfg, base_url=mock.base_url)
        _say(f"demo: embedded mock server at {mock.base_url} (ttft {mock_config.ttft_ms:g} ms, "
             f"{mock_config.itl_ms:g} ms per token, {mock_config.tokens} tokens)", out)
    main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        return _execute(cfg, prepared, out, err)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous_handler)  # the run's own Ctrl-C handling ends with it
        if mock is not None:
            mock.stop()


def _execute(cfg: RunConfig, prepared: PreparedRun, out, err) -> int:
    """The testers (in this process, or in --processes workers), then the run itself."""
    from .tester import SSETester, TesterSettings, request_id_prefix

    flavor = get_flavor(cfg.api)
    settings = TesterSettings(
        url=cfg.base_url + flavor.path,
        timeout_s=cfg.timeout_s,
        headers=cfg.headers,
        request=RequestSettings(
            model=cfg.model, max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
            user=cfg.user, conversation_id=cfg.conversation_id,
        ),
        request_id_prefix=request_id_prefix() if cfg.request_id else "",
        extra_body=tuple((cfg.extra_body or {}).items()),
    )
    server_tokenizer = None
    if cfg.tokenizer == "server":
        from .server_tokens import TokenizeUnavailable, detect_server_tokenizer

        try:
            server_tokenizer = detect_server_tokenizer(cfg.base_url, cfg.model, _tokenize_headers(cfg, prepared))
        except TokenizeUnavailable as exc:
            _say(f"sse-perf: error: {exc}", err)
            return EXIT_USAGE
        _say(f"tokenizer: answers without usage are counted by {server_tokenizer.description} "
             f"at {mask_url(server_tokenizer.root)}", out)
        if server_tokenizer.shape.server == "llama-cpp-python":
            _say("warning: llama-cpp-python's /extras/tokenize takes its model lock: each count waits for a running "
                 "stream, and with its default --interrupt_requests True it cuts that stream; start the server with "
                 "--interrupt_requests False (a load test needs that anyway)", err)
    pool = None
    if cfg.processes > 1:
        from .worker_pool import WorkerPool, WorkerPoolError

        pool = WorkerPool(cfg.processes, cfg.api, settings, cfg.tokenizer)
        try:
            pool.start()
        except WorkerPoolError as exc:
            _say(f"error: {exc}", err)
            return EXIT_INTERNAL
        except KeyboardInterrupt:  # before anything was sent: nothing to write
            pool.close()
            _say("\ninterrupted while the worker processes started: nothing was sent", out)
            return EXIT_INTERRUPTED
        make_tester = pool.tester
    else:
        counter = prepared.counter
        counter.preload()  # build the tokenizer now: building it mid-run would stall every thread's timing

        def make_tester(index):
            return SSETester(flavor, settings, counter)

    try:
        return _run_and_write(cfg, prepared, out, err, make_tester, pool, server_tokenizer,
                              settings.request_id_prefix)
    finally:
        if pool is not None:
            pool.close()


def _tokenize_headers(cfg: RunConfig, prepared: PreparedRun) -> dict:
    """The run's own headers for the tokenizer endpoint: the first API key, then --header values."""
    headers = {}
    if prepared.keys is not None:
        headers["Authorization"] = f"Bearer {prepared.keys.first()}"
    headers.update(dict(cfg.headers))
    return headers


def _run_and_write(cfg: RunConfig, prepared: PreparedRun, out, err, make_tester, pool, server_tokenizer=None,
                   id_prefix: str = "") -> int:
    from .aggregator import Aggregator
    from .runner import ALL_FAILED_STOP, AllFailedBrake, Runner
    from .stats import TIMESERIES_COLUMNS, mark_phases
    from .slo import request_bounds
    from .report_records import RecordDigest
    from .stats import RunFigures
    from .storage import RecordWriter, create_run_dir, load_records, write_summary, write_timeseries
    from .selfcheck import ClientProbe, usable_cores
    from .summary import ServerTokenCounts, complete_summary, slo_missed

    started_at = time.time()
    run_dir = create_run_dir(cfg.output_dir, started_at, cfg.model_name)
    writer = RecordWriter(run_dir)
    plans = plans_for(cfg)
    keys = prepared.keys
    start_ns = time.perf_counter_ns()
    aggregator_ref: list = []
    processes = cfg.processes + 1 if pool is not None else 1  # Python processes: the workers and this one
    stage = None
    sink = lambda record: aggregator_ref[0].submit(record)  # noqa: E731 - the aggregator is made below
    if server_tokenizer is not None:
        from .server_tokens import CountingStage
        from .tokens import TokenCounter

        fallback = TokenCounter()
        fallback.preload()  # built now: the stage may need it mid-run
        stage = CountingStage(server_tokenizer, fallback, sink)
        sink = stage.submit

    brake = None if cfg.keep_going else AllFailedBrake(ALL_FAILED_STOP)  # one for the run, across levels

    def make_runner(plan):
        return Runner(
            plan,
            make_tester=make_tester,
            next_query=prepared.queries.next,
            next_key=(keys.next if keys else (lambda: None)),
            sink=sink,
            brake=brake,
        )

    levels = Levels(cfg, make_runner, aggregator_ref, start_ns, out, stage)
    history = _open_history(cfg, run_dir, make_run_section(cfg, started_at, None, None, False), err)
    samplers = prepared.samplers
    gpu_writer = None
    if any(s.source != "server" for s in samplers):
        from .gpu.summary import GPU_CSV_FIELDS
        from .storage import CsvAppender

        gpu_writer = CsvAppender(run_dir / "gpu.csv", GPU_CSV_FIELDS)
    # the summary's figures, kept by the aggregator as records come (records.jsonl is not read again)
    figures = RunFigures(request_bounds(prepared.slos), per_level=cfg.sweep is not None)
    digest = RecordDigest(None, histograms=False)  # the report's errors and slowest requests, as they come
    from .live import LiveTable

    sinks = [writer, figures, digest, history.recorder if history else None,  # each finished request goes to all
             LiveTable(out, quiet=cfg.quiet, lang=cfg.lang, show_gpu=gpu_writer is not None)]
    if gpu_writer is not None:
        from .gpu.summary import GpuCsvSink

        sinks.append(GpuCsvSink(gpu_writer))
    aggregator = Aggregator(start_ns, sinks, plans[0].threads, active_threads=levels.active_threads,
                            live_events=levels.live_events, max_error_rate_pct=cfg.max_error_rate_pct,
                            usable_cores=usable_cores(processes))
    if pool is None:
        probe = ClientProbe(aggregator.submit_client)
    else:  # the load generator is this process and its workers: their CPU adds up, their lags mix
        probe = ClientProbe(aggregator.submit_client, cpu_clock=lambda: time.process_time() + pool.cpu_seconds(),
                            other_lags=pool.take_lags)
    aggregator_ref.append(aggregator)
    _say(banner(cfg, plans[0], prepared), out)
    interrupted = False
    aggregator.start()
    if stage is not None:
        stage.start()
    probe.start()
    server_samplers = [s for s in samplers if s.source == "server"]
    for sampler in samplers:
        position = server_samplers.index(sampler) if sampler in server_samplers else 0
        sampler.start(_sample_sink(aggregator, sampler, position))
    try:
        levels.run(plans)
    except KeyboardInterrupt:
        interrupted = True
        _say("\ninterrupted: stopping, cancelling requests in flight, writing results (Ctrl-C again to quit now)", out)
        _ignore_further_interrupts()
        levels.cancel()
    ended_at = time.time()
    _finish_quietly_on_ctrl_c(interrupted, out)
    if levels.stopped_early:
        _say(f"stopped early: {levels.stopped_early}", err)
    for sampler in samplers:
        sampler.stop()
    probe.stop()
    if stage is not None and not stage.close():  # the last answers counted and handed on first
        _say("warning: the server tokenizer stage did not finish in time; the last requests may be missing", err)
    aggregator.close()
    if aggregator.is_alive():  # still busy after its timeout: its state cannot be read safely
        _say("warning: the statistics thread did not finish in time; the summary may miss the last requests", err)
        if history is not None:
            history.recorder.warning = history.recorder.warning or "history: statistics thread still busy"
    if aggregator.internal_error:
        _say(f"error: {aggregator.internal_error} (please report this bug)", err)
    writer.close()
    if gpu_writer is not None:
        gpu_writer.close()
    for sampler in samplers:
        for warning in sampler.warnings:
            _say(f"warning: {warning}", err)
    for problem in levels.worker_errors + (pool.problems() if pool is not None else []):
        _say(f"warning: {problem}", err)
    if aggregator.write_error:
        _say(f"warning: {aggregator.write_error}", err)

    rows = mark_phases(aggregator.rows(), levels.phases)
    write_timeseries(run_dir, rows, TIMESERIES_COLUMNS + tuple(aggregator.series.extra_columns))
    sweep = cfg.sweep
    level_infos = None  # a sweep's levels: each one's phase (with its not_sent) and measured seconds
    if sweep is not None:
        level_infos = [dict(phase, duration_s=aggregator.level_duration_s(phase["value"])) for phase in levels.phases]
    report_inputs = None if aggregator.is_alive() else _report_inputs(digest, figures)
    if aggregator.is_alive():  # its figures may still be changing: the run folder's records are the truth
        figures = RunFigures.from_records(load_records(run_dir), request_bounds(prepared.slos), cfg.sweep is not None)
    summary = complete_summary(
        end_run_section(cfg, started_at, ended_at, aggregator.measured_duration_s, interrupted,
                        levels.stopped_early, id_prefix),
        figures, aggregator.measured_duration_s, prepared.slos, level_infos,
        sweep[0] if sweep else None, sweep[1] if sweep else (),
        not_sent=levels.not_sent, client=probe.summary(rows, processes),
        server_tokens=None if stage is None else ServerTokenCounts(
            stage.tokenizer.description, stage.counted, stage.fell_back, stage.failure),
        gpu_samples=aggregator.gpu_samples if gpu_writer is not None else None)
    for problem in (stage.failure, stage.internal_error) if stage is not None else ():
        if problem:
            _say(f"warning: {problem}", err)
    write_summary(run_dir, summary)
    figures = None
    sinks.clear()
    if not aggregator.is_alive():
        aggregator.release_sinks()  # the figures' memory goes back before the report is built
    report_path = _write_report(cfg, run_dir, err, report_inputs)
    report_inputs = digest = None
    from .history import status_of

    status = status_of(summary)
    history_line = _finish_history(history, status, summary, rows, err)

    from .live import SUMMARY_LABELS, summary_lines

    labels = SUMMARY_LABELS.get(cfg.lang, SUMMARY_LABELS["en"])
    _say("", out)
    for line in summary_lines(summary, cfg.lang):
        _say(line, out)
    _say(f"{labels['folder']}: {run_dir}", out)
    if report_path:
        _say(f"{labels['report']}: {report_path}", out)
    if history_line:
        _say(history_line, out)
    if interrupted:
        return EXIT_INTERRUPTED
    if aggregator.internal_error:
        return EXIT_INTERNAL
    if levels.stopped_early or slo_missed(summary):
        return EXIT_SLO
    return EXIT_OK


@dataclass
class _HistoryRun:
    db: object  # history.History
    run_id: int
    recorder: object  # history.HistoryRecorder


def _open_history(cfg: RunConfig, run_dir: Path, run_section: dict, err) -> Optional[_HistoryRun]:
    """The history database, with this run begun in it; None (after a warning) when it cannot be used."""
    if cfg.no_history:
        return None
    from .history import History, HistoryError, HistoryRecorder, default_history_path

    path = cfg.history or default_history_path(cfg.output_dir)
    try:
        db = History(path)
    except HistoryError as exc:
        _say(f"warning: {exc}; this run is not recorded in the history", err)
        return None
    try:
        run_id = db.begin_run(run_dir, run_section)
    except HistoryError as exc:
        _say(f"warning: {exc}; this run is not recorded in the history", err)
        db.close()
        return None
    return _HistoryRun(db, run_id, HistoryRecorder(db, run_id))


def _finish_history(history: Optional[_HistoryRun], status: str, summary: dict, rows: list, err) -> Optional[str]:
    if history is None:
        return None
    from .history import HistoryError

    try:
        if history.recorder.warning:  # some requests are missing from the database: say so, keep the rest
            _say(f"warning: {history.recorder.warning}", err)
            summary = dict(summary, history_incomplete=True)
        history.db.finish_run(history.run_id, status, summary, rows)
        return f"history: run #{history.run_id} in {history.db.path}"
    except HistoryError as exc:
        _say(f"warning: {exc}; this run's history entry is incomplete", err)
        return None
    finally:
        history.db.close()


def _finish_quietly_on_ctrl_c(interrupted: bool, out) -> None:
    """Sending is over; a Ctrl-C now would tear the results being written. The first one is noted
    and ignored (a second quits at once, exit 130)."""
    if interrupted or threading.current_thread() is not threading.main_thread():
        return

    def on_interrupt(*_):
        _say("\nwriting results, a moment (Ctrl-C again to quit now)", out)
        signal.signal(signal.SIGINT, lambda *_: sys.exit(EXIT_INTERRUPTED))

    signal.signal(signal.SIGINT, on_interrupt)


def _ignore_further_interrupts() -> None:
    """A second Ctrl-C quits at once (exit 130) instead of tearing a half-written file."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: sys.exit(EXIT_INTERRUPTED))


def _report_inputs(digest, figures) -> dict:
    """What the report needs beyond summary.json and timeseries.csv, from what the run kept in
    memory (so records.jsonl is not read back): the digest the aggregator fed, and the histograms
    of the run's own distributions."""
    from .report_records import HIST_METRICS, histogram_of

    values = figures.whole.run.values
    return {"digest": digest, "histograms": {m.key: histogram_of(values[m.field]) for m in HIST_METRICS}}


def _write_report(cfg: RunConfig, run_dir: Path, err, inputs: Optional[dict] = None) -> Optional[Path]:
    try:
        from .report import write_report
    except ImportError:
        return None
    try:
        return write_report(run_dir, Path(cfg.html_report) if cfg.html_report else None, lang=cfg.lang,
                            **(inputs or {}))
    except Exception as exc:  # the records and summary are already safe; say what failed, keep the exit code
        _say(f"warning: report.html could not be written: {type(exc).__name__}: {exc}", err)
        return None


