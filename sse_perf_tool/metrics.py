"""The metric registry: one table that says, for every per-request metric and every whole-run
figure, its name, unit, direction, which statistics are kept and shown where, whether SLOs and
goodput may use it, and its labels in English and Chinese.

The summary, the per-second series, SLO parsing, goodput, the live table, the report, compare,
the history columns and the glossary all read this table; adding a metric is an entry here plus
the code that measures it (docs/architecture.md, "Adding a metric"). Definitions: docs/metrics.md.

Pure data; imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

LOWER, HIGHER = "lower", "higher"
STATS = ("mean", "min", "p50", "p90", "p95", "p99", "max")  # the statistics of every distribution
DIST_KEYS = ("count",) + STATS  # a distribution's keys in summary.json, in this order
UNIT_WORDS = {"ms": {"en": "ms", "zh": "毫秒"}, "tok/s": {"en": "tok/s", "zh": "tokens/秒"}}


@dataclass(frozen=True)
class Metric:
    """One per-request metric, kept as a distribution over the successful requests.

    `key` names it in SLOs (`<key>_<stat>`), compare and history (`<key>_<stat>_ms` for ms);
    `field` is its records.jsonl field and its summary.json key."""

    key: str
    unit: str  # "ms" or "tok/s"
    direction: str  # LOWER or HIGHER is better
    label: dict  # {"en", "zh"}: in tables and charts
    short: dict  # {"en", "zh"}: narrow terminal columns
    describe: dict  # {"en", "zh"}: the glossary's one-paragraph definition
    pooled: bool = False  # the field is a list (ITL: one value per gap), pooled over requests
    open_loop: bool = False  # shown only in open-loop runs (it is 0 / equal to another in closed loop)
    slo: bool = True  # `<key>_<stat>` may be an --slo term
    goodput: bool = False  # a per-request bound of goodput (vLLM's definition)
    null_meets_bound: bool = False  # a request where it is undefined still meets a goodput bound
    series: tuple = ()  # stats of the per-second series (timeseries.csv `<key>_<stat>_ms`)
    dataset: tuple = ()  # kept per dataset (summary.datasets); these stats in the report's datasets table
    live: tuple = ()  # stats shown as columns of the live per-second table
    compare: tuple = ()  # stats compared between runs (sse-perf compare, its HTML)
    history: tuple = ()  # stats kept as columns of the history database's runs table
    level: tuple = ()  # stats of the sweep's per-level tables (terminal)
    curve: tuple = ()  # stats drawn as capacity curves of a sweep (report, compare)
    histogram: bool = False  # a histogram in the report
    cdf: bool = False  # a CDF line per run in the comparison report
    card: tuple = ()  # the report's headline cards
    chart: bool = False  # a per-second chart in the report (the `series` stats)
    slowest: bool = False  # the report lists the ten requests with its highest values
    optional: bool = False  # shown in tables only when measured (the server's own figures)
    client: str = ""  # the client-side metric it is the server's account of (the report shows both)

    @property
    def field(self) -> str:
        return self.key + ("_ms" if self.unit == "ms" else "")

    def stat_name(self, stat: str) -> str:
        """`tpot_p95_ms`, `request_tps_p50`: a statistic's name in compare, history and timeseries."""
        return f"{self.key}_{stat}" + ("_ms" if self.unit == "ms" else "")

    def title(self, lang: str = "en", stat: Optional[str] = None) -> str:
        """'TPOT p95 (ms)' / '每 token 时延 TPOT p95（毫秒）'."""
        lang = "zh" if lang == "zh" else "en"
        unit = UNIT_WORDS[self.unit][lang]
        name = self.label[lang] + (f" {stat}" if stat else "")
        return f"{name}（{unit}）" if lang == "zh" else f"{name} ({unit})"

    def better(self, new: float, old: float) -> bool:
        return new < old if self.direction == LOWER else new > old


def _labels(en: str, zh: str) -> dict:
    return {"en": en, "zh": zh}


DISTRIBUTIONS: tuple[Metric, ...] = (
    Metric("ttfb", "ms", LOWER, _labels("TTFB", "首字节 TTFB"), _labels("TTFB", "首字节"),
           _labels("Request sent → first byte of the response body (headers excluded).",
                   "请求发出 → 收到响应体的第一个字节（不含响应头）。")),
    Metric("ttft", "ms", LOWER, _labels("TTFT", "首 token 时延 TTFT"), _labels("TTFT", "首字"),
           _labels("Request sent → first event carrying generated text of any kind: answer or reasoning. "
                   "Role-only deltas, pings and usage-only chunks do not count.",
                   "请求发出 → 第一个携带生成文本的事件（回答或推理内容均可）。仅含角色的增量、心跳和仅含 usage 的块不计。"),
           goodput=True, series=("p50", "p95"), dataset=("p50", "p95"), live=("p50", "p95"), compare=("p50", "p95", "p99"),
           history=("p95",), level=("p95",), curve=("p95",), histogram=True, cdf=True, card=("p50",), chart=True,
           slowest=True),
    Metric("ttfo", "ms", LOWER, _labels("TTFO", "首个回答 TTFO"), _labels("TTFO", "首答"),
           _labels("Request sent → first answer (non-reasoning) text. Equal to TTFT for models that do not reason.",
                   "请求发出 → 第一个回答（非推理）文本。对不做推理的模型等于 TTFT。"),
           goodput=True),
    Metric("tpot", "ms", LOWER, _labels("TPOT", "每 token 时延 TPOT"), _labels("TPOT", "每字"),
           _labels("(E2E − TTFT) / (output tokens − 1); undefined below 2 tokens.",
                   "(E2E − TTFT) / (输出 token 数 − 1)；少于 2 个 token 时无定义。"),
           goodput=True, null_meets_bound=True, series=("p50", "p95"), dataset=("p50",), live=("p50",),
           compare=("p50", "p95"), history=("p95",), level=("p95",), curve=("p95",), histogram=True, cdf=True,
           card=("p50",), chart=True),
    Metric("itl", "ms", LOWER, _labels("ITL", "token 间隔 ITL"), _labels("ITL", "间隔"),
           _labels("Gaps between consecutive token-bearing events, one value per gap; E2E − TTFT = sum of ITL. "
                   "An event may carry several tokens.",
                   "相邻两个携带 token 的事件之间的间隔，每个间隔一个值；E2E − TTFT = ITL 之和。一个事件可能包含多个 token。"),
           pooled=True, compare=("p95",), histogram=True),
    Metric("e2e", "ms", LOWER, _labels("E2E", "端到端时延 E2E"), _labels("E2E", "总耗"),
           _labels("Request sent → last token-bearing event. A trailing usage chunk, end event or the socket "
                   "close do not extend it.",
                   "请求发出 → 最后一个携带 token 的事件。结尾的 usage 块、结束事件或连接关闭不计入。"),
           goodput=True, series=("p50", "p95"), dataset=("p50", "p95"), live=("p95",), compare=("p50", "p95"),
           history=("p95",), level=("p95",), curve=("p95",), histogram=True, cdf=True, card=("p95",), chart=True,
           slowest=True),
    Metric("request_tps", "tok/s", HIGHER, _labels("tokens/s per request", "单请求 tokens/秒"),
           _labels("tok/s/req", "单请求tok/s"),
           _labels("One request's output tokens / (E2E − TTFT) in seconds: the speed one user sees the answer "
                   "stream at; undefined when E2E = TTFT (the answer came in one event). Higher is better.",
                   "单个请求的输出 token 数 / (E2E − TTFT)（秒）：一个用户看到回答流出的速度；E2E = TTFT（回答只有一个事件）时无定义。越高越好。"),
           goodput=True, null_meets_bound=True, compare=("p50",), histogram=True),
    Metric("server_ttft", "ms", LOWER, _labels("Server TTFT", "服务端首 token 时延"), _labels("SRV TTFT", "服务端首字"),
           _labels("The server's own time to first token (Dify's usage.time_to_first_token, from the start of "
                   "its pipeline). TTFT minus this is the time before the server's clock started: the "
                   "network and Dify's queueing.",
                   "服务端自己测得的首 token 时延（Dify 的 usage.time_to_first_token，从其流水线开始计）。TTFT 减去它即服务端"
                   "计时开始之前的时间：网络与 Dify 的排队。"),
           optional=True, client="ttft"),
    Metric("server_latency", "ms", LOWER, _labels("Server latency", "服务端时延"), _labels("SRV LAT", "服务端时延"),
           _labels("The server's own time for the model's answer (Dify's usage.latency).",
                   "服务端自己测得的模型回答时间（Dify 的 usage.latency）。"),
           optional=True, client="e2e"),
    Metric("server_generate", "ms", LOWER, _labels("Server generate", "服务端生成时间"), _labels("SRV GEN", "服务端生成"),
           _labels("The server's own generation time after the first token (Dify's usage.time_to_generate).",
                   "服务端自己测得的首 token 之后的生成时间（Dify 的 usage.time_to_generate）。"),
           optional=True),
    Metric("server_elapsed", "ms", LOWER, _labels("Server elapsed", "服务端运行时间"), _labels("SRV RUN", "服务端运行"),
           _labels("A Dify workflow or chatflow run's own elapsed time (workflow_finished.data.elapsed_time).",
                   "Dify 工作流或对话流自己测得的运行时间（workflow_finished.data.elapsed_time）。"),
           optional=True, client="e2e"),
    Metric("queue", "ms", LOWER, _labels("Queue", "排队"), _labels("QUEUE", "排队"),
           _labels("Open loop only: scheduled arrival → request sent, the time an arrival waited because every "
                   "thread was busy.",
                   "仅开环：计划到达时间 → 请求发出，即到达后因所有线程忙碌而等待的时间。"),
           open_loop=True),
    Metric("ttft_from_scheduled", "ms", LOWER, _labels("TTFT from scheduled", "TTFT（自计划时间）"),
           _labels("TTFT (sched)", "首字(计划)"),
           _labels("Open loop only: queue + TTFT, the first token's delay as the arriving user sees it.",
                   "仅开环：排队 + TTFT，到达的用户看到的首 token 延迟。"),
           open_loop=True, goodput=True),
    Metric("e2e_from_scheduled", "ms", LOWER, _labels("E2E from scheduled", "E2E（自计划时间）"),
           _labels("E2E (sched)", "总耗(计划)"),
           _labels("Open loop only: queue + E2E.", "仅开环：排队 + E2E。"),
           open_loop=True, goodput=True),
)
BY_KEY = {m.key: m for m in DISTRIBUTIONS}
BY_FIELD = {m.field: m for m in DISTRIBUTIONS}


def metric(key: str) -> Metric:
    return BY_KEY[key]


def fields(**flags) -> tuple[str, ...]:
    """The `field` of every distribution whose attributes match, e.g. fields(dataset=True)."""
    return tuple(m.field for m in select(**flags))


def select(**flags) -> tuple[Metric, ...]:
    """The distributions whose attributes match, in registry order. A bool asks whether the
    attribute is set (select(series=True): those with a per-second series); anything else asks
    for equality (select(unit="ms"))."""
    def fits(m: Metric) -> bool:
        return all((bool(getattr(m, name)) == want) if isinstance(want, bool) else getattr(m, name) == want
                   for name, want in flags.items())
    return tuple(m for m in DISTRIBUTIONS if fits(m))


def stat_columns(attr: str) -> tuple[tuple[Metric, str], ...]:
    """(metric, stat) for every stat listed in a distribution's `attr` (series, live, compare, ...)."""
    return tuple((m, stat) for m in DISTRIBUTIONS for stat in getattr(m, attr))


# -- whole-run figures ------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One whole-run figure of summary.json (not a distribution): where it lives and which way is better."""

    name: str
    path: tuple
    direction: str
    unit: str  # "req/s", "tok/s", "%", "tok/J", "" (a count)
    label: dict = field(default_factory=dict)  # {"en", "zh"}
    optional: bool = False  # compare shows it only when a run has a value
    compare: str = ""  # "" (not compared), "head" (before the distributions) or "tail" (after them)
    history: str = ""  # its column in the history database's runs table


FIGURES: tuple[Figure, ...] = (  # compare's order: the "head" ones, the distributions, the "tail" ones
    Figure("requests_per_s", ("throughput", "requests_per_s"), HIGHER, "req/s", _labels("requests/s", "请求/秒"),
           compare="head", history="requests_per_s"),
    Figure("output_tokens_per_s", ("throughput", "output_tokens_per_s"), HIGHER, "tok/s",
           _labels("output tok/s", "输出 tok/s"), compare="head", history="output_tokens_per_s"),
    Figure("goodput_requests_per_s", ("goodput", "requests_per_s"), HIGHER, "req/s",
           _labels("goodput req/s", "有效吞吐 请求/秒"), optional=True, compare="head"),
    Figure("success_rate_pct", ("requests", "success_rate_pct"), HIGHER, "%", _labels("success %", "成功率 %"),
           compare="head", history="success_pct"),
    Figure("failed_requests", ("requests", "failed"), LOWER, "", _labels("failed", "失败数"), compare="head"),
    Figure("output_tokens_per_joule", ("throughput", "output_tokens_per_joule"), HIGHER, "tok/J",
           _labels("tokens/joule", "tokens/焦耳"), optional=True, compare="tail"),
    Figure("requests_total", ("requests", "total"), HIGHER, "", _labels("requests", "请求数"), history="requests_total"),
    Figure("duration_s", ("run", "duration_s"), HIGHER, "s", _labels("duration s", "时长 秒"), history="duration_s"),
)
