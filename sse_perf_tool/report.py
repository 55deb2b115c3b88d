"""The self-contained HTML report: summary + time series + records -> one HTML file.

report.py owns `render_report` / `write_report` and the table views (cards, percentiles,
datasets, errors, GPUs, the load-model section); it imports `report_records` (reading the run
folder, the one pass over the records), `report_timeseries` (the time charts), `report_format`
(value formatting), `report_load` (the load-model views: SLOs, sweeps, warm-up, self-check),
`report_capacity` (offered vs achieved rate, throughput by concurrency),
`html_page` (templates, Jinja2, the inlined Chart.js, the CSP: the pipeline it shares with the
comparison report), `metrics` (which distributions get a card, a histogram, a row, a column, a
glossary entry), `report_i18n`, `masking` and the self-check's limits from `selfcheck`.
Importing it imports no Jinja2 (html_page does so lazily), so `sse-perf --help` stays fast. The
names it re-exports (fmt_*, histogram, load_records, VENDORED, script_json, ...) stay importable
from here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from . import html_page, metrics, report_capacity, report_load
from .html_page import VENDORED, VERSIONS, render_page, script_json
from .masking import mask_option
from .report_format import (NULL, fmt_int, fmt_lag, fmt_ms, fmt_num, fmt_option, fmt_pct, fmt_seconds, fmt_time,
                            fmt_unit, shorten)
from .report_findings import findings_view
from .report_i18n import LANGS, strings
from .report_load import finite as _finite
from .report_records import (EXAMPLE_CHARS, EXAMPLES_PER_KIND, HIST_FIELDS, HIST_METRICS, HIST_SAMPLE, HIST_TARGET_BINS,
                             QUERY_CELL_CHARS, QUERY_TITLE_CHARS, TOP_N, Binner, RecordDigest, RecordStream,
                             bin_plan, histogram, load_records, load_timeseries, summary_binners)
from .report_timeseries import (BLUE, CLIENT_COLUMNS, GPU_COLUMN, GREEN, GREY, ORANGE, PALETTE, PURPLE, RED, TEAL,
                                YELLOW, timeseries_view)
from .selfcheck import CPU_LIMIT_FRACTION, LAG_LIMIT_MS, PROBE_SLEEP_S, SUSTAINED_S

__all__ = ["LANGS", "render_report", "write_report", "load_timeseries", "load_records",
           # kept importable from here (they live in report_format, report_records, report_timeseries, html_page)
           "NULL", "fmt_int", "fmt_lag", "fmt_ms", "fmt_num", "fmt_option", "fmt_pct", "fmt_seconds", "fmt_time",
           "fmt_unit", "shorten", "Binner", "RecordDigest", "bin_plan", "histogram", "HIST_FIELDS", "HIST_SAMPLE",
           "HIST_TARGET_BINS", "QUERY_CELL_CHARS", "QUERY_TITLE_CHARS", "EXAMPLE_CHARS", "EXAMPLES_PER_KIND", "TOP_N",
           "BLUE", "GREEN", "GREY", "ORANGE", "PALETTE", "PURPLE", "RED", "TEAL", "YELLOW",
           "VENDORED", "script_json"]
_asset, _templates_dir = html_page.asset, html_page.templates_dir  # their names here before html_page.py

TEMPLATE_NAME = "report.html.j2"
APP_JS_NAME = "report_app.js"

RUN_KEYS = ("started_at", "ended_at", "duration_s", "api", "base_url", "threads", "ramp_up_s",
            "model_name", "interrupted", "config", "tool_version")
DATASET_COLUMNS = metrics.stat_columns("dataset")  # (metric, stat) of the datasets table
_OTHER_STAT = {"p50": "p95", "p95": "p50"}  # a card's second figure


# ---------------------------------------------------------------- view model


def _gpu_rows(summary: dict) -> list[dict]:
    """summary.json's `gpu` section, one row per GPU in its order; [] when absent."""
    section = summary.get("gpu")
    if not isinstance(section, dict):
        return []
    rows = []
    for device, entry in section.items():
        entry = entry if isinstance(entry, dict) else {}
        peak, total = _finite(entry.get("mem_used_mib_max")), _finite(entry.get("mem_total_mib"))
        rows.append({
            "device": str(device),
            "util_mean": _finite(entry.get("util_pct_mean")), "util_max": _finite(entry.get("util_pct_max")),
            "mem_peak": peak, "mem_total": total,
            "mem_pct": 100.0 * peak / total if peak is not None and total else None,
            "power_mean": _finite(entry.get("power_w_mean")), "temp_max": _finite(entry.get("temp_c_max")),
            "energy": _finite(entry.get("energy_j")), "samples": _finite(entry.get("samples")),
        })
    return rows


def _dist(section: dict, field: str) -> dict:
    value = section.get(field)
    return value if isinstance(value, dict) else {}


def _label(m: metrics.Metric, lang: str) -> str:
    """A distribution's name in a table row: its short name, or in full where it has no acronym."""
    return m.label[lang] if m.open_loop or m.unit != "ms" else m.short["en"]


def _percentile_rows(summary: dict, lang: str) -> list[dict]:
    """One row per distribution of the registry; an open-loop run adds queue time and TTFT / E2E
    from the scheduled time (in a closed loop they repeat TTFT and E2E, so they are left out)."""
    open_loop = report_load.is_open_loop(summary)
    rows = []
    for m in metrics.DISTRIBUTIONS:
        if (m.open_loop and not open_loop) or (m.field not in summary and m.unit != "ms"):
            continue  # a metric newer than the run folder's summary is left out, not shown empty
        if m.optional and not _dist(summary, m.field).get("count"):
            continue  # the server's own figures: only where the server gave them
        dist = _dist(summary, m.field)
        label = _label(m, lang) + ("" if m.unit == "ms" else f" ({metrics.UNIT_WORDS[m.unit][lang]})")
        rows.append({"label": label, "key": m.field, "count": dist.get("count"),
                     **{k: dist.get(k) for k in metrics.STATS}})
    return rows


def _dataset_stats(values: dict) -> list:
    """The datasets table's latency cells: {field: distribution} -> [value, ...] in DATASET_COLUMNS order."""
    return [_dist(values, m.field).get(stat) for m, stat in DATASET_COLUMNS]


def _summary_dataset_rows(section: dict, digest: RecordDigest) -> list[dict]:
    """summary.json's `datasets` (the run's own figures, warm-up excluded); mean output tokens
    still come from the records."""
    rows = []
    for name, entry in sorted(section.items()):
        entry = entry if isinstance(entry, dict) else {}
        counted = digest.datasets.get(str(name))
        rows.append({
            "name": str(name), "requests": entry.get("requests"), "ok": entry.get("ok"), "failed": entry.get("failed"),
            "success_pct": _finite(entry.get("success_rate_pct")), "stats": _dataset_stats(entry),
            "tps": _finite(entry.get("output_tokens_per_s")),
            "tokens_mean": counted.tokens / counted.requests if counted and counted.requests else None,
        })
    return rows


def _dataset_rows(digest: RecordDigest, t: dict, summary: dict) -> list[dict]:
    section = summary.get("datasets")
    if isinstance(section, dict) and section:
        return _summary_dataset_rows(section, digest)
    if not digest.any_dataset:
        return []
    rows = []
    for name in sorted(digest.datasets, key=lambda n: (n is None, n or "")):
        ds = digest.datasets[name]
        finished = ds.ok + ds.failed
        dists = {field: values.distribution() for field, values in (ds.values or {}).items()}
        rows.append({
            "name": name if name is not None else t["no_dataset"],
            "requests": ds.requests, "ok": ds.ok, "failed": ds.failed,
            "success_pct": 100.0 * ds.ok / finished if finished else None, "stats": _dataset_stats(dists),
            "tokens_mean": ds.tokens / ds.requests if ds.requests else None,
        })
    return rows


def _server_rows(summary: dict, lang: str) -> list[dict]:
    """The server's own timings beside the client's (Dify's usage): p50 and p95 of each, and the
    client's minus the server's (the time outside the server's clock: network, queueing)."""
    rows = []
    for m in metrics.DISTRIBUTIONS:
        server = _dist(summary, m.field)
        if not m.client or not server.get("count"):
            continue
        client_metric = metrics.metric(m.client)
        client = _dist(summary, client_metric.field)
        diff = {stat: client[stat] - server[stat] if _finite(client.get(stat)) is not None
                and _finite(server.get(stat)) is not None else None for stat in ("p50", "p95")}
        rows.append({"label": m.label[lang], "client_label": client_metric.short["en"], "server": server,
                     "client": client, "diff": diff})
    return rows


def _verdict(summary: dict, run: dict, req: dict, t: dict) -> dict:
    """The report's first line: red when the run is not a result (nothing succeeded, an SLO missed,
    stopped early), amber when it needs care (interrupted, under 99 % success, the load generator
    or the machine busy), green otherwise; and why, in words."""
    ok, total = _finite(req.get("ok")) or 0, _finite(req.get("total")) or 0
    rate = _finite(req.get("success_rate_pct"))
    client = summary.get("client") if isinstance(summary.get("client"), dict) else {}
    missed = [v.get("expr") for v in summary.get("slo") or () if isinstance(v, dict) and v.get("met") is False]
    if not ok:
        top = (summary.get("top_errors") or [{}])[0] if isinstance(summary.get("top_errors"), list) else {}
        why = top.get("message") if isinstance(top, dict) else None
        return {"tone": "bad", "text": t["verdict_nothing_ok"].format(n=fmt_int(total), why=why or "—")}
    if missed:
        return {"tone": "bad", "text": t["verdict_slo"].format(slos=", ".join(map(str, missed)))}
    if run.get("stopped_early"):
        return {"tone": "bad", "text": t["verdict_stopped"].format(why=run["stopped_early"])}
    cautions = []
    if run.get("interrupted"):
        cautions.append(t["verdict_interrupted"])
    if rate is not None and rate < 99.0:
        cautions.append(t["verdict_failures"].format(pct=fmt_pct(100.0 - rate)))
    if client.get("saturated_from_s") is not None or client.get("machine_busy_from_s") is not None:
        cautions.append(t["verdict_client"])
    if cautions:
        return {"tone": "warn", "text": "; ".join(cautions)}
    return {"tone": "good", "text": t["verdict_good"].format(n=fmt_int(ok), pct=fmt_pct(rate))}


def _latency_cards(summary: dict, lang: str) -> list[dict]:
    """The headline cards of the distributions the registry marks `card`: the stat, and the other
    percentile beneath it."""
    cards = []
    for m in metrics.DISTRIBUTIONS:
        for stat in m.card:
            dist = _dist(summary, m.field)
            cards.append({"label": f"{m.label[lang]} {stat}", "value": dist.get(stat),
                          "sub_stat": _OTHER_STAT[stat], "sub": dist.get(_OTHER_STAT[stat])})
    return cards


def _histograms(t: dict, lang: str, binned: dict) -> tuple[list[dict], list[dict]]:
    """The histogram cards and their data, one per distribution the registry marks `histogram`."""
    cards, data = [], []
    for index, m in enumerate(HIST_METRICS):
        hist_id, found = f"hist-{m.key}", binned.get(m.key)
        cards.append({"id": hist_id, "title": m.title(lang), "has_data": found is not None})
        if found is not None:
            data.append(dict(found, id=hist_id, unit=m.unit, color=PALETTE[index % len(PALETTE)],
                             count_label=t["hist_gaps" if m.pooled else "hist_requests"]))
    return cards, data


def _error_rows(digest: RecordDigest, summary: dict, t: dict) -> list[dict]:
    rows = {kind: dict(entry, kind=kind) for kind, entry in digest.error_entries().items()}
    summary_errors = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
    for kind, count in summary_errors.items():  # kinds the records lack (e.g. records truncated)
        if kind not in rows and _finite(count):
            rows[kind] = {"kind": kind, "count": int(count), "first": None, "last": None, "examples": []}
    for row in rows.values():
        row["meaning"] = t.get(f"err_{row['kind']}", "")
    return sorted(rows.values(), key=lambda r: (-r["count"], r["kind"]))


def _load_view(summary: dict, ts_rows: list[dict], digest: RecordDigest, t: dict) -> dict:
    """Everything of issue 5 (load model, warm-up, SLOs, goodput, sweep, bands) for the
    template; each part None or empty when the run folder lacks its fields."""
    slo = report_load.slo_view(summary, t)
    sweep = report_load.sweep_view(summary, t)
    req = summary.get("requests") if isinstance(summary.get("requests"), dict) else {}
    warmup = _finite(req.get("warmup"))
    bands = report_load.bands(ts_rows, summary, t)
    goodput = report_load.goodput_view(summary, t)
    if goodput:
        goodput["bounds_text"] = t["goodput_within"].format(
            bounds=", ".join(f"{b['label']} {b['op']} {fmt_unit(b['value'], b['unit'])}" for b in goodput["bounds"])) \
            if goodput["bounds"] else t["goodput_no_bounds"]
    open_loop = report_load.is_open_loop(summary)
    queue = summary.get("queue_ms") if open_loop and isinstance(summary.get("queue_ms"), dict) else None
    return {
        "facts": report_load.load_facts(summary, digest.warmup, t),
        "model": report_load.load_section(summary).get("model"),
        "stopped_early": report_load.stopped_early(summary),
        "not_sent": report_load.not_sent(summary),
        "warmup_excluded": int(warmup) if warmup is not None else digest.warmup,
        "slo": slo, "goodput": goodput, "sweep": sweep, "bands": bands, "open_loop": open_loop, "queue": queue,
        "queue_label": metrics.metric("queue").label[t["lang"]],
        "workers": report_load.workers_view(summary),
    }


def _offered(summary: dict, ts_rows: list[dict], t: dict) -> Optional[dict]:
    """Open loop: the rate due in each second and the chart's subtitle (offered, achieved, not sent)."""
    rates = report_capacity.offered_rates(summary, ts_rows)
    if rates is None:
        return None
    load = report_load.load_section(summary)
    thr = summary.get("throughput") if isinstance(summary.get("throughput"), dict) else {}
    offered = _finite(load.get("rate"))
    sweep = isinstance(summary.get("levels"), list) and bool(summary["levels"])
    note = t["offered_sub"].format(
        offered=t["offered_levels"] if sweep or offered is None else f"{offered:g} {t['unit_rps']}",
        achieved=fmt_unit(thr.get("requests_per_s"), t["unit_rps"]),
        not_sent=fmt_int(report_load.not_sent(summary)))
    return {"rates": rates, "note": note}


def _concurrency(summary: dict, ts_rows: list[dict], t: dict) -> Optional[dict]:
    """Throughput by concurrency for the template (hint, caption) and the script (points)."""
    view = report_capacity.concurrency_view(summary, ts_rows)
    if view is None:
        return None
    x_title = t["conc_x_open" if view["open_loop"] else "conc_x_closed"]
    view.update(x_title=x_title, hint=t["conc_only"].format(n=view["only"]) if not view["points"] else "",
                i18n={"tps": t["conc_tps"], "rps": t["conc_rps"], "seconds": t["conc_seconds"], "x": x_title})
    return view


def _success_class(rate: Any, failed: Any) -> str:
    """Card colour: green with no failure, amber down to 99 %, red below."""
    rate = _finite(rate)
    if rate is None:
        return ""
    if not _finite(failed):
        return "card-good"
    return "card-warn" if rate >= 99.0 else "card-bad"


def _js_strings(t: dict) -> dict:
    keys = ("range_full", "range_shown", "second_n")
    return {key: t[key] for key in keys}


# ---------------------------------------------------------------- public API


def render_report(summary: dict, timeseries: list[dict], records: Optional[Iterable[dict]] = None,
                  lang: str = "en", *, skipped_lines: int = 0, digest: Optional[RecordDigest] = None,
                  histograms: Optional[dict] = None, analysis: Optional[dict] = None) -> str:
    """The complete self-contained HTML document of one run.

    `summary` supplies the headline figures (so a re-render shows the same numbers as the run).
    From a run folder, `records` is consumed once, as a stream, for the histograms, errors,
    datasets and slowest requests. During a run nothing is read back: `digest` is the one the
    aggregator fed (errors, slowest requests, token counts) and `histograms` ({metric key:
    binned}) come from the run's own distributions. Unknown summary sections are ignored.
    """
    t = strings(lang)
    summary = summary if isinstance(summary, dict) else {}
    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    run = {**dict.fromkeys(RUN_KEYS), **run}  # a partial summary renders with "—"
    req = summary.get("requests") if isinstance(summary.get("requests"), dict) else {}
    thr = summary.get("throughput") if isinstance(summary.get("throughput"), dict) else {}

    if digest is None:
        digest = RecordDigest(_finite(run.get("started_at")), summary_binners(summary)).add_all(records or ())
    else:
        digest.run_started_at = _finite(run.get("started_at"))
    if histograms is None:
        histograms = {m.key: digest.histogram(m.key) for m in HIST_METRICS}
    if not isinstance(skipped_lines, int):
        skipped_lines = 0
    if isinstance(records, RecordStream):
        skipped_lines += records.skipped

    ts_rows = list(timeseries or [])
    client = report_load.client_view(summary, ts_rows, LAG_LIMIT_MS, CPU_LIMIT_FRACTION)
    groups, ts_data = timeseries_view(ts_rows, t, client["cores"] if client else None,
                                      open_loop=report_load.is_open_loop(summary),
                                      offered=_offered(summary, ts_rows, t))
    concurrency = _concurrency(summary, ts_rows, t)
    load = _load_view(summary, ts_rows, digest, t)
    if load["bands"]:
        ts_data["bands"] = load["bands"]
    hist_cards, hist_data = _histograms(t, lang, histograms)
    found, marks = findings_view(summary, ts_rows, groups, lang, digest.for_findings())
    if marks:
        ts_data["marks"] = marks

    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    options = [(str(name), fmt_option(mask_option(str(name), value))) for name, value in config.items()]
    source_total = sum(digest.token_sources.values())
    token_sources = [
        f"{t.get('token_source_' + name, name)} {100.0 * count / source_total:.0f} %"
        for name, count in digest.token_sources.most_common()
    ]
    errors_by_kind = summary.get("errors") if isinstance(summary.get("errors"), dict) else {}
    failed = req.get("failed")
    cards = {
        "total": req.get("total"), "ok": req.get("ok"), "failed": failed,
        "success": req.get("success_rate_pct"), "rps": thr.get("requests_per_s"),
        "tps": thr.get("output_tokens_per_s"), "tokens_total": thr.get("output_tokens_total"),
        "latency": _latency_cards(summary, lang),
        "success_class": _success_class(req.get("success_rate_pct"), failed),
        "error_kinds": sorted(((k, v) for k, v in errors_by_kind.items() if _finite(v)),
                              key=lambda kv: -kv[1])[:3],
    }

    datasets = _dataset_rows(digest, t, summary)
    gpu_rows = _gpu_rows(summary)
    energies = [row["energy"] for row in gpu_rows]
    gpu_energy = {
        "tokens_per_joule": _finite(thr.get("output_tokens_per_joule")),
        "total_j": sum(energies) if energies and None not in energies else None,  # type: ignore[arg-type]
    }

    data = {"lang": lang, "locale": "zh-CN" if lang == "zh" else "en-US",
            "i18n": _js_strings(t), "ts": ts_data, "hist": hist_data}
    if load["sweep"]:
        data["sweep"] = load["sweep"]["data"]
    if concurrency and concurrency["points"]:
        data["concurrency"] = {k: concurrency[k] for k in ("points", "i18n")}
    return render_page(
        TEMPLATE_NAME, vendored=[name for name, _, _ in VENDORED], app_js=APP_JS_NAME, data=data,
        t=t, lang=lang, run=run, req=req, thr=thr, cards=cards, options=options,
        token_sources=token_sources, interrupted=bool(run.get("interrupted")),
        token_note=(summary.get("tokens") or {}).get("note") if isinstance(summary.get("tokens"), dict) else None,
        finish_reasons=[(str(k), v) for k, v in (summary.get("finish_reasons") or {}).items() if _finite(v)]
        if isinstance(summary.get("finish_reasons"), dict) else [],
        model_name=run.get("model_name"), model=config.get("model"),
        verdict=_verdict(summary, run, req, t),
        groups=groups, has_timeseries=bool(ts_data["x"]), histograms=hist_cards,
        percentile_rows=_percentile_rows(summary, lang), errors=_error_rows(digest, summary, t),
        server_rows=_server_rows(summary, lang), paused=(req.get("paused") or digest.paused),
        errors_by_status=[(str(k), v) for k, v in (summary.get("errors_by_status") or {}).items() if _finite(v)]
        if isinstance(summary.get("errors_by_status"), dict) else [],
        cost=summary.get("cost") if isinstance(summary.get("cost"), dict) else None,
        datasets=datasets, datasets_tps=any(d.get("tps") is not None for d in datasets),
        dataset_heads=[f"{m.short['en']} {stat}" for m, stat in DATASET_COLUMNS],
        turns=_summary_dataset_rows(summary["turns"], digest) if isinstance(summary.get("turns"), dict) else [],
        findings=found, analysis=_analysis_view(analysis), load=load, concurrency=concurrency, slowest=_slowest_tables(digest, t, lang), row_heads=_row_heads(lang),
        show_dataset_column=digest.any_dataset,
        glossary=[(m.label[lang], m.describe[lang]) for m in metrics.DISTRIBUTIONS
                  if not m.open_loop or load["open_loop"]],
        skipped_lines=skipped_lines, gpu_rows=gpu_rows, gpu_energy=gpu_energy,
        has_gpu_series=any(GPU_COLUMN.match(col) for col in ts_data["cols"]), client=client,
        client_glossary=t["g_client"].format(
            sleep=f"{PROBE_SLEEP_S * 1000:g} ms", sustained=SUSTAINED_S, lag_limit=fmt_lag(LAG_LIMIT_MS),
            fraction=f"{CPU_LIMIT_FRACTION * 100:g} %") if client or set(CLIENT_COLUMNS) & set(ts_data["cols"]) else "",
        footer_generated=t["generated"].format(version=run.get("tool_version") or "?", when=fmt_time(time.time())),
        footer_bundled=t["bundled"].format(**VERSIONS),
    )


def _analysis_view(analysis: Optional[dict]) -> Optional[dict]:
    """analysis.md for the template: who wrote it, and its answer as blocks of text (never HTML)."""
    if not analysis or not analysis.get("text"):
        return None
    from .report_analysis import analysis_blocks

    return dict(analysis, blocks=analysis_blocks(analysis["text"]))


def _slowest_tables(digest: RecordDigest, t: dict, lang: str) -> list[dict]:
    """The ten slowest requests by each distribution the registry marks `slowest`."""
    return [{"id": f"slowest-{m.key}", "title": t["slowest_of"].format(metric=m.label[lang]),
             "rows": digest.top_rows(digest.tops[m.field])} for m in metrics.select(slowest=True)]


def _row_heads(lang: str) -> list[tuple[str, str]]:
    """(field, column title) of the latencies in a slowest-requests row."""
    return [(m.field, m.title(lang)) for m in metrics.select(dataset=True)]


def write_report(run_dir: Path, out_path: Optional[Path] = None, lang: str = "en", *,
                 digest: Optional[RecordDigest] = None, histograms: Optional[dict] = None) -> Path:
    """Render run_dir's summary.json, timeseries.csv and records.jsonl (streamed) into
    out_path, or run_dir/report.html; returns the path written. With the `digest` and
    `histograms` a run gathered as it went (render_report), records.jsonl is not read."""
    run_dir = Path(run_dir)
    strings(lang)  # fail on a bad language before reading anything
    with open(run_dir / "summary.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    ts_path = run_dir / "timeseries.csv"
    timeseries = load_timeseries(ts_path) if ts_path.exists() else []
    records = None if digest is not None else RecordStream(run_dir / "records.jsonl")
    from .analysis import read_analysis

    html = render_report(summary, timeseries, records, lang=lang, digest=digest, histograms=histograms,
                         analysis=read_analysis(run_dir))
    target = Path(out_path) if out_path is not None else run_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
