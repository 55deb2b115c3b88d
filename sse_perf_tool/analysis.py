"""A model's reading of a run (`sse-perf analyze`, `--analyze`): a compact digest of the run (its
options without secrets or prompts, the summary, the levels, the findings, the per-second series
downsampled; never a prompt, an answer or a key) sent to an OpenAI-compatible chat endpoint, the
answer streamed back and written to the run folder as analysis.md (with who wrote it and when).

The digest is reduced to fit `max_chars` (fewer points of the series first, then the levels' and
the summary's detail), whole sections at a time: never cut in the middle. The whole call is
bounded by `timeout_s`; any failure is an AnalysisError with one line.

Imports masking, sse (the stream's framing), and requests.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .masking import mask_known, mask_url

ANALYSIS_MARKER = "sse-perf-analysis/1"  # the mock server answers a system message naming it (mock_analysis.py)
ANALYSIS_FILE = "analysis.md"
READ_CHUNK = 1  # iter_content's size: what has arrived, however little (a larger one waits to fill it)
CONTEXT_CHARS = 24_000  # the digest's default budget (about 6,000 tokens): small models' contexts hold it
SERIES_POINTS = (120, 60, 30, 15)  # how finely the per-second series is kept, the finest that fits
SERIES_COLUMNS = ("active_threads", "requests_ok", "requests_failed", "output_tokens", "ttft_p50_ms", "ttft_p95_ms",
                  "tpot_p50_ms", "e2e_p95_ms", "success_rate_pct", "client.lag_p99_ms", "client.cpu_pct")
_SERIES_PREFIXES = ("gpu[", "server[")
_DROPPED_OPTIONS = ("query", "api_key", "api_key_file", "headers", "extra_body", "ssh_key", "known_hosts")
_SUMMARY_DETAIL = ("top_errors", "turns", "datasets", "finish_reasons", "queue_ms", "ttft_from_scheduled_ms",
                   "e2e_from_scheduled_ms", "server_elapsed_ms", "server_generate_ms", "cost")

SYSTEM = {
    "en": ("You are a performance engineer reading a load test of a streaming LLM service, made with sse-perf "
           f"({ANALYSIS_MARKER}). The user message is the run as JSON: its options, the summary (latencies in ms: "
           "TTFT time to first token, TPOT time per output token, E2E end to end), the sweep levels if any, the "
           "findings sse-perf computed, and the per-second series. Write for a team lead, in English, in Markdown "
           "(short paragraphs and lists, no tables): what capacity the service has, what limits it (the GPU, the "
           "server's scheduler, memory, errors, the load generator itself), whether the numbers can be trusted, "
           "and what to try next. Cite the numbers you rely on. Do not invent numbers that are not in the data."),
    "zh": ("你是一名性能工程师，正在解读用 sse-perf 对流式 LLM 服务所做的压测"
           f"（{ANALYSIS_MARKER}）。用户消息是这次运行的 JSON：选项、汇总（时延单位 ms：TTFT 首 token 时延，TPOT "
           "每个输出 token 的时间，E2E 端到端）、扫描档位（如有）、sse-perf 计算出的发现，以及逐秒序列。请用中文、"
           "Markdown（短段落和列表，不要表格）为团队负责人写：服务的容量是多少，什么限制了它（GPU、服务端调度、显存、"
           "错误、压测端自身），这些数字是否可信，下一步该尝试什么。引用你依据的数字，不要编造数据中没有的数字。"),
}


class AnalysisError(Exception):
    """The analysis could not be made (one line)."""


def read_llm_key(key_file: Optional[str], environ: dict) -> Optional[str]:
    """The model's key: the first line of --llm-api-key-file, else env SSE_PERF_LLM_API_KEY; masked
    from now on. ConfigError for a file that cannot be read or is empty."""
    from .config import ConfigError
    from .masking import register_secrets

    key = environ.get("SSE_PERF_LLM_API_KEY") or None
    if key_file:
        path = Path(key_file).expanduser()
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--llm-api-key-file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") \
                from None
        if not lines:
            raise ConfigError(f"--llm-api-key-file: {path} is empty")
        key = lines[0]
    if key:
        register_secrets([key])
    return key


# -- the digest --
def _plain(value):
    """`value` as JSON can hold it: a non-finite number is None (not measured)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _series(rows: list[dict], points: int) -> dict:
    """The per-second series in at most `points` spans, each the mean of its seconds (None where no
    second of it has a value); the columns that matter for capacity, and every GPU and server one."""
    if not rows or points <= 0:
        return {}
    columns = [c for c in SERIES_COLUMNS if any(r.get(c) is not None for r in rows)]
    columns += sorted({c for r in rows for c in r if c.startswith(_SERIES_PREFIXES) and r.get(c) is not None})
    span = max(1, math.ceil(len(rows) / points))
    out = {"seconds_per_point": span, "from_s": [rows[i].get("second") for i in range(0, len(rows), span)]}
    for column in columns:
        values = []
        for i in range(0, len(rows), span):
            part = [v for r in rows[i:i + span] if isinstance(v := r.get(column), (int, float))
                    and not isinstance(v, bool) and math.isfinite(v)]
            values.append(round(sum(part) / len(part), 2) if part else None)
        out[column] = values
    return out


def _options(summary: dict) -> dict:
    config = dict((summary.get("run") or {}).get("config") or {})
    for name in _DROPPED_OPTIONS:
        config.pop(name, None)
    for name, value in list(config.items()):  # every URL without its password (base_url, llm_base_url, ...)
        if isinstance(value, str) and "://" in value:
            config[name] = mask_url(value)
        elif isinstance(value, list):
            config[name] = [mask_url(v) if isinstance(v, str) and "://" in v else v for v in value]
    return config


def _summary(summary: dict, detail: bool) -> dict:
    out = {k: v for k, v in summary.items() if k not in ("run", "levels", "findings")}
    run = {k: v for k, v in (summary.get("run") or {}).items() if k not in ("config", "request_id_prefix")}
    if run.get("base_url"):
        run["base_url"] = mask_url(str(run["base_url"]))
    out["run"] = run
    if not detail:
        for key in _SUMMARY_DETAIL:
            out.pop(key, None)
    out.pop("top_errors", None)  # servers' messages may quote the prompt
    return out


def _levels(summary: dict, detail: bool) -> list:
    levels = []
    for level in summary.get("levels") or ():
        if not isinstance(level, dict):
            continue
        if detail:
            levels.append({k: v for k, v in level.items() if k not in ("top_errors",)})
            continue
        levels.append({"level": level.get("level"), "requests": level.get("requests"),
                       "throughput": level.get("throughput"), "goodput": level.get("goodput"),
                       "meets_slo": level.get("meets_slo"),
                       **{k: {s: (level.get(k) or {}).get(s) for s in ("p50", "p95", "p99")}
                          for k in ("ttft_ms", "tpot_ms", "e2e_ms")}})
    return levels


def build_digest(summary: dict, rows: list[dict], max_chars: int = CONTEXT_CHARS) -> dict:
    """The run as the model is shown it: as much as fits in `max_chars` of JSON (the finest series
    first given up, then the detail). AnalysisError when not even the essentials fit."""
    findings = [{k: f.get(k) for k in ("id", "severity", "text", "from_s", "to_s")}
                for f in summary.get("findings") or () if isinstance(f, dict)]
    for detail in (True, False):
        for points in SERIES_POINTS + (0,):
            digest = _plain({"options": _options(summary), "summary": _summary(summary, detail),
                             "levels": _levels(summary, detail), "findings": findings, "series": _series(rows, points)})
            text = json.dumps(digest, ensure_ascii=False, allow_nan=False, default=str)
            if len(text) <= max_chars:
                return json.loads(text)
    raise AnalysisError(f"the run's digest does not fit in {max_chars:,} characters even without its series; "
                        "give a larger --llm-context-chars")


# -- the model --
def _error_message(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return str(error or body)[:200]


def ask(digest: dict, base_url: str, model: Optional[str], api_key: Optional[str], lang: str = "en",
        timeout_s: float = 120.0, on_text: Callable[[str], None] = lambda text: None) -> str:
    """Stream the model's reading of `digest` (`on_text` gets each piece as it comes); the whole
    answer. AnalysisError (one line, secrets masked) for anything that goes wrong."""
    import requests

    from .sse import SSEDecoder

    url = base_url.rstrip("/") + "/chat/completions"
    body = {"stream": True, "temperature": 0.2,
            "messages": [{"role": "system", "content": SYSTEM.get(lang, SYSTEM["en"])},
                         {"role": "user", "content": json.dumps(digest, ensure_ascii=False)}]}
    if model:
        body["model"] = model
    headers = {"Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = api_key if api_key.lower().startswith("bearer ") else f"Bearer {api_key}"
    where = mask_url(url)
    late = AnalysisError(f"{where}: no complete answer within {timeout_s:g} s (--llm-timeout)")
    parts: list[str] = []
    expired = threading.Event()
    timer = None
    try:
        with requests.post(url, json=body, headers=headers, stream=True, timeout=(min(10.0, timeout_s), timeout_s)) \
                as response:
            if response.status_code != 200:
                raise AnalysisError(f"{where}: HTTP {response.status_code}: {_error_message(response)}")
            # the whole answer within timeout_s, however the server frames it: at the deadline the
            # connection is closed under the read (a read timeout alone resets at every byte)
            timer = threading.Timer(timeout_s, lambda: (expired.set(), response.close()))
            timer.daemon = True
            timer.start()
            decoder = SSEDecoder()
            for chunk in response.iter_content(chunk_size=READ_CHUNK):
                if expired.is_set():
                    raise late
                for event in decoder.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        if not parts:
                            raise AnalysisError(f"{where}: the model's answer held no text")
                        return "".join(parts)
                    text = _content(event.data, where)
                    if text:
                        parts.append(text)
                        on_text(text)
    except (requests.RequestException, OSError, ValueError, AttributeError) as exc:
        if expired.is_set():  # the read the deadline closed under (http.client leaves its fp None)
            raise late from None
        if isinstance(exc, AttributeError):
            raise
        raise AnalysisError(f"{where}: {type(exc).__name__}: {mask_known(str(exc))[:200]}") from None
    finally:
        if timer is not None:
            timer.cancel()
    if expired.is_set():
        raise late
    if not parts:
        raise AnalysisError(f"{where}: the stream ended without an answer")
    return "".join(parts)  # no [DONE] (some servers end at the finish chunk): what came is the answer


def _content(data: str, where: str) -> str:
    try:
        obj = json.loads(data)
    except ValueError:
        raise AnalysisError(f"{where}: a chunk is not JSON: {data[:80]!r}") from None
    if not isinstance(obj, dict):
        return ""
    if obj.get("error"):
        error = obj["error"]
        raise AnalysisError(f"{where}: the model answered an error: "
                            f"{(error.get('message') if isinstance(error, dict) else error)!s:.200}")
    choices = obj.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    delta = first.get("delta") if isinstance(first, dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


# -- the file --
def write_analysis(run_dir: Path, text: str, model: Optional[str], base_url: str, lang: str) -> Path:
    """analysis.md: who wrote it (a model, which, where, when), then its answer as it came."""
    head = ["---", f"model: {model or '(the server default)'}", f"endpoint: {mask_url(base_url)}",
            f"written_at: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", f"lang: {lang}", "---", ""]
    path = Path(run_dir) / ANALYSIS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(head) + mask_known(text).rstrip() + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_analysis(run_dir: Path) -> Optional[dict]:
    """{model, endpoint, written_at, lang, text} of the folder's analysis.md, or None."""
    path = Path(run_dir) / ANALYSIS_FILE
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    meta = {"model": None, "endpoint": None, "written_at": None, "lang": None}
    lines = content.split("\n")
    if lines and lines[0] == "---" and "---" in lines[1:]:
        end = lines.index("---", 1)
        for line in lines[1:end]:
            key, _, value = line.partition(": ")
            if key in meta:
                meta[key] = value
        lines = lines[end + 1:]
    return dict(meta, text="\n".join(lines).strip())


@dataclass(frozen=True)
class LlmSettings:
    """Where the model is and how long it may take: --llm-* (the key read from its file already)."""

    base_url: str
    model: Optional[str]
    api_key: Optional[str]
    timeout_s: float = 120.0
    context_chars: int = CONTEXT_CHARS


def analyze_folder(run_dir: Path, settings: LlmSettings, lang: str, out) -> Path:
    """Read the folder, ask the model (its answer streamed to `out`), write analysis.md. AnalysisError
    with one line; the folder is written only once the whole answer came."""
    from .storage import load_timeseries
    from .summary import with_findings

    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"{run_dir}: no summary.json to read ({getattr(exc, 'strerror', None) or exc}); "
                            "run `sse-perf report` on it first") from None
    try:
        rows = load_timeseries(run_dir) if (run_dir / "timeseries.csv").is_file() else []
    except (OSError, ValueError):
        rows = []
    if not isinstance(summary.get("findings"), list):
        with_findings(summary, rows)  # a run from before findings
    digest = build_digest(summary, rows, settings.context_chars)

    def show(text: str) -> None:
        out.write(text)
        out.flush()

    text = ask(digest, settings.base_url, settings.model, settings.api_key, lang, settings.timeout_s, show)
    out.write("\n")
    return write_analysis(run_dir, text, settings.model, settings.base_url, lang)
