"""providers: files are read and checked up front; round-robin is thread-safe."""

import threading
from collections import Counter

import pytest

from sse_perf_tool.config import ConfigError
from sse_perf_tool.providers import ApiKeyProvider, QueryProvider


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


def test_round_robin_is_fair_under_threads():
    p = ApiKeyProvider(["a", "b", "c", "d"])
    got = []
    lock = threading.Lock()

    def take():
        mine = [p.next() for _ in range(1000)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert Counter(got) == {"a": 2000, "b": 2000, "c": 2000, "d": 2000}
