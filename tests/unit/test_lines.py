"""Query and key files are split at line ends only: U+2028, U+2029 and U+0085 inside a prompt or a
JSON string are text (str.splitlines() would cut a valid JSONL line or a .txt query in two)."""

from __future__ import annotations

import json

from sse_perf_tool.providers import load_api_keys, load_queries


def test_unicode_separators_stay_inside_a_jsonl_query(tmp_path):
    path = tmp_path / "q.jsonl"
    texts = ["one\u2028two", "three\u2029four", "five\u0085six"]
    path.write_text("".join(json.dumps({"query": t}, ensure_ascii=False) + "\r\n" for t in texts), encoding="utf-8")
    assert [q.text for q in load_queries(str(path))] == texts


def test_unicode_separators_stay_inside_a_text_query_and_crlf_ends_a_line(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("first\u2028still first\r\nsecond\n", encoding="utf-8")
    assert [q.text for q in load_queries(str(path))] == ["first\u2028still first", "second"]
    keys = tmp_path / "keys.txt"
    keys.write_text("app-one\r\n# a comment\napp-two\n", encoding="utf-8")
    assert load_api_keys(str(keys)) == ["app-one", "app-two"]
