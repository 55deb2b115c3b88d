"""providers: files are read and checked up front; round-robin is thread-safe."""

import json
import math
import threading
from collections import Counter
from pathlib import Path

import pytest

from sse_perf_tool.config import ConfigError
from sse_perf_tool.flavors.base import Query
from sse_perf_tool.providers import (
    ApiKeyProvider,
    DatasetSpec,
    QueryProvider,
    WeightedQueryProvider,
    load_queries,
    parse_dataset_spec,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_text_file_one_query_per_line_blank_lines_skipped(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("first\n\n  \nsecond\n", encoding="utf-8")
    p = QueryProvider.from_config(str(f), "ignored")
    assert [p.next().text for _ in range(3)] == ["first", "second", "first"]


def test_jsonl_fields(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"query": "a", "inputs": {"x": 1}, "dataset": "math", "max_tokens": 5}\n\n{"query": "b"}\n')
    p = QueryProvider.from_config(str(f), "x")
    q = p.next()
    assert (q.text, q.inputs, q.dataset, q.max_tokens) == ("a", {"x": 1}, "math", 5)
    assert p.next().dataset is None


@pytest.mark.parametrize(
    "content,needle",
    [
        ("", "no queries"),
        ("\n  \n", "no queries"),
        ('{"query": "a"}\nnot json\n', "line 2"),
        ('{"inputs": {}}\n', "query"),
        ('["a"]\n', "object"),
        ('{"query": "a", "max_tokens": -1}\n', "max_tokens"),
    ],
)
def test_bad_param_files_are_errors_not_silent_fallbacks(tmp_path, content, needle):
    f = tmp_path / "q.jsonl"
    f.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        QueryProvider.from_config(str(f), "default")


def test_missing_and_folder_param_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        QueryProvider.from_config(str(tmp_path / "nope.txt"), "x")
    with pytest.raises(ConfigError, match="folder"):
        QueryProvider.from_config(str(tmp_path), "x")


def test_key_file_skips_comments_and_strips_bearer(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# team keys\napp-one\n\nBearer app-two\n")
    p = ApiKeyProvider.from_config(str(f), None)
    assert [p.next() for _ in range(3)] == ["app-one", "app-two", "app-one"]


def test_empty_key_file_is_an_error(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="no keys"):
        ApiKeyProvider.from_config(str(f), None)


def test_no_key_means_no_provider():
    assert ApiKeyProvider.from_config(None, None) is None


def _draw_in_threads(draw, per_thread: int, threads: int = 8) -> tuple[list, list[BaseException]]:
    """`draw()` called `per_thread` times in each of `threads` threads at once: (every value drawn,
    the exceptions the threads raised)."""
    got: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def take():
        try:
            mine = [draw() for _ in range(per_thread)]
        except BaseException as exc:  # recorded, asserted by the caller
            errors.append(exc)
            return
        with lock:
            got.extend(mine)

    started = [threading.Thread(target=take) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(10)
    return got, errors


def test_round_robin_is_fair_under_threads():
    p = ApiKeyProvider(["a", "b", "c", "d"])
    got, errors = _draw_in_threads(p.next, 1000)
    assert not errors
    assert Counter(got) == {"a": 2000, "b": 2000, "c": 2000, "d": 2000}


# --- --dataset NAME=PATH[:WEIGHT] ---------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("maths=data/maths.jsonl", DatasetSpec("maths", "data/maths.jsonl", 1.0)),
        ("maths=data/maths.jsonl:3", DatasetSpec("maths", "data/maths.jsonl", 3.0)),
        ("maths=data/maths.jsonl:0.25", DatasetSpec("maths", "data/maths.jsonl", 0.25)),
        ("maths=data/maths.jsonl:.5", DatasetSpec("maths", "data/maths.jsonl", 0.5)),
        ("maths=data/maths.jsonl:2e1", DatasetSpec("maths", "data/maths.jsonl", 20.0)),
        ("a.b_c-1=x.txt:1", DatasetSpec("a.b_c-1", "x.txt", 1.0)),
        ("数学=题库/数学.jsonl:2", DatasetSpec("数学", "题库/数学.jsonl", 2.0)),
        ("長文=x.txt", DatasetSpec("長文", "x.txt", 1.0)),
        # Windows drive letters: the part after the last ':' is not a number, so it is path.
        (r"win=C:\data\x.txt", DatasetSpec("win", r"C:\data\x.txt", 1.0)),
        (r"win=C:\data\x.txt:4", DatasetSpec("win", r"C:\data\x.txt", 4.0)),
        # A ':' inside a POSIX path with no weight stays in the path.
        ("t=/srv/run:2024/q.txt", DatasetSpec("t", "/srv/run:2024/q.txt", 1.0)),
        ("t=/srv/run:2024/q.txt:5", DatasetSpec("t", "/srv/run:2024/q.txt", 5.0)),
        # '=' after the first one belongs to the path.
        ("eq=a=b.txt", DatasetSpec("eq", "a=b.txt", 1.0)),
    ],
)
def test_dataset_spec_parses_name_path_and_optional_weight(text, expected):
    assert parse_dataset_spec(text) == expected


@pytest.mark.parametrize(
    "text,needle",
    [
        ("maths.jsonl", "no '='"),
        ("=maths.jsonl", "name before '=' is empty"),
        ("my maths=x.txt", "may hold only"),
        ("maths/1=x.txt", "may hold only"),
        ("数学!=x.txt", "may hold only"),
        ("maths=", "path after '=' is empty"),
        ("maths=:3", "path after '=' is empty"),
        ("maths=x.txt:", "weight after the last ':' is empty"),
        ("maths=x.txt:0", "greater than 0"),
        ("maths=x.txt:-2", "greater than 0"),
        ("maths=x.txt:nan", "finite"),
        ("maths=x.txt:inf", "finite"),
        ("maths=x.txt:-Infinity", "finite"),
        ("maths=x.txt:1e999", "finite"),
    ],
)
def test_bad_dataset_specs_are_one_line_config_errors(text, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        parse_dataset_spec(text)
    message = str(info.value)
    assert "\n" not in message and "--dataset" in message


def _provider(weights, seed, sizes=None):
    sizes = sizes or [3] * len(weights)
    return WeightedQueryProvider(
        [(f"d{i}", w, [Query(text=f"d{i}-q{j}") for j in range(n)]) for i, (w, n) in enumerate(zip(weights, sizes))],
        seed=seed,
    )


def test_draws_follow_the_weights_within_three_sigma():
    """20,000 draws over weights 1:2:7: each dataset's count stays inside the binomial
    mean +/- 3 standard deviations."""
    weights = [1.0, 2.0, 7.0]
    n = 20_000
    p = _provider(weights, seed=1234)
    counts = Counter(p.next().dataset for _ in range(n))
    assert sum(counts.values()) == n
    total = sum(weights)
    for i, w in enumerate(weights):
        share = w / total
        mean = n * share
        sigma = math.sqrt(n * share * (1 - share))
        assert abs(counts[f"d{i}"] - mean) <= 3 * sigma, (i, counts, mean, sigma)


def test_same_seed_same_sequence_different_seed_different_sequence():
    def seq(seed):
        p = _provider([1, 1, 1], seed=seed)
        return [p.next().text for _ in range(200)]

    assert seq(7) == seq(7)
    assert seq(7) != seq(8)


def test_round_robin_in_file_order_within_a_dataset():
    p = _provider([1, 3], seed=3, sizes=[2, 3])
    per_dataset: dict[str, list[str]] = {"d0": [], "d1": []}
    for _ in range(300):
        q = p.next()
        per_dataset[q.dataset].append(q.text)
    for name, size in (("d0", 2), ("d1", 3)):
        got = per_dataset[name]
        assert got, name
        assert got == [f"{name}-q{j % size}" for j in range(len(got))]


def test_query_carries_the_dataset_name_and_keeps_jsonl_fields(tmp_path):
    """The --dataset NAME wins over a `dataset` field in the line; inputs and max_tokens stay."""
    f = tmp_path / "m.jsonl"
    f.write_text('{"query": "1+1?", "inputs": {"k": "v"}, "dataset": "other", "max_tokens": 9}\n', encoding="utf-8")
    p = WeightedQueryProvider.from_specs([parse_dataset_spec(f"maths={f}")], seed=0)
    q = p.next()
    assert (q.text, q.inputs, q.dataset, q.max_tokens) == ("1+1?", {"k": "v"}, "maths", 9)


def test_datasets_property_lists_name_weight_and_count(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x\ny\n\nz\n", encoding="utf-8")
    b = tmp_path / "b.jsonl"
    b.write_text('{"query": "p"}\n', encoding="utf-8")
    p = WeightedQueryProvider.from_specs([parse_dataset_spec(f"a={a}:2"), parse_dataset_spec(f"b={b}")], seed=1)
    assert p.datasets == (("a", 2.0, 3), ("b", 1.0, 1))


def test_weighted_draws_are_safe_under_threads():
    p = _provider([1, 2, 7], seed=5)
    got, errors = _draw_in_threads(lambda: p.next().dataset, 500)
    assert not errors
    counts = Counter(got)
    assert sum(counts.values()) == 8 * 500
    assert set(counts) == {"d0", "d1", "d2"}


def test_weighted_round_robin_stays_exact_under_threads():
    """One dataset, three queries: 8 x 300 draws hand out each query exactly 800 times."""
    p = _provider([1], seed=0, sizes=[3])
    got, errors = _draw_in_threads(lambda: p.next().text, 300)
    assert not errors
    assert Counter(got) == {"d0-q0": 800, "d0-q1": 800, "d0-q2": 800}


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("bad.jsonl", "", "--dataset maths has no queries"),
        ("bad.jsonl", '{"query": "a"}\nnot json\n', "--dataset maths .* line 2"),
        ("bad.jsonl", '{"query": "a", "max_tokens": 0}\n', "--dataset maths .*max_tokens"),
        ("bad.txt", "\n\n", "--dataset maths has no queries"),
    ],
)
def test_bad_dataset_files_name_the_dataset_option(tmp_path, name, content, needle):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle) as info:
        WeightedQueryProvider.from_specs([parse_dataset_spec(f"maths={f}:2")], seed=0)
    assert "--param-file" not in str(info.value)


def test_missing_or_non_utf8_dataset_file_names_the_dataset(tmp_path):
    with pytest.raises(ConfigError, match="--dataset maths not found"):
        WeightedQueryProvider.from_specs([DatasetSpec("maths", str(tmp_path / "nope.jsonl"), 1.0)])
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="--dataset maths is not UTF-8"):
        WeightedQueryProvider.from_specs([DatasetSpec("maths", str(f), 1.0)])


def test_duplicate_dataset_names_are_an_error(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="--dataset maths is given more than once"):
        WeightedQueryProvider.from_specs([DatasetSpec("maths", str(f), 1.0), DatasetSpec("maths", str(f), 2.0)])


def test_no_datasets_is_an_error():
    with pytest.raises(ConfigError, match="no --dataset"):
        WeightedQueryProvider.from_specs([])


def test_param_file_messages_unchanged_by_the_label_refactor(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"query": "a"}\n[1]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^--param-file .* line 2: expected a JSON object$"):
        load_queries(str(f))


# --- the shipped example files -------------------------------------------------------------

_EXAMPLE_DATASETS = {
    "maths.jsonl": (200, 400),
    "writing.jsonl": (400, 800),
    "long_context.jsonl": (128, 512),
    "coding.jsonl": (400, 800),
}


@pytest.mark.parametrize("name", sorted(_EXAMPLE_DATASETS))
def test_example_datasets_load_and_are_bilingual(name):
    path = EXAMPLES / "datasets" / name
    raw = path.read_bytes().decode("utf-8")  # must be UTF-8
    for line in raw.splitlines():
        assert isinstance(json.loads(line), dict)  # one object per line, no blank lines
    queries = load_queries(str(path))
    assert 10 <= len(queries) <= 16
    chinese = sum(1 for q in queries if any("\u4e00" <= ch <= "\u9fff" for ch in q.text))
    assert abs(chinese - (len(queries) - chinese)) <= 2, chinese
    low, high = _EXAMPLE_DATASETS[name]
    assert all(q.max_tokens is not None and low <= q.max_tokens <= high for q in queries)
    if name == "long_context.jsonl":
        assert all(1500 <= len(q.text) <= 3000 for q in queries), [len(q.text) for q in queries]


def test_example_files_load():
    assert len(load_queries(str(EXAMPLES / "queries.txt"))) >= 5
    assert len(load_queries(str(EXAMPLES / "dataset.jsonl"))) >= 5
    keys = ApiKeyProvider.from_config(str(EXAMPLES / "keys.example.txt"), None)
    assert keys is not None and all("REPLACE" in keys.next() for _ in range(len(keys)))
